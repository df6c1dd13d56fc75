// Format detection and multi-source merging.
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <unordered_map>

#include <boost/json.hpp>

#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "src/formats/npy.hpp"
#include "src/formats/npz.hpp"
#include "src/formats/pth.hpp"
#include "src/formats/strict_json.hpp"
#include "src/formats/zip.hpp"
#include "src/schemes/detect.hpp"

namespace mneme {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::uint64_t kMaxIndexBytes = 64ull << 20;

// Appends `part` to `into`, renumbering its sources; names must stay unique.
void merge(Catalog& into, Catalog&& part, std::unordered_map<std::string, std::size_t>& seen) {
  if (into.sources.empty()) {
    into.format = part.format;
    into.header = std::move(part.header);
  } else if (into.format != part.format) {
    fail(ErrorKind::unsupported, "cannot combine a " + std::string(format_name(part.format)) +
                                     " source with " + std::string(format_name(into.format)));
  }
  const auto base = static_cast<std::uint32_t>(into.sources.size());
  for (auto& s : part.sources) into.sources.push_back(std::move(s));
  for (auto& t : part.tensors) {
    if (!seen.emplace(t.name, into.tensors.size()).second) {
      fail(ErrorKind::parse, "tensor \"" + printable(t.name) + "\" appears in more than one shard");
    }
    t.data.source += base;
    into.tensors.push_back(std::move(t));
  }
}

Catalog parse_by_content(SourcePtr source, const Limits& limits) {
  // The first bytes decide which parser validates the whole frame.
  std::array<std::byte, 8> head{};
  const auto size = source->size();
  if (!size || *size >= head.size()) source->read_at(0, head);
  if (std::memcmp(head.data(), "GGUF", 4) == 0) return parse_gguf(std::move(source), limits);
  if (std::memcmp(head.data(), "FUGG", 4) == 0) {
    fail(ErrorKind::unsupported, printable(source->name()) + ": big-endian GGUF is not supported");
  }
  if (looks_like_zip(head)) {
    // A PyTorch archive holds <prefix>/data.pkl; any other zip is read as NPZ.
    const zip::Archive archive = zip::read_archive(*source);
    for (const auto& e : archive.entries) {
      if (e.name == "data.pkl" || e.name.ends_with("/data.pkl"))
        return parse_pth(std::move(source), limits);
    }
    return parse_npz(std::move(source), limits);
  }
  if (looks_like_npy(head)) return parse_npy(std::move(source), limits);
  // A legacy pickle starts with PROTO (0x80, version); so does a safetensors
  // header of 0x0280 bytes, whose length prefix has zeros in bytes 4-7 where
  // torch's pickle has its magic number.
  const bool long_prefix = head[4] != std::byte{0} || head[5] != std::byte{0} ||
                           head[6] != std::byte{0} || head[7] != std::byte{0};
  if (head[0] == std::byte{0x80} && head[1] <= std::byte{5} && long_prefix)
    return parse_pth(std::move(source), limits);
  return parse_safetensors(std::move(source), limits);
}

std::string read_small_file(const fs::path& path, std::uint64_t cap) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) fail(ErrorKind::io, "cannot open " + printable(path.string()) + ": " + ec.message());
  if (size > cap)
    fail(ErrorKind::limit,
         printable(path.string()) + " is larger than " + std::to_string(cap) + " bytes");
  std::ifstream in(path, std::ios::binary);
  std::string text(size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) {
    fail(ErrorKind::io, "cannot read " + printable(path.string()));
  }
  return text;
}

// A shard file name from an index: a plain name in the index's directory,
// never a path that could escape it.
fs::path shard_path(const fs::path& dir, std::string_view name, const std::string& index) {
  const fs::path p(name);
  if (name.empty() || p.is_absolute() || p.has_parent_path() || name == "." || name == "..") {
    fail(ErrorKind::security,
         index + ": shard name \"" + printable(name) + "\" is not a plain file name");
  }
  return dir / p;
}

// `name-00001-of-00003.gguf` stands for all three splits; anything else for itself.
std::vector<std::string> gguf_splits(const std::string& spec) {
  static const std::regex kSplit(R"((.*)-00001-of-(\d{5})\.gguf)");
  std::smatch m;
  if (!std::regex_match(spec, m, kSplit)) return {spec};
  const int n = std::stoi(m[2].str());
  if (n < 1) fail(ErrorKind::parse, printable(spec) + ": split count 0");
  std::vector<std::string> files;
  for (int i = 1; i <= n; ++i) {
    char part[32];
    std::snprintf(part, sizeof part, "-%05d-of-%05d.gguf", i, n);
    files.push_back(m[1].str() + part);
  }
  return files;
}

}  // namespace

Catalog open_sources(const std::vector<std::string>& specs, boost::asio::any_io_executor executor,
                     const OpenOptions& open, const Limits& limits);

