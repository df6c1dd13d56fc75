#include "src/formats/output_path.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "mneme/error.hpp"

namespace mneme {
namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "a directory";
  }
  if (S_ISCHR(mode)) {
    return "a character device";
  }
  if (S_ISBLK(mode)) {
    return "a block device";
  }
  if (S_ISFIFO(mode)) {
    return "a FIFO";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  return "not a regular file";
}

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  fail(ErrorKind::io, "output " + printable(path) + " " + why);
}

}  // namespace

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string check_output_path(const std::string& path, const OutputPolicy& policy) {
  if (path.empty()) {
    fail(ErrorKind::io, "empty output path");
  }
  if (path.back() == '/') {
    refuse(path, "names a directory; give a file name");
  }
  std::string target = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {  // follows symlinks
    if (!S_ISREG(st.st_mode)) {
      refuse(path, std::string("is ") + file_kind(st.st_mode) +
                       "; mneme writes model files only to a regular file or a new path");
    }
    struct stat link {};
    if (::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
      char resolved[PATH_MAX];
      if (::realpath(path.c_str(), resolved) == nullptr) {
        refuse(path, "is a symlink whose target cannot be resolved (" +
                         std::string(std::strerror(errno)) + ")");
      }
      target = resolved;
    }
    const FileId id{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
    if (std::find(policy.inputs.begin(), policy.inputs.end(), id) != policy.inputs.end()) {
      refuse(path, "is one of the model's input files; write to another path");
    }
    if (!policy.overwrite) {
      refuse(path, "exists; pass --force to overwrite it");
    }
    return target;
  }
  if (errno != ENOENT) {
    refuse(path, std::string("cannot be examined: ") + std::strerror(errno));
  }
  if (::lstat(path.c_str(), &st) == 0) {
    refuse(path, "is a dangling symlink; give its target or another path");
  }
  const std::string dir = directory_of(target);
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    refuse(path, "is in " + printable(dir) + ", which is not an existing directory");
  }
  return target;
}

}  // namespace mneme
