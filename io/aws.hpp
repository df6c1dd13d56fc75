// What an S3 request needs from the environment, found the way the AWS CLI
// and SDKs find it. Internal to io/.
//  Credentials, first found wins: anonymous when AWS_NO_SIGN_REQUEST is
//  true (or OpenOptions::s3_anonymous); AWS_ACCESS_KEY_ID +
//  AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); the profile AWS_PROFILE (else
//  "default") in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
//  AWS_CONFIG_FILE (~/.aws/config); web identity (AWS_WEB_IDENTITY_TOKEN_FILE +
//  AWS_ROLE_ARN, exchanged with STS); the EC2 instance metadata service
//  (IMDSv2, AWS_EC2_METADATA_SERVICE_ENDPOINT, skipped when
//  AWS_EC2_METADATA_DISABLED is true).
//  Region: AWS_REGION, AWS_DEFAULT_REGION, the profile's, else us-east-1.
//  Endpoint: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL (path-style addressing,
//  for MinIO, Ceph, R2, GCS's XML API...), else AWS's virtual-hosted one.
#pragma once

#include <optional>
#include <string>

#include "io/sigv4.hpp"
#include "mneme/source.hpp"

namespace mneme::aws {

struct Config {
  std::string region;
  std::string endpoint;  // scheme://host[:port], no trailing slash; empty: AWS
  std::optional<sigv4::Credentials> credentials;  // nullopt: anonymous
};

// The chain above, read afresh at each call (a model's sources resolve it
// once each; temporary credentials from STS or IMDS are kept per process
// until shortly before they expire); Error{network} naming where it looked when no credentials are
// found and anonymous access was not asked for.
Config config(const OpenOptions& options);

}  // namespace mneme::aws
