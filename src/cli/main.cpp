// mneme: inspect, remember (stream-decode to safetensors), convert and load models.
// Errors: one line on stderr, exit 1. Usage errors: one line and a pointer to
// --help, exit 2. SIGINT / SIGTERM: the run is cancelled, its temporary
// output removed, exit 130 / 143.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <regex>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "mneme/upload.hpp"
#include "src/cli/args.hpp"
#include "src/formats/output_path.hpp"

#ifndef MNEME_VERSION
#define MNEME_VERSION "unknown"
#endif

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace mneme;

// --- signals -----------------------------------------------------------------

std::atomic<bool> g_cancel{false};
volatile sig_atomic_t g_signal = 0;

extern "C" void on_signal(int sig) {
  g_signal = sig;
  g_cancel.store(true);  // lock-free: async-signal-safe
}

// The first SIGINT/SIGTERM cancels the run cleanly; a second one (the handler
// resets itself) ends the process at once.
void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void throw_if_interrupted() {
  if (g_cancel.load()) {
    fail(ErrorKind::cancelled, "interrupted");
  }
}

// --- formatting ----------------------------------------------------------------

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
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return s + "]";
}

std::string duration_text(double secs) {
  const auto s = static_cast<long long>(std::llround(std::max(secs, 0.0)));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

// A one-line progress bar on stderr (a terminal only), redrawn at most ten
// times a second: done / total, rate and time left, all in one unit. Whatever
// prints next on stderr calls end_line() first.
class Progress {
 public:
  // Draws from now on, when `enabled` (a run is starting).
  void start(bool enabled) {
    enabled_ = enabled;
    start_ = std::chrono::steady_clock::now();
  }
  void update(std::uint64_t done, std::uint64_t total) {
    if (!enabled_) {
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) {
      return;
    }
    last_ = now;
    const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const int width = 30;
    const int filled = static_cast<int>(frac * width);
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    const std::string eta = rate > 0 && done < total
                                ? " ETA " + duration_text(static_cast<double>(total - done) / rate)
                                : "";
    std::fprintf(stderr, "\r[%.*s%*s] %3.0f%% %s / %s, %s/s%s\033[K", filled,
                 "##############################", width - filled, "", frac * 100,
                 human_bytes(static_cast<double>(done)).c_str(),
                 human_bytes(static_cast<double>(total)).c_str(), human_bytes(rate).c_str(),
                 eta.c_str());
    open_ = true;
    if (done >= total) {
      end_line();
    }
  }
  void end_line() {
    if (open_) {
      std::fputc('\n', stderr);
    }
    open_ = false;
  }

 private:
  bool enabled_ = false;
  bool open_ = false;
  std::chrono::steady_clock::time_point start_, last_{};
};

// One bar for the process: it outlives the command, so the error reports in
// main() can still end its line.
Progress g_progress;

void warn(const std::string& text) {
  g_progress.end_line();
  std::cerr << "mneme: warning: " << text << "\n";
}

// --- options -------------------------------------------------------------------

CatalogOptions catalog_options(const cli::Args& a, bool lenient) {
  CatalogOptions o;
  if (!a.io || *a.io == "auto") {
    o.open.file_io = FileIo::automatic;
  } else if (*a.io == "uring") {
    o.open.file_io = FileIo::uring;
  } else if (*a.io == "pread") {
    o.open.file_io = FileIo::pread;
  } else if (*a.io == "mmap") {
    o.open.file_io = FileIo::mmap;
  } else {
    throw cli::UsageError("--io must be auto, uring, pread or mmap, not '" + *a.io + "'");
  }
  const auto ms = [](double s) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
  };
  if (a.connect_timeout) {
    o.open.connect_timeout = ms(*a.connect_timeout);
  }
  if (a.timeout) {
    o.open.idle_timeout = ms(*a.timeout);
  }
  if (a.part_size) {
    o.open.part_bytes = *a.part_size;
  }
  if (a.connections) {
    o.open.connections = *a.connections;
  }
  if (a.retries) {
    o.open.max_attempts = *a.retries;
  }
  o.open.http_headers = a.headers;
  o.open.s3_anonymous = a.no_sign_request;
  o.limits = a.limits;
  if (a.config) {
    o.config_path = *a.config;
  }
  o.lenient = lenient;
  o.allow_partial = a.allow_partial;
  return o;
}

std::optional<OutType> out_type(const std::optional<std::string>& flag, const char* name,
                                std::optional<OutType> fallback) {
  if (!flag) {
    return fallback;
  }
  const auto t = out_type_from_name(*flag);
  if (!t) {
    throw cli::UsageError(std::string(name) + " must be bf16, f16 or f32, not '" + *flag + "'");
  }
  return t;
}

