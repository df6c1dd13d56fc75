// A tensor as Python sees it: owned bytes with a dtype and a shape, exported
// without a copy through DLPack (__dlpack__, for torch.from_dlpack and
// numpy.from_dlpack) and the buffer protocol (numpy.asarray; BF16 appears
// there as uint16, NumPy having no bfloat16).
#pragma once

#include <pybind11/pybind11.h>

#include "src/python/streaming_load.hpp"

namespace mneme::python {

struct Array {
  Finished tensor;
};

// Array's Python class (mneme._mneme.Array).
void bind_array(pybind11::module_& m);

}  // namespace mneme::python
