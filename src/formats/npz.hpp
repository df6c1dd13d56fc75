// NPZ archives (numpy.savez / savez_compressed): a zip of .npy members, each
// one tensor named after its member without ".npy". Stored members are
// described in place; deflated ones as compressed extents whose NPY header is
// read by inflating only the member's first bytes.
#pragma once

#include "mneme/catalog.hpp"

namespace mneme {

Catalog parse_npz(SourcePtr src, const Limits& limits = {});

}  // namespace mneme