Catalog open_model(const cli::Args& a, boost::asio::io_context& io, bool lenient) {
  Catalog cat = open_catalog(a.sources, io.get_executor(), catalog_options(a, lenient));
  throw_if_interrupted();
  return cat;
}

// --- inspect -------------------------------------------------------------------

// What `remember` would write at BF16: the plan's output size (float and
// quantized tensors as BF16, everything else as stored). Planning reads
// nothing; tensors held whole are not capped here, only sized. Empty when the
// model could not be planned (remember would say why).
std::optional<std::uint64_t> remembered_bf16_bytes(const Catalog& cat) {
  PlanOptions p;
  p.to = OutType::bf16;
  p.max_materialize_bytes = ~std::uint64_t{0};
  try {
    return make_plan(cat, p).total_out;
  } catch (const Error&) {
    return std::nullopt;
  }
}

int inspect(const cli::Args& a, boost::asio::io_context& io) {
  const Catalog cat = open_model(a, io, /*lenient=*/true);
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_dtype;  // count, bytes
  std::map<std::string, std::vector<std::string>> tensor_warnings;
  for (const auto& w : cat.warnings) {
    tensor_warnings[w.tensor].push_back(w.message);
  }
  for (const auto& t : cat.tensors) {
    auto& e = by_dtype[tensor_type_name(t)];
    ++e.first;
    e.second += t.data.length;
  }
  const std::optional<std::uint64_t> bf16_bytes = remembered_bf16_bytes(cat);
  if (a.json) {
    json::object root;
    root["format"] = std::string(format_name(cat.format));
    if (cat.header.version) {
      root["version"] = cat.header.version;
    }
    json::array sources;
    for (const auto& s : cat.sources) {
      sources.emplace_back(s->name());
    }
    root["sources"] = std::move(sources);
    root["tensor_count"] = cat.tensors.size();
    root["total_bytes"] = cat.total_data_bytes();
    if (bf16_bytes) {
      root["bf16_bytes"] = *bf16_bytes;
    } else {
      root["bf16_bytes"] = nullptr;
    }
    json::object dtypes;
    for (const auto& [name, e] : by_dtype) {
      dtypes[name] = json::object{{"count", e.first}, {"bytes", e.second}};
    }
    root["dtypes"] = std::move(dtypes);
    json::object meta;
    for (const auto& [k, v] : cat.header.metadata) {
      meta[k] = v;
    }
    for (const auto& [k, v] : cat.header.array_metadata) {
      meta[k] = v;
    }
    root["metadata"] = std::move(meta);
    json::array warnings;
    for (const auto& w : cat.warnings) {
      json::object o{{"message", w.message}};
      if (!w.tensor.empty()) {
        o["tensor"] = w.tensor;
      }
      warnings.push_back(std::move(o));
    }
    root["warnings"] = std::move(warnings);
    json::array tensors;
    for (const auto& t : cat.tensors) {
      json::array shape(t.shape.begin(), t.shape.end());
      json::object o{{"name", t.name},
                     {"dtype", tensor_type_name(t)},
                     {"scheme", scheme_description(t)},
                     {"shape", std::move(shape)},
                     {"bytes", t.data.length},
                     {"source", t.data.source},
                     {"offset", t.data.offset}};
      if (const auto it = tensor_warnings.find(t.name); it != tensor_warnings.end()) {
        o["warnings"] = json::array(it->second.begin(), it->second.end());
      }
      tensors.push_back(std::move(o));
    }
    root["tensors"] = std::move(tensors);
    std::cout << json::serialize(root) << "\n";
    return 0;
  }
  std::cout << "format   " << format_name(cat.format);
  if (cat.header.version) {
    std::cout << " v" << cat.header.version;
  }
  std::cout << " (" << cat.sources.size() << " source" << (cat.sources.size() == 1 ? "" : "s")
            << ")\n";
  std::cout << "tensors  " << cat.tensors.size() << ", "
            << human_bytes(static_cast<double>(cat.total_data_bytes())) << " stored";
  if (bf16_bytes) {
    std::cout << ", " << human_bytes(static_cast<double>(*bf16_bytes))
              << " remembered as BF16 (float and quantized tensors converted, others as stored)";
  }
  std::cout << "\n";
  for (const auto& [name, e] : by_dtype) {
    std::cout << "  " << name << ": " << e.first << " tensor" << (e.first == 1 ? "" : "s") << ", "
              << human_bytes(static_cast<double>(e.second)) << "\n";
  }
  for (const auto& [k, v] : cat.header.metadata) {
    std::cout << "meta     " << printable(k) << " = " << printable(v, 120) << "\n";
  }
  for (const auto& [k, v] : cat.header.array_metadata) {
    std::cout << "meta     " << printable(k) << " = " << v << "\n";
  }
  for (const auto& w : cat.warnings) {
    std::cout << "warning  " << (w.tensor.empty() ? "" : printable(w.tensor) + ": ")
              << printable(w.message, 400) << "\n";
  }
  // Columns as wide as their widest entry: full names, whatever the dtype.
  struct Row {
    std::string name, dtype, shape, bytes, scheme;
  };
  std::vector<Row> rows{{"NAME", "DTYPE", "SHAPE", "BYTES", "SCHEME"}};
  for (const auto& t : cat.tensors) {
    std::string scheme = scheme_description(t);
    if (tensor_warnings.count(t.name)) {
      scheme += scheme.empty() ? "(see warning)" : " (see warning)";
    }
    rows.push_back({printable(t.name, 4096), tensor_type_name(t), shape_text(t.shape),
                    std::to_string(t.data.length), scheme});
  }
  std::size_t w[4] = {0, 0, 0, 0};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.name.size());
    w[1] = std::max(w[1], r.dtype.size());
    w[2] = std::max(w[2], r.shape.size());
    w[3] = std::max(w[3], r.bytes.size());
  }
  std::cout << "\n";
  for (const auto& r : rows) {
    std::string line = r.name + std::string(w[0] - r.name.size() + 2, ' ') + r.dtype +
                       std::string(w[1] - r.dtype.size() + 2, ' ') + r.shape +
                       std::string(w[2] - r.shape.size() + 2, ' ') +
                       std::string(w[3] - r.bytes.size(), ' ') + r.bytes;
    if (!r.scheme.empty()) {
      line += "  " + r.scheme;
    }
    std::cout << line << "\n";
  }
  return 0;
}

