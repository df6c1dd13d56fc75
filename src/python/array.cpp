#include "src/python/array.hpp"

#include <dlpack/dlpack.h>

#include <pybind11/stl.h>

namespace mneme::python {
namespace {

namespace py = pybind11;

DLDataType dl_type(DType d) {
  const auto bits = static_cast<std::uint8_t>(dtype_size(d) * 8);
  switch (d) {
    case DType::f64:
    case DType::f32:
    case DType::f16:
      return {kDLFloat, bits, 1};
    case DType::bf16:
      return {kDLBfloat, 16, 1};
    case DType::i8:
    case DType::i16:
    case DType::i32:
    case DType::i64:
      return {kDLInt, bits, 1};
    case DType::bool_:
      return {kDLUInt, 8, 1};  // DLPack 0.6 has no bool
    default:
      return {kDLUInt, bits, 1};  // u8..u64, and FP8 as its bytes
  }
}

// Buffer-protocol format of one element.
std::string format_of(DType d) {
  switch (d) {
    case DType::f64: return "d";
    case DType::f32: return "f";
    case DType::f16: return "e";
    case DType::i8: return "b";
    case DType::i16: return "h";
    case DType::i32: return "i";
    case DType::i64: return "q";
    case DType::bool_: return "?";
    case DType::u16:
    case DType::bf16: return "H";  // NumPy has no bfloat16: its bits as uint16
    case DType::u32: return "I";
    case DType::u64: return "Q";
    default: return "B";
  }
}

// What a DLManagedTensor owns: a reference to the bytes, and its shape.
struct Owner {
  std::shared_ptr<std::byte[]> data;
  std::vector<std::int64_t> shape;
};

void delete_managed(DLManagedTensor* m) {
  delete static_cast<Owner*>(m->manager_ctx);
  delete m;
}

py::capsule dlpack_capsule(const Array& a) {
  auto* owner = new Owner{a.tensor.data, {}};
  for (auto d : a.tensor.shape) owner->shape.push_back(static_cast<std::int64_t>(d));
  auto* m = new DLManagedTensor{};
  m->dl_tensor.data = a.tensor.data.get();
  m->dl_tensor.device = {kDLCPU, 0};
  m->dl_tensor.ndim = static_cast<int>(owner->shape.size());
  m->dl_tensor.dtype = dl_type(a.tensor.dtype);
  m->dl_tensor.shape = owner->shape.data();
  m->dl_tensor.strides = nullptr;  // C-contiguous
  m->dl_tensor.byte_offset = 0;
  m->manager_ctx = owner;
  m->deleter = delete_managed;
  // A consumer renames the capsule to "used_dltensor" and calls the deleter
  // itself; an unconsumed capsule frees the tensor here.
  return py::capsule(m, "dltensor", [](PyObject* capsule) {
    if (PyCapsule_IsValid(capsule, "dltensor")) {
      auto* t = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
      if (t && t->deleter) t->deleter(t);
    }
  });
}

}  // namespace

void bind_array(py::module_& m) {
  py::class_<Array>(m, "Array", py::buffer_protocol(), R"(A decoded tensor that owns its memory.

Zero-copy views: ``torch.from_dlpack(a)`` (BF16 arrives as torch.bfloat16),
``numpy.from_dlpack(a)`` (not for BF16) and ``numpy.asarray(a)`` (the buffer
protocol; BF16 as uint16 bits, ``view`` them with a bfloat16 type or shift them
into float32). The memory lives as long as any view of it.)")
      .def_property_readonly("name", [](const Array& a) { return a.tensor.name; })
      .def_property_readonly("dtype",
                             [](const Array& a) { return std::string(dtype_name(a.tensor.dtype)); })
      .def_property_readonly("shape", [](const Array& a) {
        py::tuple t(a.tensor.shape.size());
        for (std::size_t i = 0; i < a.tensor.shape.size(); ++i) t[i] = a.tensor.shape[i];
        return t;
      })
      .def_property_readonly("nbytes", [](const Array& a) { return a.tensor.bytes; })
      .def_property_readonly("data_ptr", [](const Array& a) {
        return reinterpret_cast<std::uintptr_t>(a.tensor.data.get());
      })
      .def("__dlpack__", [](const Array& a, py::object /*stream*/) { return dlpack_capsule(a); },
           py::arg("stream") = py::none())
      .def("__dlpack_device__", [](const Array&) { return py::make_tuple(int(kDLCPU), 0); })
      .def("__repr__",
           [](const Array& a) {
             std::string s = "mneme.Array(" + a.tensor.name + ", " +
                              std::string(dtype_name(a.tensor.dtype)) + ", [";
             for (std::size_t i = 0; i < a.tensor.shape.size(); ++i) {
               s += (i ? ", " : "") + std::to_string(a.tensor.shape[i]);
             }
             return s + "])";
           })
      .def_buffer([](const Array& a) {
        const auto item = static_cast<py::ssize_t>(dtype_size(a.tensor.dtype));
        std::vector<py::ssize_t> shape, strides(a.tensor.shape.size());
        for (auto d : a.tensor.shape) shape.push_back(static_cast<py::ssize_t>(d));
        py::ssize_t stride = item;
        for (std::size_t i = shape.size(); i-- > 0;) {
          strides[i] = stride;
          stride *= shape[i];
        }
        return py::buffer_info(a.tensor.data.get(), item, format_of(a.tensor.dtype),
                               static_cast<py::ssize_t>(shape.size()), shape, strides, false);
      });
}

}  // namespace mneme::python
