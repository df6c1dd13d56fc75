#!/usr/bin/python3
"""A fault-injecting HTTP/1.1 proxy for the network tests (127.0.0.1 only).

    fault_proxy.py --port PORT --upstream HOST:PORT

A request for /SPEC/PATH is forwarded as /PATH to the upstream (the test
nginx), keep-alive, and SPEC says what goes wrong. SPEC is a comma-separated
list of faults, each FAULT@K[:N] (on the K-th request carrying this SPEC,
counting from 1; K = * for every request), plus an optional nonce ~NAME so
that each test counts its own requests:

    503@K        answer 503 with an S3 SlowDown body instead of forwarding
    500@K        answer 500
    reset@K:N    send the headers and N body bytes, then reset the connection
    truncate@K:N send the headers and N body bytes, then close cleanly
    stall@K:N    send the headers and N body bytes, then send nothing for 30 s
    nocr@K       drop Content-Range from a 206
    wrongcr@K    shift the start in Content-Range by one
    full@K       ask upstream without Range: a 200 with the whole object
    long@K       append 16 bytes to the body (Content-Length raised to match)
    changed@K    from the K-th request on, the object "changes": a request
                 with If-Match gets 412, others see a new ETag
    rate=B       every response body at most B bytes per second (per connection)
    delay=MS     every response waits MS milliseconds before it starts
    ok           nothing

GET /__bytes__/SPEC answers the body bytes sent so far for SPEC (as text);
GET /__calls__/sts and /__calls__/imds the requests those services got;
GET /__peak__/SPEC the most requests carrying SPEC it was serving at once.

With --aws-creds KEY:SECRET it also stands in for the AWS credential
services a test cannot reach: /sts/?Action=AssumeRoleWithWebIdentity (the
token "mneme-web-token" gets KEY:SECRET, anything else 403) and the EC2
instance metadata service under /imds/ (IMDSv2: a PUT for the session token,
then the role name, then its credentials).
Prints "ready" once listening. Counts are kept per SPEC for the proxy's life.
"""
import argparse
import asyncio
import collections
import socket
import struct

counts = collections.Counter()
inflight = collections.Counter()  # requests being served, per SPEC
peak = collections.Counter()      # the most at once, per SPEC
args = None
sent = collections.Counter()  # body bytes per SPEC


def parse_spec(spec):
    faults, rate = [], None
    for item in spec.split("~")[0].split(","):
        if not item or item == "ok":
            continue
        if item.startswith("rate="):
            rate = int(item[5:])
            continue
        if item.startswith("delay="):
            faults.append(("delay", "*", int(item[6:])))
            continue
        name, _, rest = item.partition("@")
        k, _, n = rest.partition(":")
        faults.append((name, k, int(n) if n else 0))
    return faults, rate


def applies(k, nth, name):
    if k == "*":
        return True
    return nth >= int(k) if name == "changed" else nth == int(k)


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    start = lines[0]
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return start, headers


def get(headers, name):
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return None


def without(headers, name):
    return [(n, v) for n, v in headers if n.lower() != name.lower()]


