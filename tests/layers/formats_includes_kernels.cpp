// Must not compile: formats sees only the GGUF type table of the kernels.
#include "kernels/gguf/gguf_kernels.hpp"
