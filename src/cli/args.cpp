#include "src/cli/args.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>

namespace mneme::cli {
namespace {

enum Cmd : unsigned { kInspect = 1, kRemember = 2, kConvert = 4, kLoad = 8, kAll = 15 };
constexpr unsigned kTransfer = kRemember | kConvert | kLoad;

struct Option {
  const char* name;
  const char* alias;  // or nullptr
  const char* value;  // the value's name in help, nullptr for a flag
  unsigned commands;
  const char* help;
};

// One table: parsing, per-command acceptance and the help text.
constexpr std::array kOptions{
    Option{"--json", nullptr, nullptr, kInspect,
           "print the catalog as JSON (warnings in a \"warnings\" array)"},
    Option{"--output", "-o", "OUT", kRemember | kConvert,
           "output file: a new path or a regular file (a symlink is followed to its target);\n"
           "never a directory, device, FIFO, socket or one of the inputs"},
    Option{"--force", nullptr, nullptr, kRemember | kConvert, "replace OUT if it exists"},
    Option{"--to", nullptr, "TYPE", kRemember,
           "bf16 (default), f16 or f32: decoded and float tensors"},
    Option{"--to", nullptr, "TYPE", kLoad, "bf16, f16 or f32 (default: float tensors as stored)"},
    Option{"--to", nullptr, "FORMAT", kConvert, "safetensors or gguf (required)"},
    Option{"--dtype", nullptr, "TYPE", kConvert,
           "convert float tensors to bf16, f16 or f32 (default: as stored)"},
    Option{"--threads", nullptr, "N", kTransfer, "decode threads, 1..1024 (default: every core)"},
    Option{"--budget", nullptr, "SIZE", kTransfer,
           "input buffer memory, at least one chunk (default 64M);\n"
           "also the cap of one tensor held whole (default 1G)"},
    Option{"--chunk", nullptr, "SIZE", kTransfer,
           "largest chunk one decode reads, 1k..1G (default 4M)"},
    Option{"--io", nullptr, "MODE", kAll,
           "file reads: auto (default: mapped, zero copy; pread where a file\n"
           "cannot be mapped), mmap, pread or uring"},
    Option{"--config", nullptr, "FILE", kAll,
           "the model's config.json (default: the one beside local weights)"},
    Option{"--allow-partial", nullptr, nullptr, kTransfer,
           "go on when shards of the model are missing"},
    Option{"--keep-scales", nullptr, nullptr, kTransfer,
           "keep the activation scales (input_scale, k_scale, v_scale...)\n"
           "of a decoded FP8 model"},
    Option{"--connect-timeout", nullptr, "SECS", kAll,
           "give up connecting to a network source (default 30)"},
    Option{"--timeout", nullptr, "SECS", kAll,
           "give up when a network source sends nothing for SECS (default 60)"},
    Option{"--part-size", nullptr, "SIZE", kAll,
           "HTTP and S3: bytes per ranged GET, at least 1M (default 8M)"},
    Option{"--connections", nullptr, "N", kAll,
           "HTTP and S3: connections per host, requests in flight (default 16)"},
    Option{"--retries", nullptr, "N", kAll,
           "HTTP and S3: attempts per part, the first included (default 5);\n"
           "5xx, 408, 429, resets, stalls and short bodies are retried"},
    Option{"--header", "-H", "'NAME: VALUE'", kAll,
           "HTTP: add a request header, e.g. \"Authorization: Bearer $HF_TOKEN\"\n"
           "(repeatable)"},
    Option{"--no-sign-request", nullptr, nullptr, kAll,
           "S3: read a public bucket without credentials (AWS_NO_SIGN_REQUEST)"},
    Option{"--device", nullptr, "DEV", kLoad,
           "upload every tensor to a device: cuda, cuda:N, or host (a mock\n"
           "device in host memory); the summary adds the copies' rate"},
    Option{"--slot-size", nullptr, "SIZE", kLoad,
           "--device: bytes per pinned staging slot, at least 64k (default 16M);\n"
           "also the chunk size unless --chunk is given"},
    Option{"--slots", nullptr, "N", kLoad,
           "--device: staging slots in the ring, 1..64 (default 4)"},
    Option{"--quiet", "-q", nullptr, kTransfer, "no progress bar and no summary"},
};

struct Command {
  const char* name;
  unsigned bit;
  const char* synopsis;
  const char* what;
};

constexpr std::array kCommands{
    Command{
        "inspect", kInspect, "inspect SRC... [options]",
        "Reads only the headers: format, version, metadata, every tensor with its dtype, shape\n"
        "and quantization scheme. Problems with a scheme or missing shards are warnings here."},
    Command{"remember", kRemember, "remember SRC... [-o OUT] [options]",
            "Decodes quantized tensors and converts float tensors to --to (default bf16), passes\n"
            "the rest through, keeps the metadata, and writes one safetensors file (default OUT:\n"
            "<model>-<type>.safetensors in the current directory)."},
    Command{"convert", kConvert, "convert SRC... --to safetensors|gguf -o OUT [options]",
            "Writes the model as safetensors or GGUF v3, keeping float tensors as they are unless\n"
            "--dtype is given; GGUF metadata is carried over with its types."},
    Command{"load", kLoad, "load SRC... [options]",
            "Streams every tensor through the decoders into a discarding sink and prints the run\n"
            "statistics (a benchmark of reading and decoding)."},
};

constexpr const char* kSources =
    "SRC is a model file (format detected by content: safetensors, GGUF, NPZ, NPY, PyTorch zip),\n"
    "a directory of one (safetensors shards or index, pytorch_model.bin shards or index, GGUF\n"
    "splits, NPZ/NPY files), a model.safetensors.index.json, file://PATH, http(s)://URL (a\n"
    "folder URL ending in / means its model.safetensors.index.json or model.safetensors),\n"
    "s3://BUCKET/KEY or s3://BUCKET/PREFIX/ (listed like a directory; credentials, region and\n"
    "endpoint as the AWS CLI finds them), tcp://HOST:PORT, or - for standard input. Several SRC\n"
    "are shards of one model. SIZE takes k, M, G (binary).\n";

const Command* find_command(std::string_view name) {
  for (const auto& c : kCommands) {
    if (name == c.name) {
      return &c;
    }
  }
  return nullptr;
}

std::string option_line(const Option& o) {
  std::string head = "  ";
  head += o.alias ? std::string(o.alias) + ", " + o.name : std::string("    ") + o.name;
  if (o.value) {
    head += std::string(" ") + o.value;
  }
  std::string text(o.help);
  std::string out;
  const std::string pad(28, ' ');
  std::size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    const auto nl = text.find('\n', start);
    const std::string line =
        text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (first) {
      out += head;
      if (head.size() < pad.size()) {
        out.append(pad.size() - head.size(), ' ');
      } else {
        out += '\n';
        out += pad;
      }
      first = false;
    } else {
      out += '\n';
      out += pad;
    }
    out += line;
    if (nl == std::string::npos) {
      break;
    }
    start = nl + 1;
  }
  return out + "\n";
}

// The caps on hostile headers, one --max-NAME per field of mneme::Limits.
std::string limits_help() {
  std::string u = "limits (a header over one ends in a limit error naming its option):\n";
  for (const auto& f : limit_fields()) {
    const Limits defaults;
    const std::uint64_t v = defaults.*f.field;
    const auto shown = [&](std::uint64_t n) {
      if (f.size && n % (1u << 20) == 0) return std::to_string(n >> 20) + "M";
      if (f.size && n % (1u << 10) == 0) return std::to_string(n >> 10) + "k";
      return std::to_string(n);
    };
    const std::string name = "--max-" + std::string(f.name);
    const std::string help =
        std::string(f.what) + "\n(default " + shown(v) + ", at least " + shown(f.floor) + ")";
    u += option_line(Option{name.c_str(), nullptr, f.size ? "SIZE" : "N", kAll, help.c_str()});
  }
  return u + "\n";
}

// --max-NAME VALUE: a size or a count, at least the cap's floor.
void parse_limit(const std::string& name, const std::string& value, Limits& limits) {
  const LimitField* f = find_limit(std::string_view(name).substr(6));
  if (!f) throw UsageError("unknown option " + name);
  std::uint64_t v = 0;
  if (f->size) {
    v = parse_size(value, name);
  } else {
    const bool digits = !value.empty() && value.size() <= 19 &&
                        std::all_of(value.begin(), value.end(), [](char c) {
                          return std::isdigit(static_cast<unsigned char>(c));
                        });
    if (!digits) throw UsageError(name + " needs a whole number, not '" + value + "'");
    v = std::stoull(value);
  }
  if (v < f->floor) {
    throw UsageError(name + " must be at least " + std::to_string(f->floor) + ", not '" + value +
                     "'");
  }
  limits.*f->field = v;
}

unsigned parse_threads(const std::string& v) {
  const bool digits = !v.empty() && v.size() <= 4 && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  const unsigned long n = digits ? std::stoul(v) : 0;
  if (n < 1 || n > 1024) {
    throw UsageError("--threads must be a whole number from 1 to 1024, not '" + v + "'");
  }
  return static_cast<unsigned>(n);
}

unsigned parse_count(const std::string& v, const std::string& option, unsigned lo, unsigned hi) {
  const bool digits = !v.empty() && v.size() <= 6 && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  const unsigned long n = digits ? std::stoul(v) : 0;
  if (n < lo || n > hi) {
    throw UsageError(option + " must be a whole number from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ", not '" + v + "'");
  }
  return static_cast<unsigned>(n);
}

double parse_seconds(const std::string& v, const std::string& option) {
  char* end = nullptr;
  const double s = v.empty() ? 0 : std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(s) || s <= 0 || s > 86400) {
    throw UsageError(option + " must be a number of seconds above 0 (at most 86400), not '" + v +
                     "'");
  }
  return s;
}

}  // namespace

