// Compiles: the pipeline sits above formats and schemes (the control for the
// probes that must not compile).
#include "kernels/gguf/gguf_types.hpp"
#include "src/formats/tensor_stream.hpp"
#include "src/schemes/codec.hpp"
