// Format detection and multi-source merging.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <boost/json.hpp>

#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "src/formats/npy.hpp"
#include "src/formats/npz.hpp"
#include "src/formats/pth.hpp"
#include "src/formats/strict_json.hpp"
#include "src/formats/zip.hpp"
#include "io/remote.hpp"
#include "src/catalog/locations.hpp"
#include "src/schemes/detect.hpp"

namespace mneme {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// Appends `part` to `into`, renumbering its sources; names must stay unique.
// The first part moves in whole; `seen` (name -> index) is built only when a
// second part arrives, so a one-file model never pays for it.
void merge(Catalog& into, Catalog&& part, std::unordered_map<std::string, std::size_t>& seen) {
  if (into.sources.empty()) {
    into.format = part.format;
    into.header = std::move(part.header);
  } else if (into.format != part.format) {
    fail(ErrorKind::unsupported, "cannot combine a " + std::string(format_name(part.format)) +
                                     " source with " + std::string(format_name(into.format)));
  }
  const auto base = static_cast<std::uint32_t>(into.sources.size());
  for (auto& s : part.sources) {
    into.sources.push_back(std::move(s));
  }
  for (auto& t : part.tensors) {
    t.data.source += base;
  }
  if (into.tensors.empty()) {
    into.tensors = std::move(part.tensors);
    return;
  }
  if (seen.empty()) {
    seen.reserve(into.tensors.size() + part.tensors.size());
    for (std::size_t i = 0; i < into.tensors.size(); ++i) {
      seen.emplace(into.tensors[i].name, i);
    }
  }
  into.tensors.reserve(into.tensors.size() + part.tensors.size());
  for (auto& t : part.tensors) {
    if (!seen.emplace(t.name, into.tensors.size()).second) {
      fail(ErrorKind::parse, "tensor \"" + printable(t.name) + "\" appears in more than one shard");
    }
    into.tensors.push_back(std::move(t));
  }
}

// Runs fn(0), ..., fn(n - 1) on up to `width` threads and rethrows the error
// of the lowest index that failed, so which one is reported does not depend
// on timing.
void for_each_index(std::size_t n, std::size_t width, const std::function<void(std::size_t)>& fn) {
  if (width <= 1 || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::vector<std::exception_ptr> errors(n);
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  {
    std::vector<std::jthread> helpers;
    for (std::size_t k = 1; k < std::min(width, n); ++k) helpers.emplace_back(work);
    work();
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// "not a recognised model file", with what the first bytes looked like.
[[noreturn]] void not_a_model(const Source& source, std::span<const std::byte> head,
                              std::size_t got) {
  std::string hex, text;
  for (std::size_t i = 0; i < got; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x ", static_cast<unsigned>(head[i]));
    hex += b;
    const auto c = static_cast<unsigned char>(head[i]);
    text += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.';
  }
  if (!hex.empty()) {
    hex.pop_back();
  }
  fail(ErrorKind::parse,
       printable(source.name()) +
           ": not a recognised model file (safetensors, GGUF, NPZ, NPY, PyTorch zip); " +
           (got == 0 ? std::string("it is empty")
                     : "it starts with " + hex + " (\"" + text + "\")"));
}

// A safetensors file starts with a little-endian u64 header length that fits
// the file, then the JSON object's '{' (hostile-inputs.md §6 item 61).
bool looks_like_safetensors(std::span<const std::byte> head, std::size_t got,
                            std::optional<std::uint64_t> size) {
  if (got < 9) {
    return false;
  }
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) {
    n = (n << 8) | static_cast<std::uint8_t>(head[i]);
  }
  if (n < 2 || (size && n > *size - 8)) {
    return false;
  }
  std::size_t i = 8;
  while (i < got && (head[i] == std::byte{' '} || head[i] == std::byte{'\n'} ||
                     head[i] == std::byte{'\t'} || head[i] == std::byte{'\r'})) {
    ++i;
  }
  return i == got || head[i] == std::byte{'{'};
}

Catalog parse_by_content(SourcePtr source, const Limits& limits) {
  // The first bytes decide which parser validates the whole frame.
  std::array<std::byte, 16> head{};
  const auto size = source->size();
  const std::size_t got =
      size ? static_cast<std::size_t>(std::min<std::uint64_t>(*size, head.size())) : head.size();
  try {
    source->read_at(0, std::span(head).first(got));
  } catch (const Error& e) {
    if (size || e.kind() != ErrorKind::io) {
      throw;
    }
    not_a_model(*source, head, 0);  // a stream shorter than any model header
  }
  if (std::memcmp(head.data(), "GGUF", 4) == 0) {
    return parse_gguf(std::move(source), limits);
  }
  if (std::memcmp(head.data(), "FUGG", 4) == 0) {
    fail(ErrorKind::unsupported, printable(source->name()) + ": big-endian GGUF is not supported");
  }
  if (looks_like_zip(head)) {
    // A PyTorch archive holds <prefix>/data.pkl; any other zip is read as NPZ.
    const zip::Archive archive = zip::read_archive(*source, limits);
    bool npy = false;
    for (const auto& e : archive.entries) {
      if (e.name == "data.pkl" || e.name.ends_with("/data.pkl")) {
        return parse_pth(std::move(source), limits);
      }
      npy = npy || e.name.ends_with(".npy");
    }
    if (!npy) {
      fail(ErrorKind::parse, printable(source->name()) +
                                 ": a zip archive, but neither NPZ (no .npy member) nor a PyTorch "
                                 "checkpoint (no data.pkl)");
    }
    return parse_npz(std::move(source), limits);
  }
  if (looks_like_npy(std::span(head).first<8>())) {
    return parse_npy(std::move(source), limits);
  }
  // A legacy pickle starts with PROTO (0x80, version); so does a safetensors
  // header of 0x0280 bytes, whose length prefix has zeros in bytes 4-7 where
  // torch's pickle has its magic number.
  const bool long_prefix = head[4] != std::byte{0} || head[5] != std::byte{0} ||
                           head[6] != std::byte{0} || head[7] != std::byte{0};
  if (head[0] == std::byte{0x80} && head[1] <= std::byte{5} && long_prefix) {
    return parse_pth(std::move(source), limits);
  }
  if (!looks_like_safetensors(head, got, size)) {
    not_a_model(*source, head, got);
  }
  return parse_safetensors(std::move(source), limits);
}

// `name-00001-of-00003.gguf` stands for all three splits; anything else for itself.
std::vector<std::string> gguf_splits(const std::string& spec) {
  static const std::regex kSplit(R"((.*)-00001-of-(\d{5})\.gguf)");
  std::smatch m;
  if (!std::regex_match(spec, m, kSplit)) {
    return {spec};
  }
  const int n = std::stoi(m[2].str());
  if (n < 1) {
    fail(ErrorKind::parse, printable(spec) + ": split count 0");
  }
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
  const json::value root = parse_strict_json(*read_small(index_path, limits, open, false), where);
  const auto* map = root.is_object() ? root.get_object().if_contains("weight_map") : nullptr;
  if (!map || !map->is_object()) {
    fail(ErrorKind::parse, where + ": no weight_map object");
  }

  // Shards in first-appearance order; every tensor's shard recorded.
  std::vector<std::string> shards;
  std::unordered_map<std::string, std::string> tensor_shard;
  std::set<std::string> shard_set;
  for (const auto& kv : map->get_object()) {
    if (!kv.value().is_string()) {
      fail(ErrorKind::parse, where + ": weight_map values must be file names");
    }
    std::string file(kv.value().get_string());
    if (shard_set.insert(file).second) {
      shards.push_back(file);
    }
    tensor_shard.emplace(std::string(kv.key()), std::move(file));
  }
  // Checked here, before any shard is opened, because an index opened on its own never passes
  // through open_sources' per-file count; open_sources counts again across all its sources.
  if (shards.size() > limits.max_shards) {
    over_limit(where, std::to_string(shards.size()) + " shards", &Limits::max_shards, limits);
  }

  Catalog cat;
  std::unordered_map<std::string, std::size_t> seen;
  OpenOptions found = open;  // shards the index names, not the user
  found.regular_file_only = true;
  // Remote shards are opened side by side (as many as the connections per
  // host): each open is a few round trips (first byte, header), and a
  // 163-shard checkpoint must not wait for them in turn.
  std::vector<Catalog> parts(shards.size());
  const std::size_t width = is_remote(index_path) ? std::max(1u, open.connections) : 1;
  for_each_index(shards.size(), width, [&](std::size_t i) {
    parts[i] = parse_by_content(open_source(sibling(index_path, shards[i], where), executor, found),
                                limits);
  });
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const std::string& shard = shards[i];
    Catalog& part = parts[i];
    for (const auto& t : part.tensors) {
      const auto it = tensor_shard.find(t.name);
      if (it == tensor_shard.end() || it->second != shard) {
        fail(ErrorKind::parse, where + ": tensor \"" + printable(t.name) + "\" in " +
                                   printable(shard) + " is not mapped to that shard");
      }
    }
    merge(cat, std::move(part), seen);
  }
  // Every tensor read is mapped and unique, so equal counts mean none is missing.
  if (cat.tensors.size() != tensor_shard.size()) {
    std::unordered_set<std::string_view> present;
    for (const auto& t : cat.tensors) present.insert(t.name);
    for (const auto& [name, shard] : tensor_shard) {
      if (!present.count(name)) {
        fail(ErrorKind::parse,
             where + ": tensor \"" + printable(name) + "\" is missing from " + printable(shard));
      }
    }
  }
  return cat;
}

namespace {

// Which of a folder's files (local paths or s3:// specs) are the model, in
// order of preference: a weight-map index, else the files of the first kind
// present, sorted.
std::vector<std::string> pick_model_files(const std::vector<std::string>& files,
                                          const std::string& where) {
  const auto file_name = [](const std::string& f) { return f.substr(f.find_last_of('/') + 1); };
  for (const char* index : {"model.safetensors.index.json", "pytorch_model.bin.index.json"}) {
    for (const auto& f : files) {
      if (file_name(f) == index) return {f};
    }
  }
  static const std::vector<std::vector<std::string>> kKinds{
      {".safetensors"}, {".gguf"}, {".bin", ".pth", ".pt"}, {".npz", ".npy"}};
  for (const auto& kind : kKinds) {
    std::vector<std::string> picked;
    for (const auto& f : files) {
      const std::string ext = fs::path(file_name(f)).extension().string();
      if (std::find(kind.begin(), kind.end(), ext) != kind.end()) picked.push_back(f);
    }
    if (!picked.empty()) {
      std::sort(picked.begin(), picked.end());
      return picked;
    }
  }
  fail(ErrorKind::io,
       printable(where) +
           ": no model files here (looked for model.safetensors.index.json, "
           "pytorch_model.bin.index.json, *.safetensors, *.gguf, *.bin, *.pth, *.pt, *.npz, *.npy)");
}

std::vector<std::string> model_files_in(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::error_code ec;
    if (e.is_regular_file(ec)) files.push_back(e.path().string());
  }
  return pick_model_files(files, dir);
}

// Shards the names or headers say exist but were not given: gaps in
// `name-0000k-of-0000n.ext` families, and a GGUF split.count above the splits
// found. One line per model, empty when complete.
std::string missing_shards(const Catalog& cat) {
  static const std::regex kShard(R"((.*)-(\d{5})-of-(\d{5})(\.[A-Za-z0-9]+))");
  std::map<std::string, std::pair<int, std::set<int>>> families;  // stem+ext -> (count, seen)
  for (const auto& src : cat.sources) {
    const std::string file = fs::path(src->name()).filename().string();
    std::smatch m;
    if (!std::regex_match(file, m, kShard)) {
      continue;
    }
    auto& f = families[m[1].str() + "-*-of-" + m[3].str() + m[4].str()];
    f.first = std::stoi(m[3].str());
    f.second.insert(std::stoi(m[2].str()));
  }
  std::string missing;
  for (const auto& [family, f] : families) {
    std::vector<int> gaps;
    for (int i = 1; i <= f.first; ++i) {
      if (!f.second.count(i)) {
        gaps.push_back(i);
      }
    }
    if (gaps.empty()) {
      continue;
    }
    missing += (missing.empty() ? "" : "; ") + printable(family) + " is missing shard";
    missing += gaps.size() == 1 ? " " : "s ";
    for (std::size_t i = 0; i < gaps.size() && i < 8; ++i) {
      missing += (i ? ", " : "") + std::to_string(gaps[i]);
    }
    if (gaps.size() > 8) {
      missing += ", ...";
    }
    missing += " of " + std::to_string(f.first);
  }
  if (cat.format == Format::gguf) {
    for (const auto& kv : cat.header.gguf_kv) {
      // llama.cpp's gguf-split writes split.count as u16; accept u32 too.
      std::uint64_t n = 0;
      if (kv.key != "split.count" || (kv.type != 2 && kv.type != 4)) {
        continue;
      }
      std::memcpy(&n, kv.value.data(), kv.type == 2 ? 2 : 4);
      if (n > cat.sources.size()) {
        missing += (missing.empty() ? "" : "; ") + std::string("split.count is ") +
                   std::to_string(n) + " but " + std::to_string(cat.sources.size()) + " split" +
                   (cat.sources.size() == 1 ? "" : "s") + " found";
      }
    }
  }
  return missing;
}

}  // namespace

Catalog open_catalog(const std::vector<std::string>& specs, boost::asio::any_io_executor executor,
                     const CatalogOptions& options) {
  check_floors(options.limits);
  Catalog cat = open_sources(specs, executor, options.open, options.limits);
  if (const std::string missing = missing_shards(cat); !missing.empty()) {
    if (!options.lenient && !options.allow_partial) {
      fail(ErrorKind::io,
           "incomplete model: " + missing + " (--allow-partial goes on without them)");
    }
    cat.warnings.push_back({"", "incomplete model: " + missing});
  }
  // The model's config.json (given, or beside the first weights, local or
  // remote) completes what the tensors say about their quantization. (Only
  // safetensors models carry quantization_config-style schemes.)
  std::error_code ec;
  const std::string first = canonical_remote_spec(specs.front());
  const bool remote = is_remote(first);
  const bool local_dir = !remote && first != "-" && fs::is_directory(first, ec);
  const bool beside_weights = first != "-" && cat.format == Format::safetensors &&
                              (remote || first.find("://") == std::string::npos);
  const auto beside = [&](const char* file) -> std::optional<boost::json::value> {
    if (!beside_weights) {
      return std::nullopt;
    }
    // (An S3 prefix named without its final '/' is a folder too.)
    const bool s3_prefix = first.starts_with("s3://") && first.find('/', 5) == std::string::npos;
    const std::string spec = local_dir ? (fs::path(first) / file).string()
                                       : sibling(s3_prefix ? first + "/" : first, file, printable(first));
    if (!remote && !fs::is_regular_file(spec, ec)) {
      return std::nullopt;
    }
    const auto text = read_small(spec, options.limits, options.open, true);
    return text ? std::optional(parse_strict_json(*text, printable(spec))) : std::nullopt;
  };
  const auto config =
      options.config_path.empty()
          ? beside("config.json")
          : std::optional(parse_strict_json(
                *read_small(options.config_path, options.limits, options.open, false),
                printable(options.config_path)));
  const auto quantize_config = beside("quantize_config.json");  // AutoGPTQ / GPTQModel
  detect_schemes(cat, config ? &*config : nullptr, quantize_config ? &*quantize_config : nullptr,
                 options.lenient);
  return cat;
}

Catalog open_sources(const std::vector<std::string>& specs, boost::asio::any_io_executor executor,
                     const OpenOptions& open, const Limits& limits) {
  if (specs.empty()) {
    fail(ErrorKind::parse, "no source given");
  }
  Catalog cat;
  std::unordered_map<std::string, std::size_t> seen;
  OpenOptions found = open;  // files mneme found (splits, a folder's files), not the user
  found.regular_file_only = true;
  // Every file is counted before it is opened (an index counts its shards).
  std::uint64_t files = 0;
  const auto parse = [&](const std::string& file, const OpenOptions& how) {
    if (++files > limits.max_shards) {
      over_limit(printable(file), "file " + std::to_string(files) + " of the model",
                 &Limits::max_shards, limits);
    }
    return parse_by_content(open_source(file, executor, how), limits);
  };
  const auto open_file = [&](const std::string& file) {
    if (file.ends_with(".index.json")) {
      merge(cat, open_safetensors_index(file, executor, open, limits), seen);
      return;
    }
    const auto splits = gguf_splits(file);
    for (const auto& split : splits) {
      // A split that is not there is a gap missing_shards() reports (the
      // first one is what the user named: opening it says why it failed).
      if (split != splits.front() && !exists(split, open)) {
        continue;
      }
      merge(cat, parse(split, split == splits.front() ? open : found), seen);
    }
  };
  for (const auto& given : specs) {
    const std::string spec = canonical_remote_spec(given);  // hf:// in one spelling
    std::error_code ec;
    if (spec.starts_with("s3://") &&
        (spec.ends_with('/') || spec.find('/', 5) == std::string::npos)) {
      // An S3 prefix: its listing, chosen from as a local folder is.
      const std::string prefix = spec.ends_with('/') ? spec : spec + "/";
      for (const auto& file : pick_model_files(remote_list(prefix, open), prefix)) {
        // A listing holds every split itself: open each file as it is.
        if (file.ends_with(".index.json")) {
          open_file(file);
        } else {
          merge(cat, parse(file, open), seen);
        }
      }
      continue;
    }
    if (is_remote(spec) && spec.ends_with('/')) {
      // A web folder cannot be listed: its index, else its single file.
      bool found = false;
      for (const char* name : {"model.safetensors.index.json", "model.safetensors"}) {
        const std::string file = sibling(spec, name, printable(spec));
        if (exists(file, open)) {
          open_file(file);
          found = true;
          break;
        }
      }
      if (!found) {
        fail(ErrorKind::io, printable(spec) +
                                ": no model here (looked for model.safetensors.index.json and "
                                "model.safetensors)");
      }
      continue;
    }
    if (spec != "-" && spec.find("://") == std::string::npos && fs::is_directory(spec, ec)) {
      for (const auto& file : model_files_in(spec)) {
        // A directory lists every split itself: open each file as it is.
        if (file.ends_with(".index.json")) {
          open_file(file);
        } else {
          merge(cat, parse(file, found), seen);
        }
      }
      continue;
    }
    open_file(spec);
  }
  return cat;
}

}  // namespace mneme
