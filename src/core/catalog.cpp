#include "mneme/catalog.hpp"

#include <type_traits>
#include <variant>

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

namespace mneme {

std::vector<const Companion*> companions_of(const Scheme& s) {
  std::vector<const Companion*> out;
  const auto add = [&](const Companion& c) { out.push_back(&c); };
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, scheme::Fp8>) {
          add(v.scale);
        } else if constexpr (std::is_same_v<T, scheme::Gptq>) {
          add(v.scales);
          add(v.qzeros);
          if (v.g_idx) add(*v.g_idx);
        } else if constexpr (std::is_same_v<T, scheme::Awq>) {
          add(v.scales);
          add(v.qzeros);
        } else if constexpr (std::is_same_v<T, scheme::Bnb4>) {
          add(v.absmax);
          add(v.quant_map);
          add(v.quant_state);
          if (v.nested) {
            add(v.nested->absmax);
            add(v.nested->quant_map);
          }
        } else if constexpr (std::is_same_v<T, scheme::BnbInt8>) {
          add(v.scb);
          if (v.weight_format) add(*v.weight_format);
        }
      },
      s);
  return out;
}

std::vector<Companion*> companions_of(Scheme& s) {
  std::vector<Companion*> out;
  for (const Companion* c : companions_of(static_cast<const Scheme&>(s))) {
    out.push_back(const_cast<Companion*>(c));  // the scheme itself is not const
  }
  return out;
}

}  // namespace mneme