std::uint64_t parse_size(const std::string& text, const std::string& option) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  const auto bad = [&] {
    return UsageError(option + " needs a size like 4096, 512k, 64M or 1G, not '" + text + "'");
  };
  if (digits == 0 || digits > 20) {
    throw bad();
  }
  std::string unit = text.substr(digits);
  if (unit.ends_with("iB") || unit.ends_with("ib")) {
    unit.resize(unit.size() - 2);
  } else if (unit.size() == 2 && (unit.back() == 'B' || unit.back() == 'b')) {
    unit.pop_back();
  }
  unsigned shift = 0;
  if (unit.empty()) {
    shift = 0;
  } else if (unit == "k" || unit == "K") {
    shift = 10;
  } else if (unit == "m" || unit == "M") {
    shift = 20;
  } else if (unit == "g" || unit == "G") {
    shift = 30;
  } else if (unit == "t" || unit == "T") {
    shift = 40;
  } else {
    throw bad();
  }
  const std::string number = text.substr(0, digits);
  errno = 0;
  const unsigned long long value = std::strtoull(number.c_str(), nullptr, 10);
  if (errno == ERANGE || value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    throw UsageError(option + " " + text + " is too large");
  }
  return static_cast<std::uint64_t>(value) << shift;
}

std::string usage(const std::string& command) {
  if (const Command* c = find_command(command)) {
    std::string u =
        std::string("usage: mneme ") + c->synopsis + "\n\n" + c->what + "\n\noptions:\n";
    for (const auto& o : kOptions) {
      if (o.commands & c->bit) {
        u += option_line(o);
      }
    }
    u += "  -h, --help                show this help\n\n";
    return u + limits_help() + kSources;
  }
  std::string u = "usage: mneme COMMAND SRC... [options]\n\ncommands:\n";
  for (const auto& c : kCommands) {
    u += std::string("  mneme ") + c.synopsis + "\n";
  }
  u += "\n  mneme --version           print the version\n"
       "  mneme COMMAND --help      the options of one command\n\n";
  return u + kSources + "'--' ends the options: every argument after it is a source.\n";
}

