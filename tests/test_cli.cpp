// The mneme command as a user runs it (issue 9): outputs that must never
// destroy or corrupt a file, hangs and leftovers, and the CLI's own contract.
// Every case runs the built binary (MNEME_CLI, set by ctest).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gguf_builder.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "src/formats/safetensors_writer.hpp"
#include "test_support.hpp"

using namespace mneme;
namespace fs = std::filesystem;
using test::shq;

namespace {

const fs::path kSample = fs::path(MNEME_SOURCE_DIR) / "fixtures" / "sample-model";

std::string mneme_cmd(const char* cli, const std::string& args) {
  return std::string(cli) + " " + args;
}

// Writes a safetensors file of F32/I64 tensors filled with `fill`.
void write_model(const fs::path& path, const std::vector<TensorEntry>& entries,
                 const std::vector<MetadataEntry>& metadata = {}, char fill = 0x11) {
  auto w = create_safetensors_file(path.string(), entries, metadata);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::vector<std::byte> bytes(entries[i].bytes, std::byte(fill));
    w->write(i, 0, bytes);
  }
  w->commit();
}

std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool parses(const fs::path& file) {
  boost::asio::io_context io;
  try {
    open_catalog({file.string()}, io.get_executor());
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

TEST_CASE(
    "item 2: -o onto a device, FIFO, directory or dangling link is refused and left as it was",
    "[cli][output]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-output-kinds");
  const std::string src = shq(kSample);

  SECTION("a character device") {
    const auto r = test::run(mneme_cmd(cli, "remember " + src + " -o /dev/null --force 2>&1"));
    CHECK(r.status == 1);
    CHECK(r.out.find("character device") != std::string::npos);
    struct stat st {};
    REQUIRE(::stat("/dev/null", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  }
  SECTION("/dev/stdout on a pipe") {
    const auto r =
        test::run(mneme_cmd(cli, "remember " + src + " -o /dev/stdout --force 2>&1 | cat"));
    CHECK(r.out.find("FIFO") != std::string::npos);
    CHECK(r.out.find("wrote") == std::string::npos);
  }
  SECTION("a FIFO: refused without opening it (no reader hangs)") {
    const auto fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    const auto r =
        test::run("timeout 20 " + mneme_cmd(cli, "convert " + src + " --to safetensors -o " +
                                                     shq(fifo) + " --force 2>&1"));
    CHECK(r.status == 1);
    CHECK(r.out.find("FIFO") != std::string::npos);
    struct stat st {};
    REQUIRE(::lstat(fifo.c_str(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
  }
  SECTION("a symlink to a file: the target is replaced, the link stays") {
    const auto target = dir / "target.safetensors";
    std::ofstream(target) << "old";
    fs::create_symlink("target.safetensors", dir / "link.safetensors");
    const auto r = test::run(mneme_cmd(
        cli, "remember " + src + " -q --force -o " + shq(dir / "link.safetensors") + " 2>&1"));
    INFO(r.out);
    CHECK(r.status == 0);
    CHECK(fs::is_symlink(dir / "link.safetensors"));
    CHECK(parses(target));
  }
  SECTION("a dangling symlink") {
    fs::create_symlink("nowhere", dir / "dangling");
    const auto r =
        test::run(mneme_cmd(cli, "remember " + src + " -q -o " + shq(dir / "dangling") + " 2>&1"));
    CHECK(r.status == 1);
    CHECK(r.out.find("dangling") != std::string::npos);
    CHECK(fs::is_symlink(dir / "dangling"));
    CHECK(!fs::exists(dir / "nowhere"));
  }
}

TEST_CASE("item 3: two writers of one output use their own temporaries; the result is whole",
          "[cli][output]") {
  const auto dir = test::scratch_dir("cli-two-writers");
  const auto out = dir / "out.safetensors";
  const std::vector<TensorEntry> small{{"a", DType::f32, {4}, 16}};
  const std::vector<TensorEntry> big{{"a", DType::f32, {1024}, 4096},
                                     {"b", DType::f32, {1024}, 4096}};
  auto w1 = create_safetensors_file(out.string(), big, {});
  auto w2 = create_safetensors_file(out.string(), small, {});
  CHECK(w1->temporary_path() != w2->temporary_path());
  std::vector<std::byte> bytes(4096, std::byte{1});
  w1->write(0, 0, bytes);
  w1->write(1, 0, bytes);
  w2->write(0, 0, std::span(bytes).first(16));
  w1->commit();
  CHECK(parses(out));
  w2->commit();
  CHECK(parses(out));
  CHECK(fs::file_size(out) < 4096);  // the second run's file, whole
  CHECK(entries_of(dir) == std::vector<std::string>{"out.safetensors"});

  SECTION("a writer that fails or is dropped leaves nothing") {
    {
      auto w = create_safetensors_file((dir / "dropped.safetensors").string(), small, {});
      CHECK(fs::exists(w->temporary_path()));
    }
    CHECK(entries_of(dir) == std::vector<std::string>{"out.safetensors"});
  }
}

TEST_CASE("item 4: output == input is refused; an existing file is replaced only with --force",
          "[cli][output]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-overwrite");
  const auto model = dir / "m.safetensors";
  write_model(model, {{"w", DType::f32, {64}, 256}});
  const auto before = test::read_file(model);

  auto r =
      test::run(mneme_cmd(cli, "remember " + shq(model) + " -o " + shq(model) + " --force 2>&1"));
  CHECK(r.status == 1);
  CHECK(r.out.find("input") != std::string::npos);
  CHECK(test::read_file(model) == before);
  fs::create_hard_link(model, dir / "hardlink.safetensors");  // same inode, other name
  r = test::run(mneme_cmd(cli, "remember " + shq(model) + " -o " +
                                   shq(dir / "hardlink.safetensors") + " --force 2>&1"));
  CHECK(r.status == 1);
  CHECK(test::read_file(model) == before);

  const auto out = dir / "out.safetensors";
  std::ofstream(out) << "keep me";
  r = test::run(mneme_cmd(cli, "remember " + shq(model) + " -q -o " + shq(out) + " 2>&1"));
  CHECK(r.status == 1);
  CHECK(r.out.find("--force") != std::string::npos);
  CHECK(test::read_file(out).size() == 7);
  r = test::run(mneme_cmd(cli, "remember " + shq(model) + " -q --force -o " + shq(out) + " 2>&1"));
  CHECK(r.status == 0);
  CHECK(parses(out));
  CHECK(test::run(mneme_cmd(cli, "remember --help")).out.find("--force") != std::string::npos);
}

namespace {

// A loopback TCP server that accepts and then sends `prefix` and nothing more.
struct StallingServer {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor{io, {boost::asio::ip::address_v4::loopback(), 0}};
  std::thread thread;
  explicit StallingServer(std::string prefix) {
    thread = std::thread([this, prefix] {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket s(io);
      acceptor.accept(s, ec);
      if (ec) return;
      boost::asio::write(s, boost::asio::buffer(prefix), ec);
      char byte;
      s.read_some(boost::asio::buffer(&byte, 1), ec);  // until the client gives up
    });
  }
  ~StallingServer() {
    boost::system::error_code ec;
    acceptor.close(ec);
    thread.join();
  }
  std::string url() const {
    return "tcp://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  }
};

}  // namespace

TEST_CASE("item 5: a stalled TCP peer times out, at connect and mid-stream, leaving nothing",
          "[cli][network]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-tcp-stall");
  SECTION("mid-stream") {
    // A valid safetensors header promising 1 MiB of data, then silence.
    const std::string json = R"({"w":{"dtype":"F32","shape":[262144],"data_offsets":[0,1048576]}})";
    std::string head(8, '\0');
    for (int i = 0; i < 8; ++i) head[i] = static_cast<char>((json.size() >> (8 * i)) & 0xFF);
    StallingServer server(head + json + std::string(1000, '\0'));
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = test::run(
        "cd " + shq(dir) + " && timeout 60 " +
        mneme_cmd(cli, "remember " + server.url() + " --timeout 1 -q -o out.safetensors 2>&1"));
    INFO(r.out);
    CHECK(r.status == 1);
    CHECK(r.out.find("idle timeout") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
    CHECK(entries_of(dir).empty());
  }
  SECTION("at connect: a listener whose accept queue is full never answers") {
    const int l = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(l >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(l, 0) == 0);
    socklen_t len = sizeof a;
    ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    // Fill the queue: later SYNs are dropped, so a connect just waits.
    std::vector<int> fillers;
    for (int i = 0; i < 4; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
      fillers.push_back(c);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::string url = "tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    const auto r = test::run("cd " + shq(dir) + " && timeout 60 " +
                             mneme_cmd(cli, "inspect " + url + " --connect-timeout 1 2>&1"));
    INFO(r.out);
    CHECK(r.status == 1);
    CHECK(r.out.find("connect timeout") != std::string::npos);
    for (int c : fillers) ::close(c);
    ::close(l);
  }
}

TEST_CASE("item 6: SIGINT mid-run cancels cleanly; -o naming a directory fails before any work",
          "[cli][signals]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-sigint");
  SECTION("SIGINT while the source still streams") {
    // The model arrives through a FIFO: the header and part of the data, then
    // (once the run has begun writing) SIGINT, then the rest.
    const std::vector<TensorEntry> entries{{"w", DType::f32, {1 << 20}, 4 << 20}};
    write_model(dir / "m.safetensors", entries);
    const auto model = test::read_file(dir / "m.safetensors");
    const auto fifo = dir / "in.fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    fs::create_directory(dir / "out");
    const std::string cmd = "exec " + mneme_cmd(cli, "remember " + shq(fifo) + " --chunk 64k -o " +
                                                         shq(dir / "out" / "m.safetensors") +
                                                         " 2>" + shq(dir / "err.txt"));
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    const std::size_t half = model.size() / 2;
    REQUIRE(::write(fd, model.data(), half) == static_cast<ssize_t>(half));
    for (int i = 0; i < 200 && entries_of(dir / "out").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    CHECK(!entries_of(dir / "out").empty());  // the temporary exists: the run has begun
    ::kill(pid, SIGINT);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ssize_t ignored = ::write(fd, model.data() + half, model.size() - half);
    (void)ignored;
    ::close(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    CHECK(entries_of(dir / "out").empty());
    const auto err = test::read_file(dir / "err.txt");
    const std::string text(err.begin(), err.end());
    INFO(text);
    CHECK(text.find("interrupted") != std::string::npos);
    CHECK((!text.empty() && text.back() == '\n'));
  }
  SECTION("-o an existing directory, or a path ending in /") {
    fs::create_directory(dir / "outdir");
    for (const std::string o : {"outdir", "outdir/", "missing/"}) {
      const auto r = test::run("cd " + shq(dir) + " && " +
                               mneme_cmd(cli, "remember " + shq(kSample) + " -o " + o + " 2>&1"));
      INFO(o << ": " << r.out);
      CHECK(r.status == 1);
      CHECK(r.out.find("directory") != std::string::npos);
    }
    CHECK(entries_of(dir) == std::vector<std::string>{"outdir"});
    CHECK(entries_of(dir / "outdir").empty());
  }
}

TEST_CASE("item 7: -o - is refused with a clear message", "[cli][output]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-stdout");
  const auto r = test::run("cd " + shq(dir) + " && " +
                           mneme_cmd(cli, "remember " + shq(kSample) + " -o - 2>&1"));
  CHECK(r.status == 2);
  CHECK(r.out.find("standard output is not supported") != std::string::npos);
  CHECK(entries_of(dir).empty());
}

TEST_CASE("item 8: options a command does not take and malformed values are usage errors",
          "[cli][usage]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const std::string src = shq(kSample);
  for (const std::string args :
       {"remember " + src + " --dtype f16", "load " + src + " -o foo",
        "inspect " + src + " --to f16", "inspect " + src + " --threads 3",
        "inspect " + src + " -o foo", "load " + src + " --threads 3x",
        "load " + src + " --threads 0", "load " + src + " --budget 1k",
        "load " + src + " --budget 12q", "load " + src + " --budget", "load " + src + " --io fast",
        "load " + src + " --timeout 0", "remember " + src + " --json"}) {
    const auto r = test::run(mneme_cmd(cli, args + " 2>&1 >/dev/null"));
    INFO(args << ": " << r.out);
    CHECK(r.status == 2);
  }
}

TEST_CASE("item 9: --version, per-command --help, --, and one-line usage errors", "[cli][usage]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  for (const char* v : {"--version", "-V"}) {
    const auto r = test::run(mneme_cmd(cli, v));
    CHECK(r.status == 0);
    CHECK(r.out.rfind("mneme ", 0) == 0);
  }
  for (const char* c : {"inspect", "remember", "convert", "load"}) {
    const auto r = test::run(mneme_cmd(cli, std::string(c) + " --help"));
    INFO(c);
    CHECK(r.status == 0);
    CHECK(r.out.find(std::string("usage: mneme ") + c) != std::string::npos);
  }
  const auto help = test::run(mneme_cmd(cli, "--help")).out;
  CHECK(help.find("--version") != std::string::npos);
  const auto load_help = test::run(mneme_cmd(cli, "load --help")).out;
  CHECK(load_help.find("auto (default") != std::string::npos);  // the real default of --io
  CHECK(load_help.find("--chunk") != std::string::npos);
  CHECK(load_help.find("--quiet") != std::string::npos);
  // After --, a source may start with '-'.
  const auto dir = test::scratch_dir("cli-dashdash");
  fs::copy(kSample / "model-00001-of-00003.safetensors", dir / "-m.safetensors");
  auto r =
      test::run("cd " + shq(dir) + " && " + mneme_cmd(cli, "inspect --json -- -m.safetensors"));
  CHECK(r.status == 0);
  r = test::run(mneme_cmd(cli, "inspect --bogus x 2>&1"));
  CHECK(r.status == 2);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 2);  // the error and the pointer to --help
  CHECK(r.out.find("--help") != std::string::npos);
}

TEST_CASE("item 10: a file that is no model says so and shows its first bytes", "[cli][detect]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-not-a-model");
  std::ofstream(dir / "notes.txt") << "hello, this is text\n";
  auto r = test::run(mneme_cmd(cli, "inspect " + shq(dir / "notes.txt") + " 2>&1"));
  CHECK(r.status == 1);
  CHECK(r.out.find("not a recognised model file") != std::string::npos);
  CHECK(r.out.find("hello") != std::string::npos);
  r = test::run("head -c 4096 /dev/urandom > " + shq(dir / "random.bin") + " && " +
                mneme_cmd(cli, "inspect " + shq(dir / "random.bin") + " 2>&1"));
  CHECK(r.status == 1);
  CHECK(r.out.find("not a recognised model file") != std::string::npos);
}

TEST_CASE(
    "item 11: inspect lists a model whose scheme cannot be resolved, with a warning; --config "
    "resolves it",
    "[cli][inspect][fixtures]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto fp8 = test::fixtures_root() / "safetensors" / "fp8.safetensors";
  if (!fs::exists(fp8)) {
    MNEME_SKIP("fixture safetensors/fp8.safetensors missing");
    return;
  }
  const auto dir = test::scratch_dir("cli-inspect-warn");
  fs::copy(fp8, dir / "fp8.safetensors");  // no config.json beside it
  auto r = test::run(mneme_cmd(cli, "inspect " + shq(dir / "fp8.safetensors") + " 2>&1"));
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("warning") != std::string::npos);
  r = test::run(mneme_cmd(cli, "inspect --json " + shq(dir / "fp8.safetensors")));
  CHECK(r.status == 0);
  CHECK(r.out.find("\"warnings\":[{") != std::string::npos);
  r = test::run(mneme_cmd(cli, "remember " + shq(dir / "fp8.safetensors") + " -q -o " +
                                   shq(dir / "o.safetensors") + " 2>&1"));
  CHECK(r.status == 1);
  std::ofstream(dir / "cfg.json")
      << R"({"quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}})";
  r = test::run(mneme_cmd(cli, "inspect --json --config " + shq(dir / "cfg.json") + " " +
                                   shq(dir / "fp8.safetensors")));
  CHECK(r.status == 0);
  CHECK(r.out.find("\"warnings\":[]") != std::string::npos);
  CHECK(r.out.find("fp8 e4m3 block 128x128") != std::string::npos);
}

