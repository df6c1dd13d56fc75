// Byte sources (io/): every kind reads back exact bytes, blocking and through
// coroutines with many reads in flight; short sources throw Error{io};
// sequential semantics (gaps, retained prefix, behind-cursor refusal); the
// io_uring -> pread fallback under a seccomp filter; pipes fed one byte at a
// time; TCP over loopback.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "io/sources.hpp"
#include "mneme/error.hpp"
#include "mneme/source.hpp"
#include "test_support.hpp"

namespace asio = boost::asio;
using mneme::Error;
using mneme::ErrorKind;
using mneme::FileIo;
using mneme::SourcePtr;

namespace {

using Bytes = std::vector<std::byte>;

Bytes random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::byte>(rng() & 0xFF);
  return b;
}

std::filesystem::path write_temp(const std::string& dir, const std::string& name, const Bytes& b) {
  const auto path = mneme::test::scratch_dir(dir) / name;
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  out.close();
  REQUIRE(out.good());
  return path;
}

// Runs f, which must throw Error of `kind` whose message contains `needle`.
template <typename F>
void require_error(F&& f, ErrorKind kind, const std::string& needle = {}) {
  try {
    f();
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(mneme::to_string(e.kind()) == mneme::to_string(kind));
    if (!needle.empty()) CHECK_THAT(e.what(), Catch::Contains(needle));
    return;
  }
  FAIL("expected mneme::Error(" << mneme::to_string(kind) << ")");
}

// Runs one coroutine to completion on ctx (the context the sources were
// opened with: io_uring and socket completions arrive through it), on
// `threads` threads, rethrowing what it threw.
void run_coro(asio::io_context& ctx, std::function<asio::awaitable<void>()> body, int threads = 1) {
  ctx.restart();
  std::exception_ptr error;
  asio::co_spawn(ctx, body(), [&](std::exception_ptr e) { error = e; });
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&] { ctx.run(); });
  ctx.run();
  for (auto& t : extra) t.join();
  if (error) std::rethrow_exception(error);
}

struct Range {
  std::uint64_t offset;
  std::size_t length;
};

std::vector<Range> random_ranges(std::size_t size, int count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Range> r;
  for (int i = 0; i < count; ++i) {
    const std::uint64_t off = rng() % (size + 1);
    const std::size_t max_len = std::min<std::size_t>(size - off, (i % 4 == 0) ? 300000 : 5000);
    r.push_back({off, max_len == 0 ? 0 : static_cast<std::size_t>(rng() % (max_len + 1))});
  }
  r.push_back({0, size});  // whole file
  r.push_back({size, 0});  // empty read at the end
  return r;
}

bool matches(const Bytes& want, const Range& r, const Bytes& got) {
  return got.size() == r.length &&
         std::equal(got.begin(), got.end(), want.begin() + static_cast<std::ptrdiff_t>(r.offset));
}

void check_blocking_reads(mneme::Source& src, const Bytes& want) {
  int bad = 0;
  for (const auto& r : random_ranges(want.size(), 200, 7)) {
    Bytes got(r.length);
    src.read_at(r.offset, got);
    bad += !matches(want, r, got);
  }
  CHECK(bad == 0);
}

// 32 coroutines with up to 8 reads each, all in flight together.
void check_async_reads(asio::io_context& ctx, const SourcePtr& src, const Bytes& want,
                       int threads = 1) {
  const auto ranges = random_ranges(want.size(), 250, 11);
  std::atomic<int> bad{0};
  std::atomic<int> done{0};
  run_coro(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::atomic<int> pending{0};
        std::exception_ptr first_error;
        std::mutex m;
        for (int w = 0; w < 32; ++w) {
          ++pending;
          asio::co_spawn(
              ex,
              [&, w]() -> asio::awaitable<void> {
                for (std::size_t i = w; i < ranges.size(); i += 32) {
                  Bytes got(ranges[i].length);
                  co_await src->async_read_at(ranges[i].offset, got);
                  bad += !matches(want, ranges[i], got);
                  ++done;
                }
              },
              [&](std::exception_ptr e) {
                if (e) {
                  std::lock_guard lk(m);
                  if (!first_error) first_error = e;
                }
                --pending;
              });
        }
        // Wait for the workers without blocking the thread.
        asio::steady_timer t(ex);
        while (pending > 0) {
          t.expires_after(std::chrono::milliseconds(1));
          co_await t.async_wait(asio::use_awaitable);
        }
        if (first_error) std::rethrow_exception(first_error);
      },
      threads);
  CHECK(done == static_cast<int>(ranges.size()));
  CHECK(bad == 0);
}

