// Shared helpers for the Catch2 tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace mneme::test {

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
