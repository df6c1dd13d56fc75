// Faults object stores produce, injected by tests/net/fault_proxy.py in front
// of the test nginx (both started by scripts/test.sh on 127.0.0.1): every
// transient fault is survived with output identical to the local load, every
// other one is an error that says what happened; never a hang, never corrupt
// output, never a leftover file.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include "io/http_client.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "remote_support.hpp"
#include "src/formats/safetensors_writer.hpp"

using namespace mneme;
namespace fs = std::filesystem;

namespace {

// A 6 MiB safetensors model (three F32 tensors of distinct bytes) in the
// scratch directory the test nginx publishes (one per process: ctest runs the
// cases of this file side by side).
fs::path model_file() {
  static const fs::path file = [] {
    const auto dir = test::scratch_dir("http-faults-" + std::to_string(::getpid()));
    const auto path = dir / "model.safetensors";
    const std::uint64_t n = 512 * 1024;  // values per tensor: 2 MiB
    auto w = create_safetensors_file(path.string(),
                                     {{"a", DType::f32, {n}, n * 4},
                                      {"b", DType::f32, {512, 1024}, n * 4},
                                      {"c", DType::f32, {n}, n * 4}},
                                     {});
    std::vector<std::byte> bytes(n * 4);
    for (std::size_t t = 0; t < 3; ++t) {
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<std::byte>((i * 131 + t * 17 + (i >> 12)) & 0xFF);
      }
      w->write(t, 0, bytes);
    }
    w->commit();
    return path;
  }();
  return file;
}

// Small parts, quick retries, a 1 s stall window: faults surface fast.
LoadOptions quick() {
  LoadOptions o;
  o.open.open.part_bytes = 1 << 20;
  o.open.open.max_attempts = 4;
  o.open.open.retry_base = std::chrono::milliseconds(1);
  o.open.open.retry_cap = std::chrono::milliseconds(20);
  o.open.open.idle_timeout = std::chrono::milliseconds(1000);
  o.open.open.stall_bytes_per_second = 1 << 16;
  return o;
}

// SPEC made unique to this process: the proxy counts requests per SPEC for
// its whole life, and each case's nonce (~x) plus the pid starts a fresh count.
std::string unique(const std::string& spec) {
  return spec + "-" + std::to_string(::getpid());
}

// The model through the proxy with fault SPEC.
std::string through(const std::string& proxy, const std::string& spec) {
  return proxy + "/" + unique(spec) + test::url_of("", model_file());
}

std::uint64_t bytes_sent(const std::string& proxy, const std::string& spec) {
  return std::stoull(test::get_text(proxy + "/__bytes__/" + unique(spec)));
}

}  // namespace

TEST_CASE("transient faults are retried and resumed: the load is byte-identical",
          "[http][net][faults]") {
  const auto proxy = test::server_or_skip("MNEME_FAULT_URL");
  if (!proxy) return;
  const auto local = test::load_bytes({model_file().string()}, std::nullopt);
  // Requests 1-4 read the first byte and the header, 5 and 6 look for
  // config.json and quantize_config.json (404), 7 on are data parts.
  for (const char* spec : {"503@1~a", "500@4~b", "503@5~b2", "503@7,503@8,503@9~c",
                           "reset@8:70000~d", "truncate@7:300000~e", "stall@9:1000~f",
                           "reset@7:10,truncate@10:5~g"}) {
    INFO(spec);
    CHECK(test::load_bytes({through(*proxy, spec)}, std::nullopt, quick()) == local);
  }
}

TEST_CASE("faults that are not transient are errors that say what happened",
          "[http][net][faults]") {
  const auto proxy = test::server_or_skip("MNEME_FAULT_URL");
  if (!proxy) return;
  const std::vector<std::pair<const char*, const char*>> cases{
      {"503@*~h", "SlowDown"},                  // every attempt throttled: the last error
      {"nocr@8~i", "Content-Range"},            // a 206 without its range
      {"wrongcr@8~j", "Content-Range"},         // a 206 for other bytes
      {"full@8~k", "bytes"},                    // a 200 with the whole object
      {"long@8~l", "longer than the range"},    // more bytes than asked for
      {"changed@8~m", "changed during the load"},  // If-Match fails: 412
  };
  for (const auto& [spec, says] : cases) {
    INFO(spec);
    try {
      test::load_bytes({through(*proxy, spec)}, std::nullopt, quick());
      FAIL("the fault went unnoticed");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::network);
      CHECK_THAT(e.what(), Catch::Contains(says));
    }
  }
}

TEST_CASE("a throttled load names the attempts it made and the request id", "[http][net][faults]") {
  const auto proxy = test::server_or_skip("MNEME_FAULT_URL");
  if (!proxy) return;
  try {
    test::load_bytes({through(*proxy, "503@7,503@8,503@9,503@10,503@11~n")}, std::nullopt,
                     quick());
    // Four failures in a row on one part exhaust max_attempts = 4.
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("4 attempts") && Catch::Contains("request id test-"));
    return;
  }
  // The five throttled requests may have landed on different parts: then every part
  // succeeded within its attempts, which is right too.
  SUCCEED();
}

TEST_CASE("inspect of a remote model reads its header, never its weights", "[http][net]") {
  const auto proxy = test::server_or_skip("MNEME_FAULT_URL");
  if (!proxy) return;
  boost::asio::io_context io;
  const Catalog cat = open_catalog({through(*proxy, "ok~inspect")}, io.get_executor());
  CHECK(cat.tensors.size() == 3);
  CHECK(bytes_sent(*proxy, "ok~inspect") < 4096);  // of a 6 MiB object
}

TEST_CASE("a failed remote remember leaves no file behind", "[http][net][faults][cli]") {
  const auto proxy = test::server_or_skip("MNEME_FAULT_URL");
  const char* cli = test::cli_or_skip();
  if (!proxy || !cli) return;
  const auto dir = test::scratch_dir("http-faults-cli");
  const auto out = dir / "out.safetensors";
  const auto r = test::run(std::string(cli) + " remember " + test::shq(through(*proxy, "changed@8~o")) +
                           " --to bf16 -q -o " + test::shq(out) + " 2>&1");
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK_THAT(r.out, Catch::Contains("changed during the load"));
  CHECK(fs::is_empty(dir));  // neither the output nor a temporary
}

TEST_CASE("an index's shards over HTTP are opened side by side", "[http][net][faults]") {
  const auto proxy = test::server_or_skip("MNEME_FAULT_URL");
  if (!proxy) return;
  // Every response waits 300 ms: shards opened in turn are never in flight
  // together (the index's three were, before this change, one at a time).
  const std::string spec = unique("delay=300~side-by-side");
  const std::string index = *proxy + "/" + spec +
                            test::url_of("", fs::path(MNEME_SOURCE_DIR) / "fixtures" /
                                                 "sample-model" / "model.safetensors.index.json");
  boost::asio::io_context io;
  const Catalog cat = open_catalog({index}, io.get_executor());
  CHECK(cat.sources.size() == 3);
  CHECK(std::stoi(test::get_text(*proxy + "/__peak__/" + spec)) >= 2);
}