void check_past_end(asio::io_context& ctx, mneme::Source& src, std::uint64_t size) {
  Bytes one(1), two(2);
  require_error([&] { src.read_at(size, one); }, ErrorKind::io, "past the end");
  if (size > 0) require_error([&] { src.read_at(size - 1, two); }, ErrorKind::io, "past the end");
  require_error([&] { src.read_at(~std::uint64_t{0}, two); }, ErrorKind::io, "past the end");
  Bytes none;
  src.read_at(size, none);  // empty read at the end is fine
  bool threw_async = false;
  try {
    run_coro(ctx, [&]() -> asio::awaitable<void> { co_await src.async_read_at(size, one); });
  } catch (const Error& e) {
    threw_async = e.kind() == ErrorKind::io;
  }
  CHECK(threw_async);
}

// Blocks io_uring_setup with EPERM, as Docker's default seccomp profile does.
bool refuse_io_uring_setup() {
#if defined(__x86_64__)
  constexpr std::uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr std::uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

}  // namespace

// First in the file: the forked child must not inherit a started thread pool.
TEST_CASE("io_uring refused by seccomp: uring throws, automatic does not need it", "[sources]") {
  const Bytes data = random_bytes(100000, 1);
  const auto path = write_temp("sources-seccomp", "data.bin", data).string();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: exit codes say which step failed. Blocking reads only.
    int code = 0;
    try {
      if (!refuse_io_uring_setup()) ::_exit(10);
      asio::io_context ctx;
      try {
        mneme::open_source(path, ctx.get_executor(), {FileIo::uring});
        code = 11;  // io_uring should have been refused
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::unsupported || !std::strstr(e.what(), "io_uring")) code = 12;
      }
      if (code == 0) {
        auto src = mneme::open_source(path, ctx.get_executor());
        if (src->kind() != "mmap") code = 14;
        Bytes got(5000);
        src->read_at(1234, got);
        if (!std::equal(got.begin(), got.end(), data.begin() + 1234)) code = 15;
      }
    } catch (...) {
      code = 16;
    }
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("file and memory sources read back exact bytes", "[sources]") {
  const Bytes data = random_bytes(1 << 20 | 12345, 2);
  const auto path = write_temp("sources-files", "data.bin", data).string();
  asio::io_context ctx;
  auto ex = ctx.get_executor();

  struct Case {
    const char* what;
    std::function<SourcePtr()> make;
    const char* kind;
  };
  const std::vector<Case> cases = {
      {"pread", [&] { return mneme::make_pread_source(path, ex); }, "pread"},
      {"mmap", [&] { return mneme::make_mmap_source(path); }, "mmap"},
      {"memory owning", [&] { return mneme::make_memory_source("mem", Bytes(data)); }, "memory"},
      {"memory view", [&] { return mneme::make_memory_source("mem", std::span(data)); }, "memory"},
      {"open_source pread", [&] { return mneme::open_source(path, ex, {FileIo::pread}); }, "pread"},
      {"open_source mmap", [&] { return mneme::open_source(path, ex, {FileIo::mmap}); }, "mmap"},
      {"file:// URL", [&] { return mneme::open_source("file://" + path, ex, {FileIo::pread}); },
       "pread"},
  };
  for (const auto& c : cases) {
    SECTION(c.what) {
      auto src = c.make();
      CHECK(src->kind() == c.kind);
      CHECK_FALSE(src->sequential());
      REQUIRE(src->size() == data.size());
      check_blocking_reads(*src, data);
      check_async_reads(ctx, src, data);
      check_async_reads(ctx, src, data, /*threads=*/2);
      check_past_end(ctx, *src, data.size());
      if (c.kind == std::string_view("mmap") || c.kind == std::string_view("memory")) {
        REQUIRE(src->contiguous() != nullptr);
        CHECK(std::memcmp(src->contiguous(), data.data(), data.size()) == 0);
      } else {
        CHECK(src->contiguous() == nullptr);
      }
    }
  }
}