// --- remember / convert / load ---------------------------------------------------

RunOptions run_options(const cli::Args& a, Progress& progress) {
  RunOptions r;
  if (a.threads) {
    r.threads = *a.threads;
  }
  if (a.budget) {
    r.budget_bytes = *a.budget;
  }
  r.cancel = &g_cancel;
  r.progress = [&progress](std::uint64_t d, std::uint64_t t) { progress.update(d, t); };
  return r;
}

PlanOptions plan_options(const cli::Args& a, std::optional<OutType> to) {
  PlanOptions p;
  p.to = to;
  if (a.chunk) {
    p.max_chunk_bytes = *a.chunk;
  } else if (a.device) {
    // A chunk fills a slot: one copy per slot, large enough for the copy
    // engine's full rate (docs/performance.md, "Uploading to a GPU").
    p.max_chunk_bytes = a.slot_size.value_or(UploadOptions{}.slot_bytes);
  }
  if (a.budget) {
    if (*a.budget < p.max_chunk_bytes) {
      throw cli::UsageError(
          "--budget " + human_bytes(static_cast<double>(*a.budget)) + " is below one chunk (" +
          human_bytes(static_cast<double>(p.max_chunk_bytes)) + "); lower --chunk to go below");
    }
    // A tensor held whole (GPTQ/AWQ output, strided storage) may take the budget.
    p.max_materialize_bytes = std::max(p.max_materialize_bytes, *a.budget);
  }
  return p;
}

void print_stats(const RunStats& s, const char* verb) {
  const double rate = s.wall_seconds > 0 ? static_cast<double>(s.bytes_read) / s.wall_seconds : 0;
  std::fprintf(stderr, "%s %s -> %s in %.3f s (%s/s read), %u thread%s\n", verb,
               human_bytes(static_cast<double>(s.bytes_read)).c_str(),
               human_bytes(static_cast<double>(s.bytes_written)).c_str(), s.wall_seconds,
               human_bytes(rate).c_str(), s.threads, s.threads == 1 ? "" : "s");
  std::fprintf(
      stderr,
      "  %llu chunks; I/O busy %.3f s; decode %.3f s (all threads); decoders idle on I/O %.3f s\n",
      static_cast<unsigned long long>(s.chunks), s.io_busy_seconds, s.decode_seconds,
      s.io_wait_seconds);
  std::fprintf(stderr, "  peak memory %s of a %s budget (input buffers %s preallocated",
               human_bytes(static_cast<double>(s.peak_buffer_bytes)).c_str(),
               human_bytes(static_cast<double>(s.budget_bytes)).c_str(),
               human_bytes(static_cast<double>(s.buffer_capacity)).c_str());
  if (s.peak_whole_tensor_bytes) {
    std::fprintf(stderr, "; %s of tensors held whole",
                 human_bytes(static_cast<double>(s.peak_whole_tensor_bytes)).c_str());
  }
  std::fputc(')', stderr);
  std::fputc('\n', stderr);
}