def head_bytes(start, headers):
    return (start + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n").encode("latin-1")


async def send_body(writer, body, rate, spec):
    sent[spec] += len(body)
    if not rate:
        writer.write(body)
        await writer.drain()
        return
    step = max(1, rate // 20)
    for i in range(0, len(body), step):
        writer.write(body[i:i + step])
        await writer.drain()
        await asyncio.sleep(len(body[i:i + step]) / rate)


def aws_service(spec, method, rest, headers):
    key, _, secret = args.aws_creds.partition(":")
    if spec == "sts":
        if "Action=AssumeRoleWithWebIdentity" not in rest or "WebIdentityToken=mneme-web-token" not in rest:
            return 403, b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>bad token</Message></Error></ErrorResponse>"
        return 200, (f"<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                     f"<AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
                     f"<SessionToken></SessionToken></Credentials></AssumeRoleWithWebIdentityResult>"
                     f"</AssumeRoleWithWebIdentityResponse>").encode()
    if rest == "latest/api/token" and method == "PUT":
        return 200, b"imds-session"
    if get(headers, "X-aws-ec2-metadata-token") != "imds-session":
        return 401, b""
    if rest == "latest/meta-data/iam/security-credentials/":
        return 200, b"mneme-role"
    if rest == "latest/meta-data/iam/security-credentials/mneme-role":
        return 200, f'{{"Code": "Success", "AccessKeyId": "{key}", "SecretAccessKey": "{secret}"}}'.encode()
    return 404, b""


async def handle(reader, writer, upstream):
    up_host, up_port = upstream
    up_reader = up_writer = None
    try:
        while True:
            try:
                start, headers = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            method, target, version = start.split(" ", 2)
            parts = target.split("/", 2)
            spec, rest = parts[1], parts[2] if len(parts) > 2 else ""
            if spec in ("sts", "imds") and args.aws_creds:
                counts["aws:" + spec] += 1
                code, body = aws_service(spec, method, rest, headers)
                writer.write(head_bytes(f"HTTP/1.1 {code} X", [("Content-Length", str(len(body)))]) + body)
                await writer.drain()
                continue
            if spec in ("__bytes__", "__calls__", "__peak__"):
                body = str(sent[rest] if spec == "__bytes__" else
                           counts["aws:" + rest] if spec == "__calls__" else peak[rest]).encode()
                writer.write(head_bytes("HTTP/1.1 200 OK", [("Content-Length", str(len(body)))]) + body)
                await writer.drain()
                continue
            faults, rate = parse_spec(spec)
            counts[spec] += 1
            nth = counts[spec]
            active = {name: n for name, k, n in faults if applies(k, nth, name)}
            print(spec, nth, method, rest, get(headers, "Range"), sorted(active), flush=True)
            inflight[spec] += 1
            peak[spec] = max(peak[spec], inflight[spec])
            try:
                if "delay" in active:
                    await asyncio.sleep(active["delay"] / 1000)

                if "503" in active or "500" in active:
                    code = 503 if "503" in active else 500
                    body = (b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce"
                            b" your request rate.</Message><RequestId>test-%d</RequestId></Error>" % nth)
                    writer.write(head_bytes(f"HTTP/1.1 {code} Injected", [
                        ("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]) + body)
                    await writer.drain()
                    continue
                if "changed" in active and get(headers, "If-Match"):
                    writer.write(head_bytes("HTTP/1.1 412 Precondition Failed", [("Content-Length", "0")]))
                    await writer.drain()
                    continue

                fwd = without(without(headers, "Host"), "Connection")
                if "full" in active:
                    fwd = without(fwd, "Range")
                if "changed" in active:
                    fwd = without(fwd, "If-Match")
                fwd = [("Host", f"{up_host}:{up_port}")] + fwd
                if up_writer is None:
                    up_reader, up_writer = await asyncio.open_connection(up_host, up_port)
                up_writer.write(head_bytes(f"{method} /{rest} {version}", fwd))
                await up_writer.drain()
                ustart, uheaders = await read_head(up_reader)
                length = int(get(uheaders, "Content-Length") or 0)
                body = await up_reader.readexactly(length) if method != "HEAD" else b""

                if "changed" in active:
                    uheaders = without(uheaders, "ETag") + [("ETag", '"changed"')]
                if "nocr" in active:
                    uheaders = without(uheaders, "Content-Range")
                if "wrongcr" in active and get(uheaders, "Content-Range"):
                    unit, _, rng = get(uheaders, "Content-Range").partition(" ")
                    first, _, tail = rng.partition("-")
                    uheaders = without(uheaders, "Content-Range") + [
                        ("Content-Range", f"{unit} {int(first) + 1}-{tail}")]
                if "long" in active:
                    body += b"\xAB" * 16
                    uheaders = without(uheaders, "Content-Length") + [("Content-Length", str(len(body)))]

                writer.write(head_bytes(ustart, uheaders))
                if "reset" in active or "truncate" in active or "stall" in active:
                    n = active.get("reset", active.get("truncate", active.get("stall")))
                    await send_body(writer, body[:n], rate, spec)
                    if "stall" in active:
                        await asyncio.sleep(30)
                    if "reset" in active:
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.close()
                    return
                await send_body(writer, body, rate, spec)
            finally:
                inflight[spec] -= 1
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        if up_writer is not None:
            up_writer.close()
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--aws-creds", default="")
    global args
    args = ap.parse_args()
    host, _, port = args.upstream.rpartition(":")
    server = await asyncio.start_server(lambda r, w: handle(r, w, (host, int(port))),
                                        "127.0.0.1", args.port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