Catalog open_safetensors_index(const std::string& index_path, boost::asio::any_io_executor executor,
                               const OpenOptions& open, const Limits& limits) {
  const std::string where = printable(index_path);
  const json::value root = parse_strict_json(read_small_file(index_path, kMaxIndexBytes), where);
  const auto* map = root.is_object() ? root.get_object().if_contains("weight_map") : nullptr;
  if (!map || !map->is_object()) fail(ErrorKind::parse, where + ": no weight_map object");

  // Shards in first-appearance order; every tensor's shard recorded.
  std::vector<std::string> shards;
  std::unordered_map<std::string, std::string> tensor_shard;
  std::set<std::string> shard_set;
  for (const auto& kv : map->get_object()) {
    if (!kv.value().is_string())
      fail(ErrorKind::parse, where + ": weight_map values must be file names");
    std::string file(kv.value().get_string());
    if (shard_set.insert(file).second) shards.push_back(file);
    tensor_shard.emplace(std::string(kv.key()), std::move(file));
  }
  if (shards.size() > limits.max_shards) fail(ErrorKind::limit, where + ": too many shards");

  const fs::path dir = fs::path(index_path).parent_path();
  Catalog cat;
  std::unordered_map<std::string, std::size_t> seen;
  for (const auto& shard : shards) {
    Catalog part = parse_by_content(
        open_source(shard_path(dir, shard, where).string(), executor, open), limits);
    for (const auto& t : part.tensors) {
      const auto it = tensor_shard.find(t.name);
      if (it == tensor_shard.end() || it->second != shard) {
        fail(ErrorKind::parse, where + ": tensor \"" + printable(t.name) + "\" in " +
                                   printable(shard) + " is not mapped to that shard");
      }
    }
    merge(cat, std::move(part), seen);
  }
  for (const auto& [name, shard] : tensor_shard) {
    if (!seen.count(name)) {
      fail(ErrorKind::parse,
           where + ": tensor \"" + printable(name) + "\" is missing from " + printable(shard));
    }
  }
  return cat;
}

Catalog open_catalog(const std::vector<std::string>& specs, boost::asio::any_io_executor executor,
                     const OpenOptions& open, const Limits& limits) {
  Catalog cat = open_sources(specs, executor, open, limits);
  // The model's config.json, beside the (first) weights, completes what the
  // tensors say about their quantization.
  std::error_code ec;
  const std::string& first = specs.front();
  fs::path dir =
      first != "-" && fs::is_directory(first, ec) ? fs::path(first) : fs::path(first).parent_path();
  if (dir.empty()) dir = ".";
  // (Only safetensors models carry quantization_config-style schemes.)
  const bool local =
      first != "-" && first.find("://") == std::string::npos && cat.format == Format::safetensors;
  const auto beside = [&](const char* file) -> std::optional<boost::json::value> {
    if (!local || !fs::is_regular_file(dir / file, ec)) return std::nullopt;
    return parse_strict_json(read_small_file(dir / file, kMaxIndexBytes),
                             printable((dir / file).string()));
  };
  const auto config = beside("config.json");
  const auto quantize_config = beside("quantize_config.json");  // AutoGPTQ / GPTQModel
  detect_schemes(cat, config ? &*config : nullptr, quantize_config ? &*quantize_config : nullptr);
  return cat;
}

Catalog open_sources(const std::vector<std::string>& specs, boost::asio::any_io_executor executor,
                     const OpenOptions& open, const Limits& limits) {
  if (specs.empty()) fail(ErrorKind::parse, "no source given");
  Catalog cat;
  std::unordered_map<std::string, std::size_t> seen;
  for (const auto& spec : specs) {
    std::error_code ec;
    const bool is_dir = spec != "-" && fs::is_directory(spec, ec);
    if (is_dir) {
      const fs::path index = fs::path(spec) / "model.safetensors.index.json";
      if (fs::exists(index, ec)) {
        merge(cat, open_safetensors_index(index.string(), executor, open, limits), seen);
        continue;
      }
      // A directory of model files: each one a shard, in name order.
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(spec)) {
        if (e.is_regular_file() && e.path().extension() == ".safetensors")
          files.push_back(e.path().string());
      }
      if (files.empty())
        fail(ErrorKind::io, printable(spec) + ": no model files in this directory");
      std::sort(files.begin(), files.end());
      for (const auto& f : files)
        merge(cat, parse_by_content(open_source(f, executor, open), limits), seen);
      continue;
    }
    if (spec.size() >= 11 && spec.ends_with(".index.json")) {
      merge(cat, open_safetensors_index(spec, executor, open, limits), seen);
      continue;
    }
    for (const auto& file : gguf_splits(spec)) {
      merge(cat, parse_by_content(open_source(file, executor, open), limits), seen);
    }
  }
  return cat;
}

}  // namespace mneme
