// S3 against moto_server (scripts/net-servers.sh; tests/net/s3_setup.py fills
// it): one instance verifies SigV4 against an IAM key made at start, one is a
// public bucket. Every model loads from S3 byte-identical to the local load;
// credentials come from the environment or a profile; a wrong secret is a
// 403 that says so; anonymous access works where the bucket allows it.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

#include <boost/asio/io_context.hpp>

#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "remote_support.hpp"

using namespace mneme;
namespace fs = std::filesystem;

namespace {

struct S3Server {
  std::string endpoint, public_endpoint, access_key, secret_key, bucket;
};

// The servers, or nullopt after recording a skip.
std::optional<S3Server> s3_or_skip() {
  if (!test::server_or_skip("MNEME_S3_ENDPOINT")) return std::nullopt;
  const auto env = [](const char* n) { return std::string(std::getenv(n) ? std::getenv(n) : ""); };
  return S3Server{env("MNEME_S3_ENDPOINT"), env("MNEME_S3_PUBLIC_ENDPOINT"),
                  env("MNEME_S3_ACCESS_KEY"), env("MNEME_S3_SECRET_KEY"), env("MNEME_S3_BUCKET")};
}

// The AWS environment of one case, restored when it ends: no credentials, no
// profile, no instance metadata service, the endpoint given.
class AwsEnv {
 public:
  // A home of this process's own: CTest runs this file's cases as parallel
  // processes, and a shared one was emptied under a case still reading it.
  explicit AwsEnv(const std::string& endpoint)
      : home_(test::scratch_dir("s3-home-" + std::to_string(::getpid()))) {
    for (const char* n : kVars) {
      if (const char* v = std::getenv(n)) saved_.emplace_back(n, v);
      ::unsetenv(n);
    }
    set("HOME", home_.string());
    set("AWS_EC2_METADATA_DISABLED", "true");
    set("AWS_ENDPOINT_URL", endpoint);
  }
  ~AwsEnv() {
    for (const char* n : kVars) ::unsetenv(n);
    for (const auto& [n, v] : saved_) ::setenv(n.c_str(), v.c_str(), 1);
  }
  void set(const char* name, const std::string& value) { ::setenv(name, value.c_str(), 1); }
  const fs::path& home() const { return home_; }

 private:
  static constexpr const char* kVars[] = {"HOME",
                                          "AWS_ACCESS_KEY_ID",
                                          "AWS_SECRET_ACCESS_KEY",
                                          "AWS_SESSION_TOKEN",
                                          "AWS_PROFILE",
                                          "AWS_SHARED_CREDENTIALS_FILE",
                                          "AWS_CONFIG_FILE",
                                          "AWS_NO_SIGN_REQUEST",
                                          "AWS_REGION",
                                          "AWS_DEFAULT_REGION",
                                          "AWS_ENDPOINT_URL",
                                          "AWS_ENDPOINT_URL_S3",
                                          "AWS_EC2_METADATA_DISABLED",
                                          "AWS_WEB_IDENTITY_TOKEN_FILE",
                                          "AWS_ROLE_ARN",
                                          "AWS_ENDPOINT_URL_STS",
                                          "AWS_EC2_METADATA_SERVICE_ENDPOINT"};
  fs::path home_;
  std::vector<std::pair<std::string, std::string>> saved_;
};

const fs::path kRepoFixtures = fs::path(MNEME_SOURCE_DIR) / "fixtures";

void require_same(const std::string& s3, const fs::path& local,
                  std::optional<OutType> to = OutType::bf16, LoadOptions o = {}) {
  INFO(s3 << " <-> " << local.string());
  CHECK(test::load_bytes({s3}, to, o) == test::load_bytes({local.string()}, to));
}

}  // namespace

TEST_CASE("S3 with SigV4: every model loads as it loads from disk", "[s3][net]") {
  const auto s3 = s3_or_skip();
  if (!s3) return;
  AwsEnv env(s3->endpoint);
  env.set("AWS_ACCESS_KEY_ID", s3->access_key);
  env.set("AWS_SECRET_ACCESS_KEY", s3->secret_key);
  const std::string b = "s3://" + s3->bucket + "/";
  require_same(b + "q4k-q6k.gguf", kRepoFixtures / "samples" / "q4k-q6k.gguf");
  require_same(b + "gptq/model.safetensors",
               kRepoFixtures / "samples" / "gptq");               // config.json beside
  require_same(b + "gptq/", kRepoFixtures / "samples" / "gptq");  // a listed prefix
  require_same(b + "fp8/", kRepoFixtures / "samples" / "fp8", OutType::f16);
  require_same(b + "sample-model/", kRepoFixtures / "sample-model");  // index and shards
  require_same(b + "sample-model/model.safetensors.index.json", kRepoFixtures / "sample-model");
  std::size_t archives = 0;
  for (const char* family : {"npz", "pth"}) {
    for (const auto& path : test::fixture_files(family)) {
      const auto ext = path.extension().string();
      if (ext != ".npz" && ext != ".pth") continue;
      require_same(b + "fixtures/" + family + "/" + path.filename().string(), path, std::nullopt);
      ++archives;
    }
  }
  CHECK(archives >= 3);
}

