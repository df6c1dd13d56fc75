// PyTorch torch.save archives (zip format, PyTorch >= 1.6): <prefix>/data.pkl
// holds the state dict as a pickle whose tensors name storages by key; each
// storage is the stored member <prefix>/data/<key>. Tensors are described in
// place (views as strides over the storage span they touch); nothing is
// executed and no weight byte is read.
#pragma once

#include "mneme/catalog.hpp"

namespace mneme {

// Error{unsupported} for legacy (pre-1.6) raw-pickle or tar checkpoints and
// for TorchScript archives; Error{security} for pickle globals outside the
// allowlist.
Catalog parse_pth(SourcePtr src, const Limits& limits = {});

}  // namespace mneme
