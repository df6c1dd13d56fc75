// HTTP(S) sources against the test nginx (scripts/net-servers.sh, on
// 127.0.0.1): every remote load is byte-identical to the local one; TLS with
// the run's own CA; redirects; what a missing object says.
#include <catch2/catch.hpp>
#include <cstdlib>

#include <boost/asio/io_context.hpp>

#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "remote_support.hpp"

using namespace mneme;

namespace {

const std::filesystem::path kRepoFixtures = std::filesystem::path(MNEME_SOURCE_DIR) / "fixtures";

void require_same(const std::string& base, const std::filesystem::path& local,
                  std::optional<OutType> to = OutType::bf16) {
  const std::string url = test::url_of(base, local);
  INFO(local.string() << " <-> " << url);
  const auto here = test::load_bytes({local.string()}, to);
  const auto there = test::load_bytes({url}, to);
  REQUIRE(!here.empty());
  CHECK(here.size() == there.size());
  CHECK(here == there);
}

}  // namespace

TEST_CASE("the bundled samples load over HTTP as they load from disk", "[http][net]") {
  const auto base = test::server_or_skip();
  if (!base) return;
  require_same(*base, kRepoFixtures / "samples" / "q4k-q6k.gguf");
  require_same(*base, kRepoFixtures / "samples" / "q4k-q6k.gguf", OutType::f32);
  require_same(*base, kRepoFixtures / "samples" / "gptq" / "model.safetensors");  // config.json beside
  require_same(*base, kRepoFixtures / "samples" / "gptq");  // a folder URL: its model.safetensors
  require_same(*base, kRepoFixtures / "samples" / "fp8" / "model.safetensors", OutType::f16);
  require_same(*base, kRepoFixtures / "sample-model");      // its index and shards
}

TEST_CASE("the NPZ and PyTorch fixtures load over HTTP as they load from disk", "[http][net]") {
  const auto base = test::server_or_skip();
  if (!base) return;
  std::size_t cases = 0;
  for (const char* family : {"npz", "pth"}) {
    for (const auto& path : test::fixture_files(family)) {
      const auto ext = path.extension().string();
      if (ext != ".npz" && ext != ".pth") continue;
      require_same(*base, path, std::nullopt);
      ++cases;
    }
  }
  CHECK(cases >= 3);
}

TEST_CASE("HTTPS with the test CA, and an unknown CA refused at once", "[http][net][tls]") {
  const auto base = test::server_or_skip("MNEME_HTTPS_URL");
  const char* ca = std::getenv("MNEME_TEST_CA");
  if (!base) return;
  REQUIRE(ca);
  const auto model = kRepoFixtures / "samples" / "q4k-q6k.gguf";
  ::setenv("CURL_CA_BUNDLE", ca, 1);
  require_same(*base, model);
  // The system CA store does not know the test CA: a certificate error, not
  // retried (it fails well inside the first backoff's cap).
  ::setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt", 1);
  try {
    test::load_bytes({test::url_of(*base, model)}, OutType::bf16);
    FAIL("a certificate from an unknown CA was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::network);
    CHECK_THAT(e.what(), Catch::Contains("127.0.0.1"));
  }
  ::unsetenv("CURL_CA_BUNDLE");
}

TEST_CASE("a redirect to the object is followed", "[http][net]") {
  const auto base = test::server_or_skip();
  if (!base) return;
  const auto here = test::load_bytes({(kRepoFixtures / "samples" / "gptq").string()}, OutType::bf16);
  CHECK(test::load_bytes({*base + "/redirect/gptq/model.safetensors"}, OutType::bf16) == here);
}

TEST_CASE("a missing object is an io error naming its URL", "[http][net]") {
  const auto base = test::server_or_skip();
  if (!base) return;
  boost::asio::io_context io;
  const std::string url = *base + "/samples/no-such-model.safetensors";
  try {
    open_catalog({url}, io.get_executor());
    FAIL("opened a missing object");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::io);
    CHECK_THAT(e.what(), Catch::Contains(url) && Catch::Contains("404"));
  }
  try {
    open_catalog({*base + "/samples/"}, io.get_executor());
    FAIL("found a model in a folder without one");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::io);
    CHECK_THAT(e.what(), Catch::Contains("model.safetensors.index.json"));
  }
}

TEST_CASE("hf:// resolves through HF_ENDPOINT with the HF_TOKEN bearer", "[http][net][hf]") {
  const auto base = test::server_or_skip();
  if (!base) return;
  ::setenv("HF_ENDPOINT", (*base + "/hub").c_str(), 1);
  ::setenv("HF_TOKEN", "mneme-test-token", 1);
  const auto here = test::load_bytes({(kRepoFixtures / "samples" / "gptq").string()}, OutType::bf16);
  CHECK(test::load_bytes({"hf://test-org/gptq"}, OutType::bf16) == here);  // its model.safetensors + config.json
  CHECK(test::load_bytes({"hf://test-org/gptq@v1.0/model.safetensors"}, OutType::bf16) == here);
  ::setenv("HF_TOKEN", "wrong", 1);
  try {
    test::load_bytes({"hf://test-org/gptq/model.safetensors"}, OutType::bf16);
    FAIL("the hub stand-in accepted a wrong token");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("401") && Catch::Contains("hf://test-org/gptq@main/"));
  }
  ::unsetenv("HF_TOKEN");
  ::unsetenv("HF_ENDPOINT");
}
