#include "mneme/catalog.hpp"

#include "mneme/checked.hpp"

namespace mneme {

std::string_view format_name(Format f) noexcept {
  switch (f) {
    case Format::safetensors: return "safetensors";
    case Format::gguf: return "gguf";
    case Format::npz: return "npz";
    case Format::npy: return "npy";
    case Format::pth: return "pth";
  }
  return "unknown";
}

std::uint64_t TensorInfo::element_count() const {
  std::uint64_t n = 1;
  for (auto d : shape) n = checked_mul(n, d, "tensor element count");
  return n;
}

std::uint64_t TensorInfo::byte_size() const {
  return checked_mul(element_count(), dtype_size(dtype), "tensor byte size");
}

std::uint64_t Catalog::total_data_bytes() const {
  std::uint64_t total = 0;
  for (const auto& t : tensors) {
    total = checked_add(total, t.data.length, "catalog size");
    for (const Companion* c : companions_of(t.scheme))
      total = checked_add(total, c->data.length, "catalog size");
  }
  return total;
}

}  // namespace mneme
