// The CUDA backend of the upload queue (src/devices/cuda_device.cpp, built
// with -DMNEME_WITH_CUDA=ON): libcudart loaded at run time.
#pragma once

#include <memory>

#include "mneme/upload.hpp"

namespace mneme::devices {

// Error{unsupported} when libcudart cannot be loaded, or no driver or GPU
// (or no GPU `index`) answers.
std::unique_ptr<UploadDevice> open_cuda_device(int index);

}  // namespace mneme::devices
