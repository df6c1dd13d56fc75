// mneme: inspect, remember (stream-convert to safetensors) and load models.
// Errors: one line on stderr, exit 1. Usage errors: exit 2.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "src/cli/args.hpp"
#include "src/schemes/detect.hpp"

namespace {

namespace json = boost::json;
using namespace mneme;

constexpr const char* kUsage = R"(usage:
  mneme inspect SRC... [--json]
  mneme remember SRC... [-o OUT] [--to bf16|f16|f32] [--threads N] [--budget SIZE] [--io MODE]
  mneme convert SRC... --to safetensors|gguf -o OUT [--dtype bf16|f16|f32] [...]
  mneme load SRC... [--to bf16|f16|f32] [--threads N] [--budget SIZE] [--io MODE]

remember and load convert float tensors to --to and decode quantized ones to it
(default bf16); convert keeps float tensors as they are unless --dtype is given.
SRC is a file, a directory or model.safetensors.index.json of a sharded model,
file://PATH, tcp://HOST:PORT, or - for stdin. Several SRC are shards of one model.
MODE is uring (default, falls back to pread), pread or mmap. SIZE accepts k/M/G.
)";

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

OpenOptions open_options(const cli::Args& a) {
  OpenOptions o;
  if (!a.io || *a.io == "uring" || *a.io == "auto") o.file_io = a.io && *a.io == "uring" ? FileIo::uring : FileIo::automatic;
  else if (*a.io == "pread") o.file_io = FileIo::pread;
  else if (*a.io == "mmap") o.file_io = FileIo::mmap;
  else throw cli::UsageError("--io must be uring, pread or mmap");
  return o;
}

std::optional<OutType> out_type(const std::optional<std::string>& flag, const char* name,
                                std::optional<OutType> fallback) {
  if (!flag) return fallback;
  const auto t = out_type_from_name(*flag);
  if (!t) throw cli::UsageError(std::string(name) + " must be bf16, f16 or f32");
  return t;
}

int inspect(const cli::Args& a, boost::asio::io_context& io) {
  const Catalog cat = open_catalog(a.sources, io.get_executor(), open_options(a));
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_dtype;  // count, bytes
  std::uint64_t elements = 0;
  for (const auto& t : cat.tensors) {
    auto& e = by_dtype[tensor_type_name(t)];
    ++e.first;
    e.second += t.data.length;
    elements += t.element_count();
  }
  if (a.json) {
    json::object root;
    root["format"] = std::string(format_name(cat.format));
    if (cat.header.version) root["version"] = cat.header.version;
    json::array sources;
    for (const auto& s : cat.sources) sources.emplace_back(s->name());
    root["sources"] = std::move(sources);
    root["tensor_count"] = cat.tensors.size();
    root["total_bytes"] = cat.total_data_bytes();
    root["bf16_bytes"] = elements * 2;
    json::object dtypes;
    for (const auto& [name, e] : by_dtype) dtypes[name] = json::object{{"count", e.first}, {"bytes", e.second}};
    root["dtypes"] = std::move(dtypes);
    json::object meta;
    for (const auto& [k, v] : cat.header.metadata) meta[k] = v;
    for (const auto& [k, v] : cat.header.array_metadata) meta[k] = v;
    root["metadata"] = std::move(meta);
    json::array tensors;
    for (const auto& t : cat.tensors) {
      json::array shape(t.shape.begin(), t.shape.end());
      tensors.push_back(json::object{{"name", t.name},
                                     {"dtype", tensor_type_name(t)},
                                     {"scheme", scheme_description(t)},
                                     {"shape", std::move(shape)},
                                     {"bytes", t.data.length},
                                     {"source", t.data.source},
                                     {"offset", t.data.offset}});
    }
    root["tensors"] = std::move(tensors);
    std::cout << json::serialize(root) << "\n";
    return 0;
  }
  std::cout << "format   " << format_name(cat.format);
  if (cat.header.version) std::cout << " v" << cat.header.version;
  std::cout << " (" << cat.sources.size() << " source" << (cat.sources.size() == 1 ? "" : "s") << ")\n";
  std::cout << "tensors  " << cat.tensors.size() << ", " << human_bytes(static_cast<double>(cat.total_data_bytes()))
            << " stored, " << human_bytes(static_cast<double>(elements) * 2) << " as BF16\n";
  for (const auto& [name, e] : by_dtype) {
    std::cout << "  " << name << ": " << e.first << " tensors, " << human_bytes(static_cast<double>(e.second)) << "\n";
  }
  for (const auto& [k, v] : cat.header.metadata) std::cout << "meta     " << printable(k) << " = " << printable(v, 120) << "\n";
  for (const auto& [k, v] : cat.header.array_metadata) std::cout << "meta     " << printable(k) << " = " << v << "\n";
  std::printf("\n%-48s %-8s %-24s %12s\n", "NAME", "DTYPE", "SHAPE", "BYTES");
  for (const auto& t : cat.tensors) {
    std::printf("%-48s %-8s %-24s %12llu  %s\n", printable(t.name, 48).c_str(), tensor_type_name(t).c_str(),
                shape_text(t.shape).c_str(), static_cast<unsigned long long>(t.data.length),
                scheme_description(t).c_str());
  }
  return 0;
}

