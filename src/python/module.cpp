// mneme._mneme: the Python extension (pybind11). Everything here is glue:
// arguments to the library's options, mneme::Error to one exception class
// per kind, the GIL released while the library works and retaken only to
// check for Ctrl-C and to call the caller's progress function. The Python
// API and its documentation are python/mneme/__init__.py.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <algorithm>

#include <boost/asio/io_context.hpp>

#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/limits.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "src/python/array.hpp"
#include "src/python/streaming_load.hpp"

namespace py = pybind11;
using namespace mneme;
using namespace mneme::python;

namespace {

// One Python exception class per ErrorKind, all subclasses of mneme.Error.
std::map<ErrorKind, py::object>& exception_classes() {
  static auto* classes = new std::map<ErrorKind, py::object>();  // lives as long as the module
  return *classes;
}

std::optional<OutType> out_type(const py::object& dtype) {
  if (dtype.is_none()) return std::nullopt;
  const auto name = py::cast<std::string>(dtype);
  if (const auto t = out_type_from_name(name)) return t;
  throw py::value_error("dtype must be 'bf16', 'f16', 'f32' or None, not '" + name + "'");
}

std::vector<std::string> source_list(const py::object& sources) {
  if (py::isinstance<py::str>(sources) || py::hasattr(sources, "__fspath__")) {
    return {py::str(sources)};
  }
  std::vector<std::string> out;
  for (const auto& s : sources) out.push_back(py::str(s));
  if (out.empty()) throw py::value_error("no source given");
  return out;
}

// Ctrl-C while the library works: the GIL is retaken for the check only.
void check_signals() {
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

// A Python object that C++ may copy and drop on any thread: the copies share
// one reference, and the last one lets go of it with the GIL held.
std::shared_ptr<py::object> shared(const py::object& o) {
  return {new py::object(o), [](py::object* p) {
            py::gil_scoped_acquire gil;
            delete p;
          }};
}

// io=: how local files are read, as the CLI's --io.
FileIo file_io(const py::object& io) {
  if (io.is_none()) return FileIo::automatic;
  const std::string mode = py::str(io);
  if (mode == "auto") return FileIo::automatic;
  if (mode == "uring") return FileIo::uring;
  if (mode == "pread") return FileIo::pread;
  if (mode == "mmap") return FileIo::mmap;
  throw py::value_error("io must be 'auto', 'uring', 'pread' or 'mmap', not '" + mode + "'");
}

// limits=: {"tensors": 2_000_000, "header_bytes": 1 << 28, ...}, the CLI's
// --max-NAME caps by name (underscores for dashes); the rest keep their defaults.
Limits limits_from(const py::object& limits) {
  Limits l;
  if (limits.is_none()) return l;
  for (const auto& [key, value] : py::cast<py::dict>(limits)) {
    std::string name = py::str(key);
    std::replace(name.begin(), name.end(), '_', '-');
    const LimitField* f = find_limit(name);
    if (!f)
      throw py::value_error("limits: no cap named '" + std::string(py::str(key)) + "'");
    const auto v = py::cast<std::uint64_t>(value);
    if (v < f->floor) {
      throw py::value_error("limits: " + std::string(py::str(key)) + " must be at least " +
                            std::to_string(f->floor));
    }
    l.*f->field = v;
  }
  return l;
}

LoadSettings settings(const py::object& dtype, const py::object& threads, const py::object& budget,
                      const py::object& tensors, const py::object& progress,
                      const py::object& config, const py::object& io, const py::object& limits) {
  LoadSettings s;
  s.open.open.file_io = file_io(io);
  s.open.limits = limits_from(limits);
  s.to = out_type(dtype);
  if (!threads.is_none()) s.threads = py::cast<unsigned>(threads);
  if (!budget.is_none()) s.budget = py::cast<std::uint64_t>(budget);
  if (!config.is_none()) s.open.config_path = py::str(config);
  if (!tensors.is_none()) {
    if (PyCallable_Check(tensors.ptr())) {
      // Planning runs on the caller's thread with the GIL held.
      s.select = [f = shared(tensors)](const TensorInfo& t) { return py::cast<bool>((*f)(t.name)); };
    } else {
      std::vector<std::string> names;
      for (const auto& n : tensors) names.push_back(py::str(n));
      s.select = select_names(std::move(names));
    }
  }
  if (!progress.is_none()) {
    s.progress = [f = shared(progress)](std::uint64_t done, std::uint64_t total) {
      py::gil_scoped_acquire gil;  // called from the run's io thread
      (*f)(done, total);
    };
  }
  return s;
}

// A load in progress (safe_open's handle).
class Handle {
 public:
  Handle(std::vector<std::string> sources, LoadSettings s) {
    load_ = std::make_unique<StreamingLoad>(sources, std::move(s));
  }
  // Stops the run when waiting ends in an exception (Ctrl-C, an error).
  template <class F>
  auto guarded(F&& f) {
    try {
      return f();
    } catch (...) {
      load_->cancel();
      throw;
    }
  }

  py::list keys() const {
    py::list k;
    for (const auto& o : load().plan().outputs) k.append(o.name);
    return k;
  }
  py::dict metadata() const {
    py::dict d;
    for (const auto& [k, v] : load().catalog().header.metadata) d[py::str(k)] = v;
    return d;
  }
  Array get(const std::string& name) {
    StreamingLoad& l = load();
    std::optional<Finished> f;
    {
      py::gil_scoped_release release;
      f = guarded([&] { return l.get(name, check_signals); });
    }
    return Array{std::move(*f)};
  }
  std::optional<Array> next() {
    StreamingLoad& l = load();
    std::optional<Finished> f;
    {
      py::gil_scoped_release release;
      f = guarded([&] { return l.next(check_signals); });
    }
    if (!f) return std::nullopt;
    return Array{std::move(*f)};
  }
  void close() {
    if (!load_) return;
    py::gil_scoped_release release;
    load_.reset();  // cancels and joins a run still going
  }

 private:
  StreamingLoad& load() const {
    if (!load_) throw py::value_error("this safe_open handle is closed");
    return *load_;
  }
  std::unique_ptr<StreamingLoad> load_;
};

py::dict inspect(const py::object& sources, const py::object& config, const py::object& limits) {
  CatalogOptions o;
  o.lenient = true;
  o.limits = limits_from(limits);
  if (!config.is_none()) o.config_path = py::str(config);
  const auto specs = source_list(sources);
  Catalog cat;
  {
    py::gil_scoped_release release;
    boost::asio::io_context io(1);
    cat = open_catalog(specs, io.get_executor(), o);
  }
  py::dict info;
  info["format"] = std::string(format_name(cat.format));
  info["version"] = cat.header.version;
  py::dict meta;
  for (const auto& [k, v] : cat.header.metadata) meta[py::str(k)] = v;
  info["metadata"] = meta;
  py::list tensors;
  for (const auto& t : cat.tensors) {
    py::dict d;
    d["name"] = t.name;
    d["dtype"] = std::string(dtype_name(t.dtype));
    d["type"] = tensor_type_name(t);
    d["shape"] = t.shape;
    d["scheme"] = scheme_description(t);
    d["stored_bytes"] = t.data.length;
    tensors.append(d);
  }
  info["tensors"] = tensors;
  py::list warnings;
  for (const auto& w : cat.warnings) warnings.append(py::make_tuple(w.tensor, w.message));
  info["warnings"] = warnings;
  return info;
}

void remember(const py::object& sources, const std::string& out, const std::string& format,
              const LoadSettings& s, bool overwrite) {
  const auto specs = source_list(sources);
  const FileFormat f = format == "gguf" ? FileFormat::gguf : FileFormat::safetensors;
  std::atomic<bool> cancel{false}, finished{false};
  std::exception_ptr error, interrupted;
  {
    py::gil_scoped_release release;
    std::thread run([&] {
      try {
        boost::asio::io_context io(1);
        const Catalog cat = open_catalog(specs, io.get_executor(), s.open);
        PlanOptions po;
        po.to = s.to;
        po.select = s.select;
        const Plan plan = make_plan(cat, po);
        FileSink sink(out, f, overwrite);
        RunOptions ro;
        ro.threads = s.threads;
        ro.budget_bytes = s.budget;
        ro.cancel = &cancel;
        ro.progress = s.progress;
        run_pipeline(io, cat, plan, sink, ro);
      } catch (...) {
        error = std::current_exception();
      }
      finished.store(true);
    });
    // Ctrl-C cancels the run, which removes its temporary file.
    while (!finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      try {
        check_signals();
      } catch (...) {
        interrupted = std::current_exception();
        cancel.store(true);
        break;
      }
    }
    run.join();
  }
  if (interrupted) std::rethrow_exception(interrupted);
  if (error) std::rethrow_exception(error);
}

}  // namespace

PYBIND11_MODULE(_mneme, m) {
  m.doc() = "mneme's C++ core; use the mneme package.";
  bind_array(m);

  auto base = py::reinterpret_steal<py::object>(
      PyErr_NewExceptionWithDoc("mneme.Error", "Every error mneme raises.", PyExc_Exception, nullptr));
  m.attr("Error") = base;
  const std::pair<ErrorKind, const char*> kinds[] = {
      {ErrorKind::parse, "ParseError"},       {ErrorKind::unsupported, "UnsupportedError"},
      {ErrorKind::limit, "LimitError"},       {ErrorKind::security, "SecurityError"},
      {ErrorKind::io, "IOError"},             {ErrorKind::network, "NetworkError"},
      {ErrorKind::cancelled, "CancelledError"}};
  for (const auto& [kind, name] : kinds) {
    PyObject* parent = kind == ErrorKind::network ? exception_classes()[ErrorKind::io].ptr()
                                                  : base.ptr();
    auto cls = py::reinterpret_steal<py::object>(PyErr_NewException(
        (std::string("mneme.") + name).c_str(), parent ? parent : base.ptr(), nullptr));
    m.attr(name) = cls;
    exception_classes()[kind] = cls;
  }
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      PyErr_SetString(exception_classes()[e.kind()].ptr(), e.what());
    }
  });

  py::class_<Handle>(m, "Handle")
      .def("keys", &Handle::keys)
      .def("metadata", &Handle::metadata)
      .def("get_tensor", &Handle::get, py::arg("name"))
      .def("next", &Handle::next)
      .def("close", &Handle::close);

  m.def(
      "open",
      [](const py::object& sources, const py::object& dtype, const py::object& threads,
         const py::object& budget, const py::object& tensors, const py::object& progress,
         const py::object& config, const py::object& io, const py::object& limits) {
        auto specs = source_list(sources);
        auto s = settings(dtype, threads, budget, tensors, progress, config, io, limits);
        return std::make_unique<Handle>(std::move(specs), std::move(s));
      },
      py::arg("sources"), py::arg("dtype"), py::arg("threads"), py::arg("budget"),
      py::arg("tensors"), py::arg("progress"), py::arg("config"), py::arg("io"), py::arg("limits"));
  m.def("inspect", &inspect, py::arg("sources"), py::arg("config") = py::none(),
        py::arg("limits") = py::none());
  m.def(
      "remember",
      [](const py::object& sources, const std::string& out, const std::string& format,
         const py::object& dtype, const py::object& threads, const py::object& budget,
         const py::object& tensors, const py::object& progress, const py::object& config,
         const py::object& io, const py::object& limits, bool overwrite) {
        remember(sources, out, format,
                 settings(dtype, threads, budget, tensors, progress, config, io, limits),
                 overwrite);
      },
      py::arg("sources"), py::arg("out"), py::arg("format"), py::arg("dtype"), py::arg("threads"),
      py::arg("budget"), py::arg("tensors"), py::arg("progress"), py::arg("config"), py::arg("io"),
      py::arg("limits"), py::arg("overwrite"));
}
