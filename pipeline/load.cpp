#include "mneme/load.hpp"

#include <boost/asio/io_context.hpp>

namespace mneme {

const MemorySink::Tensor* LoadedModel::find(std::string_view name) const {
  for (const auto& t : tensors) {
    if (t.name == name) {
      return &t;
    }
  }
  return nullptr;
}

LoadedModel load_model(const std::vector<std::string>& sources, const LoadOptions& options) {
  boost::asio::io_context io(1);
  Catalog catalog = open_catalog(sources, io.get_executor(), options.open);
  PlanOptions plan_options;
  plan_options.to = options.to;
  plan_options.select = options.select;
  const Plan plan = make_plan(catalog, plan_options);
  MemorySink sink;
  RunOptions run;
  run.threads = options.threads;
  run.budget_bytes = options.budget_bytes;
  run.cancel = options.cancel;
  LoadedModel model;
  model.stats = run_pipeline(io, catalog, plan, sink, run);
  model.format = catalog.format;
  model.header = std::move(catalog.header);
  model.tensors = std::move(sink.tensors());
  return model;
}

}  // namespace mneme