TEST_CASE("io_uring file source", "[sources]") {
  const Bytes data = random_bytes(3 << 20 | 777, 3);
  const auto path = write_temp("sources-uring", "data.bin", data).string();
  asio::io_context ctx;
  SourcePtr src;
  try {
    src = mneme::make_uring_source(path, ctx.get_executor());
  } catch (const Error& e) {
    // A kernel or sandbox without io_uring: the refusal must be clean.
    WARN("io_uring unavailable on this machine: " << e.what());
    CHECK(e.kind() == ErrorKind::unsupported);
    return;
  }
  CHECK(src->kind() == "uring");
  CHECK(mneme::open_source(path, ctx.get_executor(), {FileIo::uring})->kind() == "uring");
  REQUIRE(src->size() == data.size());
  check_blocking_reads(*src, data);
  check_async_reads(ctx, src, data);
  check_async_reads(ctx, src, data, /*threads=*/2);
  check_past_end(ctx, *src, data.size());
}

TEST_CASE("file sources: empty files and missing paths and truncation while open", "[sources]") {
  asio::io_context ctx;
  auto ex = ctx.get_executor();
  const auto dir = mneme::test::scratch_dir("sources-edge");
  const auto empty = (dir / "empty.bin").string();
  { std::ofstream(empty, std::ios::binary); }

  for (FileIo mode : {FileIo::automatic, FileIo::pread, FileIo::mmap}) {
    auto src = mneme::open_source(empty, ex, {mode});
    CHECK(src->size() == 0u);
    check_past_end(ctx, *src, 0);
    if (mode == FileIo::mmap) CHECK(src->contiguous() != nullptr);
  }
  auto empty_mem = mneme::make_memory_source("empty", Bytes{});
  CHECK(empty_mem->contiguous() != nullptr);
  check_past_end(ctx, *empty_mem, 0);

  const auto missing = (dir / "no-such-file.bin").string();
  for (FileIo mode : {FileIo::automatic, FileIo::uring, FileIo::pread, FileIo::mmap}) {
    require_error([&] { mneme::open_source(missing, ex, {mode}); }, ErrorKind::io,
                  "no-such-file.bin");
  }
  require_error([&] { mneme::open_source(dir.string(), ex); }, ErrorKind::io, "is a directory");
  require_error([&] { mneme::open_source("", ex); }, ErrorKind::io);

  // A file that shrinks after it was opened: every path reports Error{io}
  // (the mapping's lost pages read as zeros and are noticed, never SIGBUS).
  const Bytes data = random_bytes(200000, 4);
  const auto path = write_temp("sources-trunc", "shrinks.bin", data).string();
  Bytes got_mapped(5000);
  auto pread_src = mneme::open_source(path, ex, {FileIo::pread});
  auto auto_src = mneme::open_source(path, ex);
  auto mmap_src = mneme::open_source(path, ex, {FileIo::mmap});
  REQUIRE(::truncate(path.c_str(), 1000) == 0);
  // A mapping copies out with pread (a short read), and is read in place
  // through contiguous(), where a lost page reads as zeros and check_intact
  // says so.
  require_error([&] { mmap_src->read_at(100000, std::span(got_mapped)); }, ErrorKind::io,
                "unexpected end of file");
  CHECK(std::to_integer<int>(
            *static_cast<const volatile std::byte*>(mmap_src->contiguous() + 100000)) == 0);
  require_error([&] { mmap_src->check_intact(); }, ErrorKind::io, "shrank while mapped");
  Bytes got(5000);
  pread_src->read_at(0, std::span(got).first(1000));  // still there
  require_error([&] { pread_src->read_at(500, got); }, ErrorKind::io, "unexpected end of file");
  require_error([&] { auto_src->read_at(100000, got); }, ErrorKind::io, "unexpected end of file");
  require_error(
      [&] {
        run_coro(ctx,
                 [&]() -> asio::awaitable<void> { co_await pread_src->async_read_at(500, got); });
      },
      ErrorKind::io, "unexpected end of file");
}

