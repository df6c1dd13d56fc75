// Keeps SIGBUS out of the process when a mapped file shrinks under its
// mapping (another process truncated it; hostile-inputs.md item 62). A
// SIGBUS at an address inside a guarded mapping maps a zero page over the
// lost page and marks the mapping lost, then lets the access go on: it reads
// zeros. Whoever read from the mapping checks lost() afterwards and turns it
// into Error{io}. A SIGBUS anywhere else goes to the handler that was there
// before (or kills the process, as it would have).
#pragma once

#include <cstddef>

namespace mneme::detail {

class MappingGuard {
 public:
  MappingGuard() = default;
  // Guards [base, base + size); installs the handler if it is not on top.
  // Error{limit} when too many mappings are guarded at once.
  MappingGuard(const void* base, std::size_t size);
  ~MappingGuard();
  MappingGuard(const MappingGuard&) = delete;
  MappingGuard& operator=(const MappingGuard&) = delete;

  // A page of the mapping was lost since it was guarded: what was read from
  // it may be zeros rather than the file's bytes.
  bool lost() const;

 private:
  int slot_ = -1;
};

}  // namespace mneme::detail
