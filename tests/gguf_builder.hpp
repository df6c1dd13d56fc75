// Writes GGUF files byte by byte for tests, valid or deliberately broken.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace mneme::test {

struct GgufBuilder {
  std::uint32_t version = 3;
  std::string bytes;

  void raw(const void* p, std::size_t n) { bytes.append(static_cast<const char*>(p), n); }
  void u8(std::uint8_t v) { raw(&v, 1); }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u64(std::uint64_t v) { raw(&v, 8); }
  void count(std::uint64_t v) { version == 1 ? u32(static_cast<std::uint32_t>(v)) : u64(v); }
  void str(const std::string& s) {
    count(s.size());
    bytes += s;
  }
  void header(std::uint64_t n_tensors, std::uint64_t n_kv) {
    bytes += "GGUF";
    u32(version);
    count(n_tensors);
    count(n_kv);
  }
  void kv_string(const std::string& k, const std::string& v) {
    str(k);
    u32(8);
    str(v);
  }
  void kv_u32(const std::string& k, std::uint32_t v) {
    str(k);
    u32(4);
    u32(v);
  }
  void tensor(const std::string& name, std::vector<std::uint64_t> ne, std::uint32_t type, std::uint64_t offset) {
    str(name);
    u32(static_cast<std::uint32_t>(ne.size()));
    for (auto d : ne) version == 1 ? u32(static_cast<std::uint32_t>(d)) : u64(d);
    u32(type);
    u64(offset);
  }
  void align(std::size_t a = 32) { bytes.append((a - bytes.size() % a) % a, '\0'); }
  void data(std::size_t n, char fill = '\x01') { bytes.append(n, fill); }
};

}  // namespace mneme::test
