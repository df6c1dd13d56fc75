// What every fuzz target does with its input: write it as a model file (a
// tmpfs folder of the process's own), open it as a user would (detection by
// content, scheme detection, config.json beside it), plan it and run it into
// memory under a small budget, so the parsers, the scheme detectors, the
// codecs and the kernels all see the hostile bytes. mneme::Error is the
// expected outcome of a hostile input; anything else (a crash, a sanitizer
// report, another exception, a hang, a huge allocation) is a finding.
#pragma once

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"

namespace mneme::fuzz {

// A folder of this process's own (under /dev/shm when there is one),
// removed when the process exits (libFuzzer ends its runs with exit()).
inline const std::filesystem::path& work_dir() {
  struct Folder {
    std::filesystem::path path;
    ~Folder() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Folder folder = [] {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                           ? "/dev/shm"
                                           : std::filesystem::temp_directory_path();
    auto d = base / ("mneme-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return Folder{d};
  }();
  return folder.path;
}

inline void write_file(const std::filesystem::path& path, const std::uint8_t* data,
                       std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

// Limits small enough that a hostile size cannot take the fuzzer's memory.
inline CatalogOptions fuzz_options() {
  CatalogOptions o;
  o.limits.max_header_bytes = 1u << 20;
  return o;
}

// Opens `spec` (a file or folder in work_dir()), plans it to BF16 and runs it
// into memory: Error is a normal outcome.
inline void load(const std::string& spec) {
  try {
    boost::asio::io_context io;
    const Catalog catalog = open_catalog({spec}, io.get_executor(), fuzz_options());
    PlanOptions plan_options;
    plan_options.to = OutType::bf16;
    plan_options.max_chunk_bytes = 64u << 10;
    plan_options.max_materialize_bytes = 16u << 20;
    const Plan plan = make_plan(catalog, plan_options);
    if (plan.total_out > (64u << 20)) {
      return;  // a valid header promising a large model: nothing more to learn
    }
    MemorySink sink;
    run_pipeline(io, catalog, plan, sink, RunOptions{.threads = 1, .budget_bytes = 16u << 20});
  } catch (const Error&) {
  }
}

// One model file named `name` holding the input.
inline int load_file(const std::uint8_t* data, std::size_t size, const char* name) {
  const auto path = work_dir() / name;
  write_file(path, data, size);
  load(path.string());
  return 0;
}

}  // namespace mneme::fuzz