// Issue 15: the default maps local files (no copy, no reader thread), and
// reads with pread whatever cannot be mapped; here every guard slot is taken
// (a process with thousands of files mapped), so mapping is refused.
TEST_CASE("automatic file I/O maps a file, and reads it with pread when it cannot", "[sources]") {
  const Bytes data = random_bytes(70000, 9);
  const auto path = write_temp("sources-auto", "data.bin", data).string();
  asio::io_context ctx;
  auto ex = ctx.get_executor();
  auto mapped = mneme::open_source(path, ex);
  CHECK(mapped->kind() == "mmap");
  REQUIRE(mapped->contiguous() != nullptr);
  CHECK(std::memcmp(mapped->contiguous(), data.data(), data.size()) == 0);

  std::vector<SourcePtr> held;
  try {
    for (;;) held.push_back(mneme::open_source(path, ex, {FileIo::mmap}));
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::limit);
    CHECK_THAT(e.what(), Catch::Contains("--io pread"));
  }
  REQUIRE(held.size() >= 1000);
  auto fallback = mneme::open_source(path, ex);
  CHECK(fallback->kind() == "pread");
  check_blocking_reads(*fallback, data);
  held.clear();
  CHECK(mneme::open_source(path, ex)->kind() == "mmap");
}

TEST_CASE("open_source: schemes and specs", "[sources]") {
  asio::io_context ctx;
  auto ex = ctx.get_executor();
  for (const char* spec : {"gs://b/k", "ftp://host/file"}) {
    require_error([&] { mneme::open_source(spec, ex); }, ErrorKind::unsupported, "unsupported");
  }
  require_error([&] { mneme::open_source("file://remotehost/etc/passwd", ex); },
                ErrorKind::unsupported);
  require_error([&] { mneme::open_source("file:///tmp/%zz", ex); }, ErrorKind::parse);
  require_error([&] { mneme::open_source("file:///tmp/a%00b", ex); }, ErrorKind::parse);
  for (const char* spec : {"tcp://", "tcp://host", "tcp://host:", "tcp://:80", "tcp://host:0",
                           "tcp://host:99999", "tcp://host:12ab", "tcp://[::1]"}) {
    require_error([&] { mneme::open_source(spec, ex); }, ErrorKind::parse, "tcp://host:port");
  }

  // Percent-escapes in file URLs; the name stays what the user typed.
  const Bytes data = random_bytes(1000, 5);
  const auto path = write_temp("sources-url", "a b.bin", data);
  const std::string url = "file://" + (path.parent_path() / "a%20b.bin").string();
  auto src = mneme::open_source(url, ex, {FileIo::pread});
  CHECK(src->name() == url);
  check_blocking_reads(*src, data);

  // Attacker-controlled names are escaped in messages.
  require_error([&] { mneme::open_source("/nonexistent/\x1b[31mred", ex); }, ErrorKind::io,
                "\\x1b[31mred");
}