// `mneme load --device`: every tensor into device memory through the upload
// ring, freed at the end.
int upload(const cli::Args& a, boost::asio::io_context& io, const Catalog& cat, const Plan& plan,
           const RunOptions& opts) {
  const std::unique_ptr<UploadDevice> device = open_device(*a.device);
  UploadOptions options;
  if (a.slot_size) {
    options.slot_bytes = *a.slot_size;
  }
  if (a.slots) {
    options.slots = *a.slots;
  }
  UploadSink sink(*device, options);
  const RunStats stats = run_pipeline(io, cat, plan, sink, opts);
  if (!a.quiet) {
    print_stats(stats, "loaded");
    const UploadStats u = sink.stats();
    const double rate = u.busy_seconds > 0 ? static_cast<double>(u.bytes) / u.busy_seconds : 0;
    std::fprintf(stderr,
                 "  to %s: %s in %llu copies through %u slots of %s; copies busy %.3f s (%.2f GB/s); "
                 "decoders waited for a slot %.3f s\n",
                 device->name().c_str(), human_bytes(static_cast<double>(u.bytes)).c_str(),
                 static_cast<unsigned long long>(u.copies), u.slots,
                 human_bytes(static_cast<double>(options.slot_bytes)).c_str(), u.busy_seconds,
                 rate / 1e9, u.wait_seconds);
  }
  return 0;
}

// `<model>-<type>.safetensors`: the model directory's name, or the file's stem
// without shard numbering and `.index`; "model" for stdin and network sources.
std::string default_output(const std::string& src, std::optional<OutType> to) {
  std::string stem = "model";
  std::error_code ec;
  if (src != "-" && src.find("://") == std::string::npos) {
    fs::path p = fs::absolute(fs::path(src), ec).lexically_normal();
    if (p.filename().empty()) {
      p = p.parent_path();
    }
    if (fs::is_directory(p, ec)) {
      stem = p.filename().string();
    } else {
      std::string file = p.filename().string();
      if (file.ends_with(".index.json")) {
        stem = p.parent_path().filename().string();  // the model's directory
      } else {
        stem = fs::path(file).stem().string();
        static const std::regex kShard(R"((.*)-\d{5}-of-\d{5})");
        std::smatch m;
        if (std::regex_match(stem, m, kShard)) {
          stem = m[1].str();
        }
      }
    }
    if (stem.empty() || stem == "." || stem == "/") {
      stem = "model";
    }
  }
  const char* type = !to                    ? "remembered"
                     : *to == OutType::bf16 ? "bf16"
                     : *to == OutType::f16  ? "f16"
                                            : "f32";
  return stem + "-" + type + ".safetensors";
}

// Activation-quantization companions (static input / KV-cache scales) mean
// nothing once the weights are decoded; loaders report them as unexpected keys.
bool is_activation_scale(const std::string& name) {
  for (const char* suffix :
       {".input_scale", ".k_scale", ".v_scale", ".kv_scale", ".q_scale", ".prob_scale"}) {
    if (name.ends_with(suffix)) {
      return true;
    }
  }
  return false;
}

// The plan's selection for a model whose FP8 weights are decoded: everything
// but those scales, counted in `dropped`. Unset for other models.
std::function<bool(const TensorInfo&)> without_activation_scales(const Catalog& cat,
                                                                 std::size_t& dropped) {
  const bool fp8 = std::any_of(cat.tensors.begin(), cat.tensors.end(), [](const TensorInfo& t) {
    return holds<scheme::Fp8>(t.scheme);
  });
  if (!fp8) {
    return {};
  }
  return [&dropped](const TensorInfo& t) {
    const bool drop =
        std::holds_alternative<scheme::Plain>(t.scheme) && is_activation_scale(t.name);
    dropped += drop ? 1 : 0;
    return !drop;
  };
}

enum class Job { remember, convert, load };