TEST_CASE("S3 credentials from a profile, and a wrong secret refused with 403", "[s3][net]") {
  const auto s3 = s3_or_skip();
  if (!s3) return;
  AwsEnv env(s3->endpoint);
  fs::create_directories(env.home() / ".aws");
  std::ofstream(env.home() / ".aws" / "credentials")
      << "[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\n"
      << "[mneme-test]\naws_access_key_id = " << s3->access_key
      << "\naws_secret_access_key = " << s3->secret_key << "\n";
  std::ofstream(env.home() / ".aws" / "config") << "[profile mneme-test]\nregion = us-east-1\n";
  env.set("AWS_PROFILE", "mneme-test");
  const std::string model = "s3://" + s3->bucket + "/q4k-q6k.gguf";
  require_same(model, kRepoFixtures / "samples" / "q4k-q6k.gguf");

  env.set("AWS_ACCESS_KEY_ID", s3->access_key);  // the environment comes first
  env.set("AWS_SECRET_ACCESS_KEY", s3->secret_key + "x");
  boost::asio::io_context io;
  try {
    open_catalog({model}, io.get_executor());
    FAIL("a wrong secret was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::network);
    CHECK_THAT(e.what(), Catch::Contains("403") && Catch::Contains("SignatureDoesNotMatch") &&
                             Catch::Contains(model) && Catch::Contains("request id"));
  }
}

TEST_CASE("S3 without credentials: anonymous where asked for, a clear error otherwise",
          "[s3][net]") {
  const auto s3 = s3_or_skip();
  if (!s3) return;
  const std::string model = "s3://" + s3->bucket + "/q4k-q6k.gguf";
  {
    AwsEnv env(s3->public_endpoint);
    env.set("AWS_NO_SIGN_REQUEST", "true");
    require_same(model, kRepoFixtures / "samples" / "q4k-q6k.gguf");
  }
  {
    AwsEnv env(s3->public_endpoint);
    LoadOptions o;
    o.open.open.s3_anonymous = true;  // --no-sign-request
    require_same(model, kRepoFixtures / "samples" / "q4k-q6k.gguf", OutType::bf16, o);
  }
  {
    AwsEnv env(s3->endpoint);
    boost::asio::io_context io;
    try {
      open_catalog({model}, io.get_executor());
      FAIL("opened without credentials");
    } catch (const Error& e) {
      CHECK_THAT(e.what(),
                 Catch::Contains("no AWS credentials") && Catch::Contains("--no-sign-request"));
    }
  }
  {
    AwsEnv env(s3->endpoint);  // signing server, no signature: refused
    env.set("AWS_NO_SIGN_REQUEST", "true");
    boost::asio::io_context io;
    CHECK_THROWS_AS(open_catalog({model}, io.get_executor()), Error);
  }
}

TEST_CASE("S3 credentials from web identity (STS) and from the instance metadata service",
          "[s3][net]") {
  const auto s3 = s3_or_skip();
  const auto services = test::server_or_skip("MNEME_FAULT_URL");  // stands in for STS and IMDS
  if (!s3 || !services) return;
  const std::string model = "s3://" + s3->bucket + "/q4k-q6k.gguf";
  const auto local = kRepoFixtures / "samples" / "q4k-q6k.gguf";
  {
    AwsEnv env(s3->endpoint);
    const auto token = env.home() / "web-token";
    std::ofstream(token) << "mneme-web-token\n";
    env.set("AWS_WEB_IDENTITY_TOKEN_FILE", token.string());
    env.set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/mneme");
    env.set("AWS_ENDPOINT_URL_STS", *services + "/sts");
    require_same(model, local);
    // The exchange is kept for the process: a model of an index, three
    // shards and a config.json (one credential chain each) asks STS nothing
    // more. Before, every source made its own exchange.
    const auto sts_calls = [&] { return std::stoi(test::get_text(*services + "/__calls__/sts")); };
    const int before = sts_calls();
    require_same("s3://" + s3->bucket + "/sample-model/", kRepoFixtures / "sample-model");
    CHECK(sts_calls() == before);
    std::ofstream(token) << "not-the-token\n";
    boost::asio::io_context io;
    try {
      open_catalog({model}, io.get_executor());
      FAIL("a refused web identity token gave credentials");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::Contains("AssumeRoleWithWebIdentity") && Catch::Contains("403"));
    }
  }
  {
    AwsEnv env(s3->endpoint);
    ::unsetenv("AWS_EC2_METADATA_DISABLED");
    env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", *services + "/imds");
    require_same(model, local);
    ::unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  }
}