TEST_CASE("sequential semantics: gaps and retained prefix and behind-cursor refusal", "[sources]") {
  asio::io_context ctx;
  const Bytes data = random_bytes(300000, 6);
  auto make = [&] {
    auto in = std::make_unique<std::istringstream>(
        std::string(reinterpret_cast<const char*>(data.data()), data.size()));
    return mneme::make_istream_source("stream\x07name", std::move(in));
  };
  auto expect = [&](mneme::Source& s, std::uint64_t off, std::size_t len) {
    Bytes got(len);
    s.read_at(off, got);
    REQUIRE(matches(data, {off, len}, got));
  };

  auto s = make();
  CHECK(s->sequential());
  CHECK(s->kind() == "istream");
  CHECK_FALSE(s->size().has_value());
  CHECK(s->contiguous() == nullptr);
  expect(*s, 0, 16);        // format detection
  expect(*s, 0, 100);       // read again from the prefix, then onward
  expect(*s, 50, 70000);    // prefix part + stream part, crossing 64 KiB
  expect(*s, 0, 65536);     // the whole retained prefix, again
  expect(*s, 65000, 536);   // still inside the prefix
  expect(*s, 80000, 10);    // forward gap
  expect(*s, 250000, 100);  // gap larger than the scratch buffer
  require_error([&] { expect(*s, 65536, 1); }, ErrorKind::unsupported, "stream\\x07name");
  require_error([&] { expect(*s, 65000, 1000); }, ErrorKind::unsupported, "offset 65000");
  require_error([&] { expect(*s, 250099, 2); }, ErrorKind::unsupported);
  expect(*s, 250100, data.size() - 250100);  // exactly to the end
  CHECK(!s->size().has_value());             // end not seen yet: it filled the read exactly
  require_error([&] { expect(*s, data.size(), 1); }, ErrorKind::io, "stream ended at byte 300000");
  CHECK(s->size() == data.size());  // learned at the end
  require_error([&] { expect(*s, data.size() - 1, 2); }, ErrorKind::io, "past the end");
  expect(*s, 10, 20);  // the prefix outlives the stream

  SECTION("truncated stream") {
    auto t = make();
    expect(*t, 0, 10);
    require_error([&] { expect(*t, 299990, 20); }, ErrorKind::io, "stream ended at byte 300000");
    require_error([&] { expect(*t, 299990, 20); }, ErrorKind::io);
  }
  SECTION("announced size bounds reads") {
    auto in = std::make_unique<std::istringstream>(std::string(100, 'x'));
    auto t = mneme::make_istream_source("sized", std::move(in), 100);
    CHECK(t->size() == 100u);
    require_error([&] { expect(*t, 90, 20); }, ErrorKind::io, "past the end");
  }
  SECTION("async reads queue in issue order") {
    auto t = make();
    std::vector<Bytes> got(30);
    run_coro(ctx, [&]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      int pending = 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        got[i].resize(10000);
        ++pending;
        asio::co_spawn(ex, t->async_read_at(i * 10000, got[i]), [&](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
          --pending;
        });
      }
      asio::steady_timer timer(ex);
      while (pending > 0) {
        timer.expires_after(std::chrono::milliseconds(1));
        co_await timer.async_wait(asio::use_awaitable);
      }
    });
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(matches(data, {i * 10000, 10000}, got[i]));
  }
}

namespace {

// A pipe whose writer sends one byte per write(): every read is short.
struct TricklePipe {
  int read_fd = -1;
  std::thread writer;

  explicit TricklePipe(const Bytes& data) {
    std::signal(SIGPIPE, SIG_IGN);  // a reader that stops early must not kill us
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read_fd = fds[0];
    writer = std::thread([fd = fds[1], &data] {
      for (std::byte b : data) {
        ssize_t n;
        do {
          n = ::write(fd, &b, 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1) break;
      }
      ::close(fd);
    });
  }
  ~TricklePipe() { writer.join(); }
};

// Increasing offsets with gaps and prefix re-reads, as a parser would issue.
std::vector<Range> sequential_plan(std::size_t size) {
  return {{0, 8},     {0, 24},    {24, 1000},           {0, 1024}, {4096, 1}, {4097, 70000},
          {100, 200}, {80000, 3}, {90000, size - 90000}};
}

}  // namespace

TEST_CASE("pipe source fed one byte per write (blocking and async)", "[sources]") {
  const Bytes data = random_bytes(100000, 8);
  asio::io_context ctx;
  SECTION("blocking") {
    TricklePipe pipe(data);
    auto src = mneme::make_fd_stream_source("pipe:test", pipe.read_fd, ctx.get_executor());
    CHECK(src->kind() == "pipe");
    CHECK(src->sequential());
    for (const auto& r : sequential_plan(data.size())) {
      Bytes got(r.length);
      src->read_at(r.offset, got);
      REQUIRE(matches(data, r, got));
    }
    require_error(
        [&] {
          Bytes b(1);
          src->read_at(data.size(), b);
        },
        ErrorKind::io, "stream ended");
  }
  SECTION("async") {
    TricklePipe pipe(data);
    auto src = mneme::make_fd_stream_source("pipe:test", pipe.read_fd, ctx.get_executor());
    int bad = 0;
    run_coro(ctx, [&]() -> asio::awaitable<void> {
      for (const auto& r : sequential_plan(data.size())) {
        Bytes got(r.length);
        co_await src->async_read_at(r.offset, got);
        bad += !matches(data, r, got);
      }
    });
    CHECK(bad == 0);
    require_error(
        [&] {
          run_coro(ctx, [&]() -> asio::awaitable<void> {
            Bytes one(1);
            co_await src->async_read_at(data.size(), one);
          });
        },
        ErrorKind::io, "stream ended at byte 100000");
  }
}

TEST_CASE("pipe source: async end of stream is Error{io}", "[sources]") {
  const Bytes data = random_bytes(5000, 9);
  asio::io_context ctx;
  TricklePipe pipe(data);
  // A second handle on the same open file description, like the shell's stdin.
  const int other = ::dup(pipe.read_fd);
  REQUIRE(other >= 0);
  REQUIRE((::fcntl(other, F_GETFL) & O_NONBLOCK) == 0);
  auto src = mneme::make_fd_stream_source("pipe:eof", pipe.read_fd, ctx.get_executor());
  Bytes got(data.size());
  run_coro(ctx, [&]() -> asio::awaitable<void> { co_await src->async_read_at(0, got); });
  CHECK(got == data);
  require_error(
      [&] {
        run_coro(ctx, [&]() -> asio::awaitable<void> {
          Bytes b(10);
          co_await src->async_read_at(4995, b);
        });
      },
      ErrorKind::io, "stream ended at byte 5000");
  // Closing the source leaves the shared description blocking again.
  src.reset();
  CHECK((::fcntl(other, F_GETFL) & O_NONBLOCK) == 0);
  ::close(other);
}

namespace {

// A loopback server that sends `data` in small segments, then closes.
struct LoopbackServer {
  asio::io_context ctx;
  asio::ip::tcp::acceptor acceptor{ctx, {asio::ip::address_v4::loopback(), 0}};
  std::thread thread;

