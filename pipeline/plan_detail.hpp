// The planner's notes to the run: how each output's stored bytes are read and
// decoded. Internal to the pipeline (mneme/pipeline.hpp keeps it opaque).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "mneme/pipeline.hpp"

namespace mneme {

struct PlanDetail {
  struct Output {
    // Read as one stream of stored bytes (deflated, strided, byte-swapped)
    // rather than as independent extents: its chunks are consecutive output
    // ranges, filled in order from the stream's elements.
    bool stream = false;
    Extent stream_input;            // the stored bytes, read front to back...
    std::uint64_t piece_bytes = 0;  // ... this many at a time
    // Decoded into the whole output tensor held at once (GPTQ/AWQ).
    bool assembled = false;
    // Memory held while the output is in flight, besides input buffers:
    // companions, the assembled tensor, the stream's own memory and its
    // conversion scratch. Counted in the run's budget.
    std::uint64_t hold_bytes = 0;
    std::uint64_t scratch_bytes = 0;  // of which conversion scratch (streams)
    std::uint64_t whole_bytes = 0;    // of which tensors held whole
    std::uint64_t read_bytes = 0;     // largest single read into an input buffer
    std::uint64_t work_chunks = 0;    // Plan::chunks entries of this output
  };
  std::optional<OutType> to;  // PlanOptions::to, for the run's codecs
  std::vector<Output> outputs;
};

}  // namespace mneme
