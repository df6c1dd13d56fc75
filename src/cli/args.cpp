#include "src/cli/args.hpp"

#include <cctype>
#include <limits>

namespace mneme::cli {

std::uint64_t parse_size(const std::string& text) {
  std::size_t pos = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &pos);
  } catch (const std::exception&) {
    throw UsageError("not a size: " + text);
  }
  std::string unit = text.substr(pos);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (!unit.empty() && (unit.back() == 'i')) unit.pop_back();
  unsigned shift = 0;
  if (unit.empty()) shift = 0;
  else if (unit == "k" || unit == "K") shift = 10;
  else if (unit == "m" || unit == "M") shift = 20;
  else if (unit == "g" || unit == "G") shift = 30;
  else if (unit == "t" || unit == "T") shift = 40;
  else throw UsageError("unknown size unit in " + text);
  if (value > (std::numeric_limits<std::uint64_t>::max() >> shift)) throw UsageError("size too large: " + text);
  return static_cast<std::uint64_t>(value) << shift;
}

Args parse_args(int argc, char** argv) {
  if (argc < 2) throw UsageError("no command given");
  Args a;
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-o" || arg == "--output") a.output = value();
    else if (arg == "--to") a.to = value();
    else if (arg == "--dtype") a.dtype = value();
    else if (arg == "--io") a.io = value();
    else if (arg == "--threads") {
      const std::string v = value();
      try {
        const unsigned long n = std::stoul(v);
        if (n == 0 || n > 1024) throw UsageError("--threads must be 1..1024");
        a.threads = static_cast<unsigned>(n);
      } catch (const std::logic_error&) {
        throw UsageError("--threads needs a number, got " + v);
      }
    }
    else if (arg == "--budget") a.budget = parse_size(value());
    else if (arg == "--chunk") a.chunk = parse_size(value());
    else if (arg == "--json") a.json = true;
    else if (arg == "-q" || arg == "--quiet") a.quiet = true;
    else if (arg.size() > 1 && arg[0] == '-' ) throw UsageError("unknown option " + arg);
    else a.sources.push_back(arg);
  }
  return a;
}

}  // namespace mneme::cli