  explicit LoopbackServer(const Bytes& data) {
    thread = std::thread([this, &data] {
      boost::system::error_code ec;
      auto sock = acceptor.accept(ec);
      if (ec) return;
      sock.set_option(asio::ip::tcp::no_delay(true), ec);
      std::mt19937 rng(10);
      for (std::size_t i = 0; i < data.size() && !ec;) {
        const std::size_t n = std::min<std::size_t>(data.size() - i, 1 + rng() % 13);
        asio::write(sock, asio::buffer(data.data() + i, n), ec);
        i += n;
      }
      sock.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      sock.close(ec);
    });
  }
  ~LoopbackServer() { thread.join(); }
  std::string url() const {
    return "tcp://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  }
};

}  // namespace

TEST_CASE("tcp source against a loopback server", "[sources]") {
  const Bytes data = random_bytes(150000, 11);
  asio::io_context ctx;
  SECTION("async with many reads in flight then truncation") {
    LoopbackServer server(data);
    auto src = mneme::open_source(server.url(), ctx.get_executor());
    CHECK(src->kind() == "tcp");
    CHECK(src->name() == server.url());
    CHECK(src->sequential());
    std::vector<Bytes> got(15);
    std::exception_ptr truncated;
    run_coro(ctx, [&]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      int pending = 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        got[i].resize(10000);
        ++pending;
        asio::co_spawn(ex, src->async_read_at(i * 10000, got[i]), [&](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
          --pending;
        });
      }
      asio::steady_timer timer(ex);
      while (pending > 0) {
        timer.expires_after(std::chrono::milliseconds(1));
        co_await timer.async_wait(asio::use_awaitable);
      }
    });
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(matches(data, {i * 10000, 10000}, got[i]));
    Bytes head(100);
    src->read_at(0, head);  // prefix re-read after the stream was consumed
    CHECK(matches(data, {0, 100}, head));
    require_error(
        [&] {
          Bytes b(1);
          src->read_at(data.size(), b);
        },
        ErrorKind::io, "stream ended at byte 150000");
  }
  SECTION("blocking") {
    LoopbackServer server(data);
    auto src =
        mneme::make_tcp_source("127.0.0.1", std::to_string(server.acceptor.local_endpoint().port()),
                               {}, ctx.get_executor());
    for (const auto& r : sequential_plan(data.size())) {
      Bytes got(r.length);
      src->read_at(r.offset, got);
      REQUIRE(matches(data, r, got));
    }
  }
  SECTION("connection refused is Error{network}") {
    std::string url;
    {
      asio::io_context sctx;
      asio::ip::tcp::acceptor a(sctx, {asio::ip::address_v4::loopback(), 0});
      url = "tcp://127.0.0.1:" + std::to_string(a.local_endpoint().port());
    }  // closed: nothing listens there now
    require_error([&] { mneme::open_source(url, ctx.get_executor()); }, ErrorKind::network,
                  "cannot connect");
  }
}
