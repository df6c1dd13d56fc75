#include "src/schemes/quant_config.hpp"

#include <charconv>

#include "mneme/error.hpp"

namespace mneme {
namespace {

namespace json = boost::json;

[[noreturn]] void bad(const std::string& origin, const std::string& why) {
  fail(ErrorKind::parse, origin + ": " + why);
}

std::string text(const std::string& v) {
  return "\"" + printable(v, 64) + "\"";
}
std::string text(std::uint32_t v) {
  return std::to_string(v);
}
std::string text(std::int64_t v) {
  return std::to_string(v);
}
std::string text(bool v) {
  return v ? "true" : "false";
}
std::string text(const std::pair<std::uint32_t, std::uint32_t>& v) {
  return "[" + std::to_string(v.first) + ", " + std::to_string(v.second) + "]";
}

template <class T>
void merge(Setting<T>& s, T value, const std::string& origin) {
  if (s.value && *s.value != value) {
    fail(ErrorKind::parse,
         s.origin + " is " + text(*s.value) + " but " + origin + " is " + text(value));
  }
  if (!s.value) {
    s.value = std::move(value);
    s.origin = origin;
  }
}

std::int64_t integer(const json::value& v, const std::string& origin) {
  if (v.is_int64()) {
    return v.get_int64();
  }
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  bad(origin, "not an integer");
}

// Reads the keys we understand from one quantization object; ignores others.
void read_object(const json::object& o, const std::string& where, QuantConfig& c) {
  const auto key = [&](const char* k) { return where + "." + k; };
  for (const auto& [k, v] : o) {
    const std::string name(k);
    const std::string origin = key(name.c_str());
    if (name == "quant_method" || name == "checkpoint_format" || name == "format" ||
        name == "fmt" || name == "version" || name == "bnb_4bit_quant_type") {
      if (!v.is_string()) {
        bad(origin, "not a string");
      }
      std::string s(v.get_string());
      for (auto& ch : s) {
        ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
      }
      if (name == "quant_method") {
        merge(c.method, s, origin);
      }
      if (name == "checkpoint_format" || name == "format") {
        merge(c.checkpoint_format, s, origin);
      }
      if (name == "fmt") {
        merge(c.fmt, s, origin);
      }
      if (name == "version") {
        merge(c.awq_version, s, origin);
      }
      if (name == "bnb_4bit_quant_type") {
        merge(c.bnb_quant_type, s, origin);
      }
    } else if (name == "bits" || name == "w_bit") {
      const std::int64_t b = integer(v, origin);
      if (b < 1 || b > 32) {
        bad(origin, "bits " + std::to_string(b) + " out of range");
      }
      merge(c.bits, static_cast<std::uint32_t>(b), origin);
    } else if (name == "group_size" || name == "q_group_size") {
      const std::int64_t g = integer(v, origin);
      if (g != -1 && (g < 1 || g > (std::int64_t{1} << 40))) {
        bad(origin, "group size " + std::to_string(g) + " out of range");
      }
      merge(c.group_size, g, origin);
    } else if (name == "desc_act" || name == "zero_point") {
      if (!v.is_bool()) {
        bad(origin, "not a boolean");
      }
      merge(name == "desc_act" ? c.desc_act : c.zero_point, v.get_bool(), origin);
    } else if (name == "weight_block_size") {
      if (v.is_null()) {
        continue;
      }
      if (!v.is_array() || v.get_array().size() != 2) {
        bad(origin, "weight_block_size is not [rows, cols]");
      }
      const std::int64_t r = integer(v.get_array()[0], origin),
                         col = integer(v.get_array()[1], origin);
      if (r <= 0 || col <= 0 || r > (1 << 20) || col > (1 << 20)) {
        bad(origin, "weight_block_size out of range");
      }
      merge(c.weight_block_size,
            std::pair{static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(col)}, origin);
    }
  }
}

}  // namespace

QuantConfig read_quant_config(const json::value* config_json,
                              const json::value* quantize_config_json,
                              const std::vector<MetadataEntry>& metadata) {
  QuantConfig c;
  if (config_json) {
    if (!config_json->is_object()) {
      bad("config.json", "not a JSON object");
    }
    if (const auto* qc = config_json->get_object().if_contains("quantization_config")) {
      if (!qc->is_object()) {
        bad("config.json quantization_config", "not an object");
      }
      read_object(qc->get_object(), "config.json quantization_config", c);
    }
  }
  if (quantize_config_json) {
    if (!quantize_config_json->is_object()) {
      bad("quantize_config.json", "not a JSON object");
    }
    read_object(quantize_config_json->get_object(), "quantize_config.json", c);
  }
  for (const auto& [k, v] : metadata) {
    if (k != "gptq_bits" && k != "gptq_group_size") {
      continue;
    }
    const std::string origin = "__metadata__." + k;
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || end != v.data() + v.size()) {
      bad(origin, "\"" + printable(v, 32) + "\" is not an integer");
    }
    if (k == "gptq_bits") {
      if (n < 1 || n > 32) {
        bad(origin, "bits " + std::to_string(n) + " out of range");
      }
      merge(c.bits, static_cast<std::uint32_t>(n), origin);
    } else {
      if (n != -1 && (n < 1 || n > (std::int64_t{1} << 40))) {
        bad(origin, "group size " + std::to_string(n) + " out of range");
      }
      merge(c.group_size, n, origin);
    }
  }
  return c;
}

}  // namespace mneme