TEST_CASE("item 12: inspect prints full names, and counts as BF16 only what is converted",
          "[cli][inspect]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-inspect-table");
  const std::string a = "model.layers.10.self_attn.q_proj.weight.with.a.very.long.suffix.A";
  const std::string b = "model.layers.10.self_attn.q_proj.weight.with.a.very.long.suffix.B";
  write_model(
      dir / "m.safetensors",
      {{a, DType::f32, {2}, 8}, {b, DType::f32, {2}, 8}, {"ids", DType::i64, {1024}, 8192}});
  auto r = test::run(mneme_cmd(cli, "inspect " + shq(dir / "m.safetensors")));
  CHECK(r.out.find(a) != std::string::npos);
  CHECK(r.out.find(b) != std::string::npos);
  r = test::run(mneme_cmd(cli, "inspect --json " + shq(dir / "m.safetensors")));
  CHECK(r.out.find("\"bf16_bytes\":8200") !=
        std::string::npos);  // 4 floats at 2 bytes + 8192 bytes of I64
}

TEST_CASE("item 13: a failed write to standard output exits 1", "[cli][inspect]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto r =
      test::run(mneme_cmd(cli, "inspect --json " + shq(kSample) + " >/dev/full 2>&1; echo $?"));
  CHECK(r.out == "1\n");
}

