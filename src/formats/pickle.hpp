// A restricted pickle VM for torch.save's data.pkl (anamnesis-study.md §3,
// hostile-inputs.md checklist 50-60). It builds a value graph and never calls
// anything: REDUCE records the call, and GLOBAL/STACK_GLOBAL accept only the
// allowlist below; any other global is Error{security} naming it. Every
// structure the input can grow (stack, marks, memo, strings, nesting, the
// working set) is capped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mneme/dtype.hpp"
#include "mneme/limits.hpp"

namespace mneme::pickle {

// A persistent id ('storage', torch.<T>Storage, key, location, numel).
struct StorageRef {
  DType dtype = DType::f32;
  std::string key;  // the archive member is <prefix>/data/<key>
  std::uint64_t numel = 0;
};

// One torch._utils._rebuild_tensor_v2 call found in the state dict.
struct TensorRef {
  std::string name;  // state-dict key; nested dicts and lists join with '.'
  StorageRef storage;
  std::uint64_t storage_offset = 0;  // elements
  std::vector<std::uint64_t> shape;
  std::vector<std::uint64_t> stride;  // elements, same rank as shape
};

// The allowlist: torch._utils._rebuild_tensor_v2 / _rebuild_parameter /
// _rebuild_parameter_with_state, torch.<T>Storage classes,
// collections.OrderedDict, torch.nn.parameter.Parameter.
bool allowed_global(std::string_view module, std::string_view name);

// Runs the VM over `pickle` and returns the tensors of the state dict it
// holds, in pickle order. Error{security} for a global outside the allowlist
// or an opcode that instantiates arbitrary objects, Error{limit} for a cap,
// Error{parse} for anything malformed. Of `limits` it heeds max_string_bytes
// (one str or bytes), max_pickle_memory (values, memo and stack), max_nesting
// (containers and open MARKs), max_tensors and max_rank.
std::vector<TensorRef> load_state_dict(std::span<const std::byte> pickle,
                                       const Limits& limits = {});

}  // namespace mneme::pickle
