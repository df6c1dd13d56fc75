// open_device: a device spec ("host", "cuda", "cuda:N") to its backend.
#include <charconv>

#include "mneme/error.hpp"
#include "mneme/upload.hpp"
#include "src/devices/cuda_device.hpp"

namespace mneme {

std::unique_ptr<UploadDevice> open_device(std::string_view spec) {
  if (spec == "host") {
    return std::make_unique<HostDevice>();
  }
  if (spec == "cuda" || spec.starts_with("cuda:")) {
    int index = 0;
    if (spec.size() > 4) {
      const std::string_view digits = spec.substr(5);
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
      if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty() ||
          index < 0) {
        fail(ErrorKind::unsupported, "device \"" + printable(spec) + "\": expected cuda:N");
      }
    }
#ifdef MNEME_WITH_CUDA
    return devices::open_cuda_device(index);
#else
    fail(ErrorKind::unsupported, "device \"" + printable(spec) +
                                     "\": this mneme was built without CUDA "
                                     "(configure with -DMNEME_WITH_CUDA=ON)");
#endif
  }
  fail(ErrorKind::unsupported, "device \"" + printable(spec) + "\": expected host, cuda or cuda:N");
}

}  // namespace mneme