TEST_CASE("item 13: the progress bar shows done / total and an ETA, and ends its line",
          "[cli][progress]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  if (test::run("script --version >/dev/null 2>&1").status != 0) {
    MNEME_SKIP("util-linux script missing: no terminal to draw the bar on");
    return;
  }
  const auto dir = test::scratch_dir("cli-progress");
  const std::string inner = mneme_cmd(cli, "load " + shq(kSample) + " --chunk 4k");
  const auto r = test::run("cd " + shq(dir) + " && script -qec " + shq(inner) + " /dev/null");
  INFO(r.out);
  CHECK(r.out.find(" / ") != std::string::npos);
  CHECK(r.out.find("100%") != std::string::npos);
  CHECK(r.out.find("\r\nloaded") != std::string::npos);  // the bar's line ended before the summary
}

TEST_CASE("a shard that is a FIFO fails fast with a clear message (issue 14)", "[cli][hostile]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-fifo-shard");
  fs::copy(kSample, dir / "model", fs::copy_options::recursive);
  const auto shard = dir / "model" / "model-00002-of-00003.safetensors";
  fs::remove(shard);
  REQUIRE(::mkfifo(shard.c_str(), 0644) == 0);
  // Named by the index, and found in the folder: neither may wait for a writer.
  for (const auto& spec : {dir / "model" / "model.safetensors.index.json", dir / "model"}) {
    for (const char* io : {"auto", "pread", "mmap"}) {
      const auto r = test::run("timeout 20 " +
                               mneme_cmd(cli, "load " + shq(spec) + " -q --io " + io + " 2>&1"));
      INFO(spec << " --io " << io << ": " << r.out);
      CHECK(r.status == 1);
      CHECK(r.out.find("model-00002-of-00003.safetensors: is a FIFO") != std::string::npos);
    }
  }
}

