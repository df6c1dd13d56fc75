#!/usr/bin/env python3
"""Fills the test S3 servers (moto_server, started by scripts/net-servers.sh).

    s3_setup.py AUTH_ENDPOINT PUBLIC_ENDPOINT REPO FIXTURES

AUTH_ENDPOINT runs with INITIAL_NO_AUTH_ACTION_COUNT=3: the first three
actions (an IAM user, its policy, its access key) are the only unsigned ones;
everything after, ours included, is checked with SigV4 against that key.
PUBLIC_ENDPOINT never authenticates: the stand-in for a public bucket.
Both get bucket "mneme-models" with the bundled samples, the sample model and
the NPZ/.pth fixtures. Prints "export NAME=value" lines for the tests.
"""
import json
import os
import sys

import boto3

auth, public, repo, fixtures = sys.argv[1:5]
BUCKET = "mneme-models"

iam = boto3.client("iam", endpoint_url=auth, region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="mneme")
iam.put_user_policy(UserName="mneme", PolicyName="all-s3", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:*"], "Resource": "*"}]}))
key = iam.create_access_key(UserName="mneme")["AccessKey"]


def fill(endpoint, access, secret, public=False):
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=access, aws_secret_access_key=secret)
    s3.create_bucket(Bucket=BUCKET, **({"ACL": "public-read"} if public else {}))
    uploads = {
        "q4k-q6k.gguf": os.path.join(repo, "fixtures/samples/q4k-q6k.gguf"),
        "gptq/model.safetensors": os.path.join(repo, "fixtures/samples/gptq/model.safetensors"),
        "gptq/config.json": os.path.join(repo, "fixtures/samples/gptq/config.json"),
        "fp8/model.safetensors": os.path.join(repo, "fixtures/samples/fp8/model.safetensors"),
        "fp8/config.json": os.path.join(repo, "fixtures/samples/fp8/config.json"),
    }
    model = os.path.join(repo, "fixtures/sample-model")
    for name in os.listdir(model):
        uploads["sample-model/" + name] = os.path.join(model, name)
    for family in ("npz", "pth"):
        folder = os.path.join(fixtures, family)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if name.endswith((".npz", ".pth")):
                uploads[f"fixtures/{family}/{name}"] = os.path.join(folder, name)
    for key_name, path in uploads.items():
        s3.upload_file(path, BUCKET, key_name, ExtraArgs={"ACL": "public-read"} if public else None)


fill(auth, key["AccessKeyId"], key["SecretAccessKey"])
fill(public, "anything", "anything", public=True)
print(f"export MNEME_S3_ENDPOINT={auth}")
print(f"export MNEME_S3_PUBLIC_ENDPOINT={public}")
print(f"export MNEME_S3_ACCESS_KEY={key['AccessKeyId']}")
print(f"export MNEME_S3_SECRET_KEY={key['SecretAccessKey']}")
print(f"export MNEME_S3_BUCKET={BUCKET}")