int transfer(const cli::Args& a, boost::asio::io_context& io, Job job) {
  std::optional<OutType> to;
  FileFormat format = FileFormat::safetensors;
  if (job == Job::convert) {
    if (!a.to || (*a.to != "gguf" && *a.to != "safetensors")) {
      throw cli::UsageError("convert needs --to safetensors|gguf");
    }
    if (!a.output) {
      throw cli::UsageError("convert needs -o OUT");
    }
    format = *a.to == "gguf" ? FileFormat::gguf : FileFormat::safetensors;
    to = out_type(a.dtype, "--dtype", std::nullopt);
  } else {
    to = out_type(a.to, "--to",
                  job == Job::remember ? std::optional<OutType>(OutType::bf16) : std::nullopt);
  }
  PlanOptions plan_opts = plan_options(a, to);
  std::string out;
  if (job != Job::load) {
    out = a.output ? *a.output : default_output(a.sources.front(), to);
    if (out == "-") {
      throw cli::UsageError(
          "-o -: writing a model to standard output is not supported; give a file path");
    }
    check_output_path(out, {.overwrite = a.force, .inputs = {}});  // before any work
  }
  const Catalog cat = open_model(a, io, /*lenient=*/false);
  for (const auto& w : cat.warnings) {
    warn(w.message);
  }
  std::size_t dropped = 0;
  if (!a.keep_scales) {
    plan_opts.select = without_activation_scales(cat, dropped);
  }
  const Plan plan = [&] {
    try {
      return make_plan(cat, plan_opts);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::limit) {
        throw;
      }
      fail(ErrorKind::limit, std::string(e.what()) + "; --budget SIZE raises the cap");
    }
  }();
  g_progress.start(!a.quiet && ::isatty(STDERR_FILENO));
  const RunOptions opts = run_options(a, g_progress);
  RunStats stats;
  if (job == Job::load && a.device) {
    return upload(a, io, cat, plan, opts);
  }
  if (job == Job::load) {
    DiscardSink sink;
    stats = run_pipeline(io, cat, plan, sink, opts);
    if (!a.quiet) {
      print_stats(stats, "loaded");
    }
    return 0;
  }
  FileSink sink(out, format, a.force);  // checks again, with the inputs: never one of them
  stats = run_pipeline(io, cat, plan, sink, opts);
  if (!a.quiet) {
    print_stats(stats, job == Job::remember ? "remembered" : "converted");
    if (dropped) {
      std::fprintf(stderr,
                   "  dropped %zu activation-scale tensor%s (input_scale, k_scale, v_scale...; "
                   "--keep-scales keeps them)\n",
                   dropped, dropped == 1 ? "" : "s");
    }
    std::fprintf(stderr, "wrote %s\n", printable(out).c_str());
  }
  return 0;
}

// Standard output must have taken everything (`inspect > /dev/full` fails).
int flush_stdout(int status) {
  std::cout.flush();
  if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::cerr << "mneme: io error: cannot write to standard output\n";
    return 1;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  // For "Try 'mneme CMD --help'": the command, when argv names one.
  std::string command = argc > 1 ? argv[1] : "";
  if (command != "inspect" && command != "remember" && command != "convert" && command != "load") {
    command.clear();
  }
  try {
    const cli::Args args = cli::parse_args(argc, argv);
    if (args.command == "version") {
      std::cout << "mneme " MNEME_VERSION "\n";
      return flush_stdout(0);
    }
    if (args.command == "help" || args.help) {
      std::cout << cli::usage(args.command == "help" ? "" : args.command);
      return flush_stdout(0);
    }
    install_signal_handlers();
    boost::asio::io_context io(1);
    int status = 0;
    if (args.command == "inspect") {
      status = inspect(args, io);
    } else if (args.command == "remember") {
      status = transfer(args, io, Job::remember);
    } else if (args.command == "convert") {
      status = transfer(args, io, Job::convert);
    } else if (args.command == "load") {
      status = transfer(args, io, Job::load);
    }
    return flush_stdout(status);
  } catch (const cli::UsageError& e) {
    g_progress.end_line();
    std::cerr << "mneme: " << e.what() << "\n"
              << "Try 'mneme " << (command.empty() ? "" : command + " ") << "--help'.\n";
    return 2;
  } catch (const mneme::Error& e) {
    g_progress.end_line();
    if (g_signal != 0) {
      std::cerr << "mneme: interrupted (" << (g_signal == SIGINT ? "SIGINT" : "SIGTERM")
                << "); nothing written\n";
      return 128 + g_signal;
    }
    std::cerr << "mneme: " << mneme::to_string(e.kind()) << " error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    g_progress.end_line();
    std::cerr << "mneme: limit error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    g_progress.end_line();
    std::cerr << "mneme: error: " << e.what() << "\n";
    return 1;
  }
}
