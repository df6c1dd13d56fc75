#include "src/formats/safetensors_writer.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "mneme/checked.hpp"

namespace mneme {
namespace {

std::string quoted(std::string_view s) { return boost::json::serialize(boost::json::string(s)); }

}  // namespace

std::string safetensors_header(const std::vector<TensorEntry>& entries, const std::vector<MetadataEntry>& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (std::size_t i = 0; i < metadata.size(); ++i) {
      if (i) h += ',';
      h += quoted(metadata[i].first) + ':' + quoted(metadata[i].second);
    }
    h += '}';
  }
  std::uint64_t offset = 0;
  for (const auto& e : entries) {
    if (h.size() > 1) h += ',';
    h += quoted(e.name) + ":{\"dtype\":\"" + std::string(dtype_name(e.dtype)) + "\",\"shape\":[";
    for (std::size_t d = 0; d < e.shape.size(); ++d) {
      if (d) h += ',';
      h += std::to_string(e.shape[d]);
    }
    const std::uint64_t end = checked_add(offset, e.bytes, "safetensors output size");
    h += "],\"data_offsets\":[" + std::to_string(offset) + ',' + std::to_string(end) + "]}";
    offset = end;
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  return h;
}

std::unique_ptr<TensorFileWriter> create_safetensors_file(
    const std::string& path, const std::vector<TensorEntry>& entries,
    const std::vector<MetadataEntry>& metadata, const OutputPolicy& policy) {
  const std::string json = safetensors_header(entries, metadata);
  std::string header(8, '\0');
  for (std::size_t i = 0; i < 8; ++i) header[i] = static_cast<char>((json.size() >> (8 * i)) & 0xFF);
  header += json;

  std::vector<std::uint64_t> offsets, sizes;
  std::uint64_t offset = header.size();
  for (const auto& e : entries) {
    offsets.push_back(offset);
    sizes.push_back(e.bytes);
    offset = checked_add(offset, e.bytes, "safetensors output size");
  }
  return std::make_unique<TensorFileWriter>(path, std::as_bytes(std::span(header)),
                                            std::move(offsets), std::move(sizes), offset, policy);
}

}  // namespace mneme