TEST_CASE("item 14: directories of .bin, NPZ or GGUF splits open; missing shards warn or refuse",
          "[cli][directory]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-directories");
  SECTION("pytorch_model.bin with its index") {
    const auto pth = test::fixture_files("pth");
    if (pth.empty()) {
      MNEME_SKIP("no .pth fixtures");
      return;
    }
    fs::create_directory(dir / "bin");
    fs::copy(pth.front(), dir / "bin" / "pytorch_model.bin");
    const auto r = test::run(mneme_cmd(cli, "inspect " + shq(dir / "bin") + " 2>&1"));
    INFO(r.out);
    CHECK(r.status == 0);
    CHECK(r.out.find("format   pth") != std::string::npos);
    // With pytorch_model.bin.index.json the directory is read through it: an
    // index naming a tensor the shard lacks is refused.
    boost::asio::io_context io;
    const Catalog cat =
        open_catalog({(dir / "bin" / "pytorch_model.bin").string()}, io.get_executor());
    std::string map = R"({"weight_map": {"not.in.the.shard": "pytorch_model.bin")";
    for (const auto& t : cat.tensors) map += ", \"" + t.name + "\": \"pytorch_model.bin\"";
    std::ofstream(dir / "bin" / "pytorch_model.bin.index.json") << map << "}}";
    const auto indexed = test::run(mneme_cmd(cli, "inspect " + shq(dir / "bin") + " 2>&1"));
    INFO(indexed.out);
    CHECK(indexed.status == 1);
    CHECK(indexed.out.find("not.in.the.shard") != std::string::npos);
  }
  SECTION("NPZ files") {
    const auto npz = test::fixtures_root() / "npz" / "gemma_scope_small.npz";
    if (!fs::exists(npz)) {
      MNEME_SKIP("no NPZ fixture");
      return;
    }
    fs::create_directory(dir / "npz");
    fs::copy(npz, dir / "npz" / "params.npz");
    const auto r = test::run(mneme_cmd(cli, "inspect " + shq(dir / "npz") + " 2>&1"));
    INFO(r.out);
    CHECK(r.status == 0);
    CHECK(r.out.find("format   npz") != std::string::npos);
  }
  SECTION("nothing there says what it looked for") {
    fs::create_directory(dir / "empty");
    const auto r = test::run(mneme_cmd(cli, "inspect " + shq(dir / "empty") + " 2>&1"));
    CHECK(r.status == 1);
    CHECK(r.out.find("pytorch_model.bin.index.json") != std::string::npos);
  }
  SECTION("a shard missing") {
    fs::create_directory(dir / "partial");
    for (const char* s : {"model-00001-of-00003.safetensors", "model-00003-of-00003.safetensors"}) {
      fs::copy(kSample / s, dir / "partial" / s);
    }
    auto r = test::run(mneme_cmd(cli, "inspect " + shq(dir / "partial") + " 2>&1"));
    CHECK(r.status == 0);
    CHECK(r.out.find("missing shard 2 of 3") != std::string::npos);
    r = test::run(mneme_cmd(cli, "remember " + shq(dir / "partial") + " -q -o " +
                                     shq(dir / "o.safetensors") + " 2>&1"));
    CHECK(r.status == 1);
    CHECK(r.out.find("--allow-partial") != std::string::npos);
    r = test::run(mneme_cmd(cli, "remember " + shq(dir / "partial") + " -q --allow-partial -o " +
                                     shq(dir / "o.safetensors") + " 2>&1"));
    CHECK(r.status == 0);
  }
}