Args parse_args(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    throw UsageError("no command given");
  }
  const std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    a.command = "help";
    if (argc > 2 && find_command(argv[2])) {
      a.command = argv[2], a.help = true;
    }
    return a;
  }
  if (first == "--version" || first == "-V") {
    a.command = "version";
    return a;
  }
  const Command* cmd = find_command(first);
  if (!cmd) {
    throw UsageError("unknown command '" + first + "'");
  }
  a.command = first;
  bool options_done = false;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (options_done || arg == "-" || arg.empty() || arg[0] != '-') {
      a.sources.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      a.help = true;
      continue;
    }
    // --name=value is accepted as well as --name value.
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    if (name.starts_with("--max-")) {
      std::string value;
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        throw UsageError(name + " needs a value");
      }
      parse_limit(name, value, a.limits);
      continue;
    }
    const auto named = [&](const Option& o) {
      return name == o.name || (o.alias && name == o.alias);
    };
    const auto it = std::find_if(kOptions.begin(), kOptions.end(), [&](const Option& o) {
      return named(o) && (o.commands & cmd->bit);
    });
    if (it == kOptions.end()) {
      if (std::none_of(kOptions.begin(), kOptions.end(), named)) {
        throw UsageError("unknown option " + name);
      }
      throw UsageError(a.command + " does not take " + name);
    }
    std::string value;
    if (it->value) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        throw UsageError(std::string(it->name) + " needs a value (" + it->value + ")");
      }
    } else if (inline_value) {
      throw UsageError(std::string(it->name) + " takes no value");
    }
    const std::string_view o = it->name;
    if (o == "--json") {
      a.json = true;
    } else if (o == "--output") {
      a.output = value;
    } else if (o == "--force") {
      a.force = true;
    } else if (o == "--to") {
      a.to = value;
    } else if (o == "--dtype") {
      a.dtype = value;
    } else if (o == "--threads") {
      a.threads = parse_threads(value);
    } else if (o == "--budget") {
      a.budget = parse_size(value, "--budget");
    } else if (o == "--chunk") {
      a.chunk = parse_size(value, "--chunk");
    } else if (o == "--io") {
      a.io = value;
    } else if (o == "--config") {
      a.config = value;
    } else if (o == "--allow-partial") {
      a.allow_partial = true;
    } else if (o == "--keep-scales") {
      a.keep_scales = true;
    } else if (o == "--connect-timeout") {
      a.connect_timeout = parse_seconds(value, "--connect-timeout");
    } else if (o == "--timeout") {
      a.timeout = parse_seconds(value, "--timeout");
    } else if (o == "--part-size") {
      a.part_size = parse_size(value, "--part-size");
      if (*a.part_size < (1u << 20)) throw UsageError("--part-size must be at least 1M");
    } else if (o == "--connections") {
      a.connections = parse_count(value, "--connections", 1, 256);
    } else if (o == "--retries") {
      a.retries = parse_count(value, "--retries", 1, 100);
    } else if (o == "--header") {
      if (value.find(':') == std::string::npos ||
          value.find_first_of("\r\n") != std::string::npos) {
        throw UsageError("--header must be 'Name: value' on one line");
      }
      a.headers.push_back(value);
    } else if (o == "--no-sign-request") {
      a.no_sign_request = true;
    } else if (o == "--device") {
      a.device = value;
    } else if (o == "--slot-size") {
      a.slot_size = parse_size(value, "--slot-size");
      if (*a.slot_size < (64u << 10)) throw UsageError("--slot-size must be at least 64k");
    } else if (o == "--slots") {
      a.slots = parse_count(value, "--slots", 1, 64);
    } else if (o == "--quiet") {
      a.quiet = true;
    }
  }
  if (a.help) {
    return a;
  }
  if (a.sources.empty()) {
    throw UsageError(a.command + " needs at least one source");
  }
  if ((a.slot_size || a.slots) && !a.device) {
    throw UsageError("--slot-size and --slots go with --device");
  }
  if (a.chunk && (*a.chunk < (1u << 10) || *a.chunk > (1u << 30))) {
    throw UsageError("--chunk must be from 1k to 1G");
  }
  return a;
}

}  // namespace mneme::cli
