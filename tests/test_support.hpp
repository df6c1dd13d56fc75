// Shared helpers for the Catch2 tests.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace mneme::test {

// The exit code tests/CMakeLists.txt registers as CTest's SKIP_RETURN_CODE.
inline constexpr int kSkipExitCode = 77;
int& skip_count();  // catch_main.cpp

// Records that a check could not run (missing oracle, server, binary): the
// test executable then exits with kSkipExitCode and CTest reports a skip. In
// CI (CI set) a skip fails the test: CI installs everything the tests need.
#define MNEME_SKIP(reason)                                                                    \
  do {                                                                                        \
    if (const char* ci_ = std::getenv("CI"); ci_ && *ci_) FAIL("required in CI: " << reason); \
    WARN("SKIPPED: " << reason);                                                              \
    ++::mneme::test::skip_count();                                                            \
  } while (false)

// Records that a check needs hardware this machine lacks (a GPU): a skip in
// CI too, where no machine has one (scripts/gpu-check.sh runs those checks
// where one is).
#define MNEME_SKIP_NO_HARDWARE(reason) \
  do {                                 \
    WARN("SKIPPED: " << reason);       \
    ++::mneme::test::skip_count();     \
  } while (false)

// The mneme binary under test (ctest sets MNEME_CLI), or nullptr after
// recording a skip.
inline const char* cli_or_skip() {
  const char* cli = std::getenv("MNEME_CLI");
  if (!cli || !*cli) MNEME_SKIP("MNEME_CLI not set (run through ctest): CLI checks");
  return cli && *cli ? cli : nullptr;
}

struct Ran {
  int status = -1;  // exit status, or -1 when killed by a signal
  std::string out;  // standard output (and standard error when the command says 2>&1)
};

// Runs a shell command line and captures its standard output.
inline Ran run(const std::string& command) {
  Ran r;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// A path quoted for the shell.
inline std::string shq(const std::filesystem::path& p) {
  std::string q = "'";
  for (const char c : p.string()) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// ../shared/fixtures relative to the project root, or $MNEME_FIXTURES.
inline std::filesystem::path fixtures_root() {
  if (const char* env = std::getenv("MNEME_FIXTURES"); env && *env) return env;
  return std::filesystem::path(MNEME_SOURCE_DIR) / ".." / "shared" / "fixtures";
}

// Every regular file directly inside fixtures_root()/family, sorted.
inline std::vector<std::filesystem::path> fixture_files(const std::string& family) {
  std::vector<std::filesystem::path> files;
  const auto dir = fixtures_root() / family;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

inline std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A scratch directory under the build tree, fresh for each call with a new name.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::path(MNEME_BINARY_DIR) / "test-scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace mneme::test