TEST_CASE("item 18: default output names follow the model and the type", "[cli][output]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-default-names");
  const auto run_in = [&](const std::string& args) {
    return test::run("cd " + shq(dir) + " && " + mneme_cmd(cli, args + " -q 2>&1"));
  };
  CHECK(run_in("remember " + shq(kSample)).status == 0);
  CHECK(fs::exists(dir / "sample-model-bf16.safetensors"));
  CHECK(run_in("remember " + shq(kSample / "model.safetensors.index.json") + " --to f16").status ==
        0);
  CHECK(fs::exists(dir / "sample-model-f16.safetensors"));
  CHECK(run_in("remember " + shq(kSample / "model-00001-of-00003.safetensors") +
               " --to f32 --allow-partial")
            .status == 0);
  CHECK(fs::exists(dir / "model-f32.safetensors"));
  CHECK(run_in("remember - < " + shq(kSample / "model-00002-of-00003.safetensors")).status == 0);
  CHECK(fs::exists(dir / "model-bf16.safetensors"));
}

TEST_CASE("item 19: a decoded FP8 model drops activation scales unless --keep-scales",
          "[cli][fp8]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-activation-scales");
  // An FP8 E4M3 weight with a per-tensor scale and a static input scale.
  write_model(dir / "m.safetensors",
              {{"l.weight", DType::f8_e4m3, {4, 4}, 16},
               {"l.weight_scale", DType::f32, {}, 4},
               {"l.input_scale", DType::f32, {}, 4},
               {"norm.weight", DType::f32, {4}, 16}},
              {}, 0x20);
  auto r = test::run(mneme_cmd(cli, "remember " + shq(dir / "m.safetensors") + " -o " +
                                        shq(dir / "o.safetensors") + " 2>&1"));
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("dropped 1 activation-scale tensor") != std::string::npos);
  auto shown = test::run(mneme_cmd(cli, "inspect --json " + shq(dir / "o.safetensors"))).out;
  CHECK(shown.find("input_scale") == std::string::npos);
  CHECK(shown.find("l.weight") != std::string::npos);
  r = test::run(mneme_cmd(cli, "remember " + shq(dir / "m.safetensors") +
                                   " -q --keep-scales --force -o " + shq(dir / "o.safetensors") +
                                   " 2>&1"));
  REQUIRE(r.status == 0);
  shown = test::run(mneme_cmd(cli, "inspect --json " + shq(dir / "o.safetensors"))).out;
  CHECK(shown.find("l.input_scale") != std::string::npos);
}

