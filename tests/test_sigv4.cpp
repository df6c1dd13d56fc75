// SigV4 against AWS's published test suite (get-vanilla and
// get-vanilla-query-order-key-case, from aws-sig-v4-test-suite) and against
// botocore's signer for S3-shaped requests (an encoded key, a port, a session
// token, a ListObjectsV2 query), computed once with botocore 1.x.
#include <catch2/catch.hpp>

#include "io/sigv4.hpp"

using namespace mneme;

namespace {

const sigv4::Credentials kExample{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const std::string kDate = "20150830T123600Z";

std::string signature_of(const std::string& authorization) {
  return authorization.substr(authorization.find("Signature=") + 10);
}

}  // namespace

TEST_CASE("SigV4: AWS's get-vanilla", "[sigv4]") {
  sigv4::Request r;
  r.host = "example.amazonaws.com";
  r.path = "/";
  r.headers = {{"X-Amz-Date", kDate}};
  const auto s = sigv4::sign(r, kExample, "us-east-1", "service", kDate);
  CHECK(s.canonical_request ==
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(s.string_to_sign ==
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  CHECK(s.authorization ==
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST_CASE("SigV4: AWS's get-vanilla-query-order-key-case", "[sigv4]") {
  sigv4::Request r;
  r.host = "example.amazonaws.com";
  r.path = "/";
  r.query = "Param2=value2&Param1=value1";
  r.headers = {{"x-amz-date", kDate}};
  CHECK(signature_of(sigv4::sign(r, kExample, "us-east-1", "service", kDate).authorization) ==
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST_CASE("SigV4: S3 requests as botocore signs them", "[sigv4]") {
  sigv4::Request r;
  r.host = "127.0.0.1:5000";
  r.path = "/my-bucket/" + sigv4::uri_encode("dir/a b+c.safetensors", true);
  CHECK(r.path == "/my-bucket/dir/a%20b%2Bc.safetensors");
  sigv4::Credentials token = kExample;
  token.session_token = "TOKEN/with+chars";
  r.headers = {{"x-amz-content-sha256", sigv4::kEmptyPayload},
               {"x-amz-date", kDate},
               {"x-amz-security-token", token.session_token}};
  const auto s = sigv4::sign(r, token, "eu-west-1", "s3", kDate);
  CHECK_THAT(s.authorization,
             Catch::Contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token"));
  CHECK(signature_of(s.authorization) ==
        "83792c5cbbb1a17db5146fd73b5490509335962c19f90c564b7743c6e167e754");

  sigv4::Request list;
  list.host = "127.0.0.1:5000";
  list.path = "/my-bucket";
  list.query = "list-type=2&prefix=" + sigv4::uri_encode("models/llama/", false) + "&delimiter=" +
               sigv4::uri_encode("/", false);
  list.headers = {{"x-amz-content-sha256", sigv4::kEmptyPayload}, {"x-amz-date", kDate}};
  CHECK(signature_of(sigv4::sign(list, kExample, "us-east-1", "s3", kDate).authorization) ==
        "47d025b5fbe4c21e8707449b7d9be840c960e663e95d799c033c7a49e197d675");
}