// A one-line progress bar on stderr, redrawn at most ten times a second.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {}
  void update(std::uint64_t done, std::uint64_t total) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const int width = 30;
    const int filled = static_cast<int>(frac * width);
    const double secs = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "\r[%.*s%*s] %3.0f%% %s/s ", filled, "##############################", width - filled, "",
                 frac * 100, human_bytes(secs > 0 ? static_cast<double>(done) / secs : 0).c_str());
    if (done >= total) std::fputc('\n', stderr);
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_{};
};

RunOptions run_options(const cli::Args& a, Progress& progress) {
  RunOptions r;
  if (a.threads) r.threads = *a.threads;
  if (a.budget) r.budget_bytes = *a.budget;
  r.progress = [&progress](std::uint64_t d, std::uint64_t t) { progress.update(d, t); };
  return r;
}

PlanOptions plan_options(const cli::Args& a, std::optional<OutType> to) {
  PlanOptions p;
  p.to = to;
  if (a.chunk) p.max_chunk_bytes = *a.chunk;
  if (a.budget && *a.budget < p.max_chunk_bytes) p.max_chunk_bytes = std::max<std::uint64_t>(*a.budget, 64);
  return p;
}

void print_stats(const RunStats& s, const char* verb) {
  const double gbs = s.wall_seconds > 0 ? static_cast<double>(s.bytes_read) / s.wall_seconds / 1e9 : 0;
  std::fprintf(stderr, "%s %s -> %s in %.3f s (%.2f GB/s read), %u thread%s\n", verb,
               human_bytes(static_cast<double>(s.bytes_read)).c_str(),
               human_bytes(static_cast<double>(s.bytes_written)).c_str(), s.wall_seconds, gbs, s.threads,
               s.threads == 1 ? "" : "s");
  std::fprintf(stderr, "  %llu chunks; I/O busy %.3f s; decode %.3f s (all threads); decoders idle on I/O %.3f s\n",
               static_cast<unsigned long long>(s.chunks), s.io_busy_seconds, s.decode_seconds, s.io_wait_seconds);
  std::fprintf(stderr, "  peak buffers %s of %s preallocated\n", human_bytes(static_cast<double>(s.peak_buffer_bytes)).c_str(),
               human_bytes(static_cast<double>(s.buffer_capacity)).c_str());
}

std::string default_output(const std::string& src) {
  std::filesystem::path p(src == "-" ? "stdin" : src);
  if (p.filename().empty()) p = p.parent_path();
  std::string stem = p.stem().string();
  if (stem.ends_with(".index")) stem = std::filesystem::path(stem).stem().string();
  return stem + ".remembered.safetensors";
}

enum class Job { remember, convert, load };

int transfer(const cli::Args& a, boost::asio::io_context& io, Job job) {
  std::optional<OutType> to;
  FileFormat format = FileFormat::safetensors;
  if (job == Job::convert) {
    if (!a.to || (*a.to != "gguf" && *a.to != "safetensors")) throw cli::UsageError("convert needs --to safetensors|gguf");
    if (!a.output) throw cli::UsageError("convert needs -o OUT");
    format = *a.to == "gguf" ? FileFormat::gguf : FileFormat::safetensors;
    to = out_type(a.dtype, "--dtype", std::nullopt);
  } else {
    to = out_type(a.to, "--to", job == Job::remember ? std::optional<OutType>(OutType::bf16) : std::nullopt);
  }
  const Catalog cat = open_catalog(a.sources, io.get_executor(), open_options(a));
  const Plan plan = make_plan(cat, plan_options(a, to));
  Progress progress(!a.quiet && ::isatty(STDERR_FILENO));
  const RunOptions opts = run_options(a, progress);
  RunStats stats;
  if (job == Job::load) {
    DiscardSink sink;
    stats = run_pipeline(io, cat, plan, sink, opts);
    print_stats(stats, "loaded");
    return 0;
  }
  const std::string out = a.output ? *a.output : default_output(a.sources.front());
  FileSink sink(out, format);
  stats = run_pipeline(io, cat, plan, sink, opts);
  if (!a.quiet) {
    print_stats(stats, job == Job::remember ? "remembered" : "converted");
    std::fprintf(stderr, "wrote %s\n", printable(out).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const cli::Args args = cli::parse_args(argc, argv);
    if (args.command == "help" || args.command == "--help" || args.command == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (args.sources.empty()) throw cli::UsageError(args.command + " needs at least one source");
    boost::asio::io_context io(1);
    if (args.command == "inspect") return inspect(args, io);
    if (args.command == "remember") return transfer(args, io, Job::remember);
    if (args.command == "convert") return transfer(args, io, Job::convert);
    if (args.command == "load") return transfer(args, io, Job::load);
    throw cli::UsageError("unknown command " + args.command);
  } catch (const cli::UsageError& e) {
    std::cerr << "mneme: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const mneme::Error& e) {
    std::cerr << "mneme: " << mneme::to_string(e.kind()) << " error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "mneme: limit error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "mneme: error: " << e.what() << "\n";
    return 1;
  }
}