TEST_CASE("item 16: a check that cannot run is a skip, and a failure under CI", "[cli][skip]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  // Another test executable's CLI case, run without MNEME_CLI.
  const std::string exe = std::string(MNEME_BINARY_DIR) + "/tests/test_gguf";
  const std::string filter = shq(std::string("the CLI exits 1 on every hostile GGUF"));
  auto r = test::run("env -u MNEME_CLI -u CI " + exe + " " + filter + " >/dev/null 2>&1; echo $?");
  CHECK(r.out == std::to_string(test::kSkipExitCode) + "\n");
  r = test::run("env -u MNEME_CLI CI=true " + exe + " " + filter + " >/dev/null 2>&1; echo $?");
  CHECK(r.out != std::to_string(test::kSkipExitCode) + "\n");
  CHECK(r.out != "0\n");
}

TEST_CASE("item 17: the bundled quantized samples are small, name their schemes and decode",
          "[cli][demo]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto samples = fs::path(MNEME_SOURCE_DIR) / "fixtures" / "samples";
  const auto dir = test::scratch_dir("cli-samples");
  const std::vector<std::pair<std::string, std::string>> cases{{"q4k-q6k.gguf", "Q6_K"},
                                                               {"gptq", "gptq 4-bit group 128"},
                                                               {"fp8", "fp8 e4m3 block 128x128"}};
  for (const auto& [sample, scheme] : cases) {
    INFO(sample);
    const auto path = samples / sample;
    REQUIRE(fs::exists(path));
    std::uintmax_t bytes = 0;
    for (const auto& e : fs::is_directory(path) ? std::vector<fs::path>{path / "model.safetensors"}
                                                : std::vector<fs::path>{path}) {
      bytes += fs::file_size(e);
    }
    CHECK(bytes < (1u << 20));
    auto r = test::run(mneme_cmd(cli, "inspect " + shq(path) + " 2>&1"));
    CHECK(r.status == 0);
    CHECK(r.out.find(scheme) != std::string::npos);
    r = test::run(mneme_cmd(
        cli, "remember " + shq(path) + " -q -o " + shq(dir / (sample + ".safetensors")) + " 2>&1"));
    CHECK(r.status == 0);
  }
}

