// NPZ archives (numpy.savez / savez_compressed): a zip of .npy members, each
// one tensor named after its member without ".npy". Stored members are
// described in place; deflated ones as compressed extents whose NPY header is
// read by inflating only the member's first bytes.
#pragma once

#include <cstddef>
#include <vector>

#include "mneme/catalog.hpp"

namespace mneme {

Catalog parse_npz(SourcePtr src, const Limits& limits = {});

// The reference path for every layout a catalog can describe (not only
// NPZ's): reads tensor `index` through its source and returns it as
// contiguous little-endian C-order bytes, inflating, byte-swapping and
// gathering strides as its Layout says. Simple on purpose: it is the oracle
// the streaming pipeline is compared against, and it holds the tensor's
// stored span in memory.
std::vector<std::byte> read_tensor_bytes(const Catalog& catalog, std::size_t index);

}  // namespace mneme
