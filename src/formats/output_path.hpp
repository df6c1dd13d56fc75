// Where a writer may put a file, decided before any work is done: a new path
// in an existing directory, or (when overwriting is allowed) an existing
// regular file. A symlink is followed: its target is replaced and the link
// stays. Everything else is refused with Error{io} naming the path and what it
// is: a directory (or a path ending in '/'), a device, a FIFO, a socket, a
// dangling symlink, a missing directory, or one of the model's own input files
// (same device and inode) — so no output can destroy what is there.
#pragma once

#include <string>
#include <vector>

#include "mneme/source.hpp"

namespace mneme {

struct OutputPolicy {
  bool overwrite = true;       // replace an existing regular file
  std::vector<FileId> inputs;  // files the output must not be
};

// The file to create or replace (a symlink resolved to its target), or throws.
std::string check_output_path(const std::string& path, const OutputPolicy& policy);

// The directory a file path lives in: "." for a bare name, "/" at the root.
std::string directory_of(const std::string& path);

}  // namespace mneme