TEST_CASE("item 15: a GPTQ tensor held whole is reported, and its cap names --budget",
          "[cli][gptq]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto samples = fs::path(MNEME_SOURCE_DIR) / "fixtures" / "samples";
  const auto dir = test::scratch_dir("cli-gptq-whole");
  auto r = test::run(mneme_cmd(
      cli, "remember " + shq(samples / "gptq") + " -o " + shq(dir / "o.safetensors") + " 2>&1"));
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("of tensors held whole") != std::string::npos);
  // A 16384 x 32768 down_proj (as in a 405B model): 2 GiB at F32, above the
  // 1 GiB default cap. The file is sparse: no byte of it is written.
  fs::create_directory(dir / "big");
  fs::copy(samples / "gptq" / "config.json", dir / "big" / "config.json");
  const std::uint64_t in = 32768, out = 16384, groups = in / 128;
  auto w =
      create_safetensors_file((dir / "big" / "model.safetensors").string(),
                              {{"l.qweight", DType::i32, {in / 8, out}, in / 8 * out * 4},
                               {"l.qzeros", DType::i32, {groups, out / 8}, groups * out / 8 * 4},
                               {"l.scales", DType::f16, {groups, out}, groups * out * 2}},
                              {});
  w->commit();
  r = test::run(mneme_cmd(cli, "remember " + shq(dir / "big") + " --to f32 -q -o " +
                                   shq(dir / "big.safetensors") + " 2>&1"));
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(r.out.find("--budget") != std::string::npos);
  CHECK(!fs::exists(dir / "big.safetensors"));
}

