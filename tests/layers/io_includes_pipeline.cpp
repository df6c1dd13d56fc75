// Must not compile: io sits below the pipeline, and the build gives io's
// sources no path to the pipeline's folder (CMakeLists.txt, mneme_layer).
#include "pipeline/buffers.hpp"