TEST_CASE(
    "item 14: GGUF splits missing, by name or by split.count, warn on inspect and refuse elsewhere",
    "[cli][directory][gguf]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("cli-gguf-splits");
  // A GGUF with split.count (u16, as llama.cpp writes it) and one F32 tensor.
  const auto split = [](std::uint16_t no, std::uint16_t count, const std::string& tensor) {
    test::GgufBuilder b;
    b.header(1, 2);
    b.str("split.no"), b.u32(2), b.raw(&no, 2);
    b.str("split.count"), b.u32(2), b.raw(&count, 2);
    b.tensor(tensor, {8}, 0, 0);
    b.align();
    b.data(32, '\0');
    return b.bytes;
  };
  std::ofstream(dir / "m-00001-of-00003.gguf", std::ios::binary) << split(0, 3, "a");
  std::ofstream(dir / "m-00003-of-00003.gguf", std::ios::binary) << split(2, 3, "c");
  std::ofstream(dir / "single.gguf", std::ios::binary) << split(0, 2, "a");
  for (const char* first : {"m-00001-of-00003.gguf", "single.gguf"}) {
    INFO(first);
    auto r = test::run(mneme_cmd(cli, "inspect " + shq(dir / first) + " 2>&1"));
    CHECK(r.status == 0);
    CHECK(r.out.find("incomplete model") != std::string::npos);
    r = test::run(mneme_cmd(
        cli, "convert " + shq(dir / first) + " --to gguf -q -o " + shq(dir / "o.gguf") + " 2>&1"));
    CHECK(r.status == 1);
    CHECK(r.out.find("--allow-partial") != std::string::npos);
  }
  CHECK(test::run(mneme_cmd(cli, "inspect --json " + shq(dir / "m-00001-of-00003.gguf")))
            .out.find("\"c\"") != std::string::npos);
}

// Issue 15, item 4: Highway's library runs a 5 ms timer calibration when it
// is loaded, so it is opened on the first kernel dispatch instead of linked
// (kernels/simd/hwy_runtime.cpp): inspect, which decodes nothing, never loads
// it; a load that decodes does (which shows the check can see it).
TEST_CASE("issue 15: inspect never loads Highway's library; a decoding load does",
          "[cli][startup]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto inspect =
      test::run("LD_DEBUG=libs " + shq(cli) + " inspect " + shq(kSample) + " 2>&1");
  REQUIRE(inspect.status == 0);
  REQUIRE(inspect.out.find("find library=") != std::string::npos);  // the loader did report
  CHECK(inspect.out.find("libhwy") == std::string::npos);
  const auto load =
      test::run("LD_DEBUG=libs " + shq(cli) + " load " + shq(kSample) + " --to bf16 -q 2>&1");
  REQUIRE(load.status == 0);
  CHECK(load.out.find("libhwy") != std::string::npos);
}
