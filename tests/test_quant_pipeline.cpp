// GPTQ, AWQ and BitsAndBytes checkpoints through detection and the pipeline:
// every gptq/, awq/ and bnb/ golden wrapped in a safetensors model (one file,
// and two shards with every companion in the other shard) decodes to the
// golden bit for bit, in nn.Linear's [out, in] orientation for GPTQ/AWQ, also
// through a file sink. Inconsistent checkpoints give typed errors.
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include <boost/asio/io_context.hpp>

#include "kernels/float_bits.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/pipeline.hpp"
#include "mneme/sinks.hpp"
#include "src/formats/safetensors_writer.hpp"
#include "src/schemes/detect.hpp"
#include "remote_support.hpp"
#include "test_support.hpp"
#include "upload_support.hpp"

using namespace mneme;

namespace {

using Bytes = std::vector<std::uint8_t>;

struct Part {
  std::string name;
  DType dtype;
  std::vector<std::uint64_t> shape;
  Bytes bytes;
  int shard = 0;  // 0: with the weights; 1: the companions' shard
};

// A quantized weight in safetensors form and what it must decode to.
struct Model {
  std::string label;
  std::vector<Part> parts;
  std::string config;  // config.json, or empty
  std::string weight;  // decoded tensor name
  std::vector<std::uint64_t> shape;
  Bytes f32, bf16;         // goldens in output order
  bool zero_sign = false;  // BitsAndBytes: +0 and -0 compare equal
  std::string scheme;      // what inspect must say, as a prefix
};

struct Reader {
  const Bytes& b;
  std::size_t at = 0;
  std::uint32_t u32() {
    std::uint32_t v;
    REQUIRE(at + 4 <= b.size());
    std::memcpy(&v, b.data() + at, 4);
    at += 4;
    return v;
  }
  Bytes take(std::size_t n) {
    REQUIRE(at + n <= b.size());
    Bytes out(b.begin() + static_cast<std::ptrdiff_t>(at),
              b.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    return out;
  }
};

DType scale_dtype(std::uint32_t id) {
  return id == 0 ? DType::f32 : id == 1 ? DType::bf16 : DType::f16;
}

// [rows, cols] row-major -> [cols, rows], elements of `esz` bytes.
Bytes transpose(const Bytes& in, std::size_t rows, std::size_t cols, std::size_t esz) {
  Bytes out(in.size());
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c)
      std::memcpy(&out[(c * rows + r) * esz], &in[(r * cols + c) * esz], esz);
  }
  return out;
}

Bytes text_bytes(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

Model gptq_model(const std::filesystem::path& path) {
  const Bytes f = test::read_file(path);
  Reader r{f};
  REQUIRE(std::memcmp(f.data(), "AMNQ", 4) == 0);
  r.at = 4;
  REQUIRE(r.u32() == 2);
  const std::uint32_t bits = r.u32(), group = r.u32(), in = r.u32(), out = r.u32(), sdt = r.u32(),
                      has_g = r.u32();
  const std::uint32_t qw = r.u32(), sl = r.u32(), zl = r.u32(), gl = r.u32(), bl = r.u32(),
                      fl = r.u32();
  const std::uint32_t pack = 32 / bits, groups = (in + group - 1) / group;
  Model m;
  m.label = "gptq " + path.stem().string();
  m.parts.push_back({"layer.qweight", DType::i32, {in / pack, out}, r.take(qw), 0});
  m.parts.push_back({"layer.scales", scale_dtype(sdt), {groups, out}, r.take(sl), 1});
  m.parts.push_back({"layer.qzeros", DType::i32, {groups, out / pack}, r.take(zl), 1});
  if (has_g)
    m.parts.push_back({"layer.g_idx", DType::i32, {in}, r.take(gl), 1});
  else
    r.take(gl);
  m.config = R"({"quantization_config":{"quant_method":"gptq","bits":)" + std::to_string(bits) +
             R"(,"group_size":)" + std::to_string(group) + R"(,"desc_act":)" +
             (has_g ? "true" : "false") + R"(,"sym":true}})";
  m.weight = "layer.weight";
  m.shape = {out, in};
  m.bf16 = transpose(r.take(bl), in, out, 2);
  m.f32 = transpose(r.take(fl), in, out, 4);
  m.scheme = "gptq " + std::to_string(bits) + "-bit";
  return m;
}

Model awq_model(const std::filesystem::path& path) {
  const Bytes f = test::read_file(path);
  Reader r{f};
  REQUIRE(std::memcmp(f.data(), "AMNA", 4) == 0);
  r.at = 4;
  REQUIRE(r.u32() == 2);
  const std::uint32_t bits = r.u32(), group = r.u32(), in = r.u32(), out = r.u32(), sdt = r.u32();
  const std::uint32_t qw = r.u32(), sl = r.u32(), zl = r.u32(), bl = r.u32(), fl = r.u32();
  REQUIRE(bits == 4);
  const std::uint32_t groups = in / group;
  Model m;
  m.label = "awq " + path.stem().string();
  m.parts.push_back({"layer.qweight", DType::i32, {in, out / 8}, r.take(qw), 0});
  m.parts.push_back({"layer.scales", scale_dtype(sdt), {groups, out}, r.take(sl), 1});
  m.parts.push_back({"layer.qzeros", DType::i32, {groups, out / 8}, r.take(zl), 1});
  m.config = R"({"quantization_config":{"quant_method":"awq","bits":4,"group_size":)" +
             std::to_string(group) + R"(,"version":"gemm","zero_point":true}})";
  m.weight = "layer.weight";
  m.shape = {out, in};
  m.bf16 = transpose(r.take(bl), in, out, 2);
  m.f32 = transpose(r.take(fl), in, out, 4);
  m.scheme = "awq 4-bit";
  return m;
}

Model bnb_model(const std::filesystem::path& path) {
  const Bytes f = test::read_file(path);
  Reader r{f};
  REQUIRE(std::memcmp(f.data(), "AMNB", 4) == 0);
  r.at = 4;
  REQUIRE(r.u32() == 2);
  const std::uint32_t format = r.u32();
  Model m;
  m.label = "bnb " + path.stem().string();
  m.weight = "layer.weight";
  m.zero_sign = true;
  if (format == 1) {
    const std::uint32_t out = r.u32(), in = r.u32(), wl = r.u32(), sl = r.u32(), bl = r.u32(),
                        fl = r.u32();
    m.parts.push_back({"layer.weight", DType::i8, {out, in}, r.take(wl), 0});
    m.parts.push_back({"layer.SCB", DType::f32, {out}, r.take(sl), 1});
    m.config = R"({"quantization_config":{"quant_method":"bitsandbytes","load_in_8bit":true}})";
    m.shape = {out, in};
    m.bf16 = r.take(bl);
    m.f32 = r.take(fl);
    m.scheme = "bnb int8";
    return m;
  }
  REQUIRE((format == 0 || format == 2));
  const std::uint32_t total = r.u32(), block = r.u32(), wl = r.u32(), al = r.u32(), ql = r.u32(),
                      nal = r.u32(), nql = r.u32(), bl = r.u32(), fl = r.u32();
  float offset;
  std::memcpy(&offset, f.data() + 48, 4);
  r.at = 52;
  const bool fp4 = path.stem().string().find("fp4") != std::string::npos;
  const std::string type = fp4 ? "fp4" : "nf4";
  const std::uint32_t blocks = (total + block - 1) / block;
  m.parts.push_back({"layer.weight", DType::u8, {wl, 1}, r.take(wl), 0});
  m.parts.push_back(
      {"layer.weight.absmax", format == 2 ? DType::u8 : DType::f32, {blocks}, r.take(al), 1});
  m.parts.push_back({"layer.weight.quant_map", DType::f32, {16}, r.take(ql), 1});
  // A square-ish output shape, as quant_state records it.
  std::uint64_t rows = 1;
  for (std::uint64_t d = 1; d * d <= total; ++d) {
    if (total % d == 0) rows = d;
  }
  std::string state = R"({"quant_type":")" + type + R"(","blocksize":)" + std::to_string(block) +
                      R"(,"shape":[)" + std::to_string(rows) + "," + std::to_string(total / rows) +
                      R"(],"dtype":"bfloat16")";
  if (format == 2) {
    const std::uint32_t nested = nal / 4;
    char off[64];
    std::snprintf(off, sizeof off, "%.9g", static_cast<double>(offset));
    state += R"(,"nested_blocksize":)" + std::to_string((blocks + nested - 1) / nested) +
             R"(,"nested_offset":)" + off + R"(,"nested_dtype":"float32")";
    m.parts.push_back({"layer.weight.nested_absmax", DType::f32, {nested}, r.take(nal), 1});
    m.parts.push_back({"layer.weight.nested_quant_map", DType::f32, {256}, r.take(nql), 1});
  }
  state += "}";
  const Bytes sb = text_bytes(state);
  m.parts.push_back(
      {"layer.weight.quant_state.bitsandbytes__" + type, DType::u8, {sb.size()}, sb, 1});
  m.config =
      R"({"quantization_config":{"quant_method":"bitsandbytes","load_in_4bit":true,"bnb_4bit_quant_type":")" +
      type + R"(","bnb_4bit_use_double_quant":)" + (format == 2 ? "true" : "false") + "}}";
  m.shape = {rows, total / rows};
  m.bf16 = r.take(bl);
  m.f32 = r.take(fl);
  m.scheme = "bnb " + type;
  return m;
}

void write_st(const std::filesystem::path& path, const std::vector<const Part*>& parts,
              const std::vector<MetadataEntry>& metadata = {}) {
  std::vector<TensorEntry> entries;
  for (const Part* p : parts) entries.push_back({p->name, p->dtype, p->shape, p->bytes.size()});
  auto w = create_safetensors_file(path.string(), entries, metadata);
  for (std::size_t i = 0; i < parts.size(); ++i)
    w->write(i, 0, std::as_bytes(std::span(parts[i]->bytes)));
  w->commit();
}

const Part kNorm{"norm.weight", DType::bf16, {8}, Bytes(16, 0x3F), 0};

// Writes `m` into a fresh directory: one file, or two shards and an index.
std::filesystem::path write_model(const Model& m, bool sharded, const std::string& tag,
                                  bool with_config = true) {
  const auto dir = test::scratch_dir("quant-" + tag);
  std::vector<const Part*> a{&kNorm}, b;
  for (const auto& p : m.parts) (sharded && p.shard == 1 ? b : a).push_back(&p);
  if (!sharded) {
    write_st(dir / "model.safetensors", a);
  } else {
    write_st(dir / "model-00001-of-00002.safetensors", a);
    write_st(dir / "model-00002-of-00002.safetensors", b);
    std::ofstream idx(dir / "model.safetensors.index.json");
    idx << R"({"metadata":{},"weight_map":{)";
    bool first = true;
    for (const auto* list : {&a, &b}) {
      for (const Part* p : *list) {
        idx << (first ? "" : ",") << '"' << p->name << "\":\"model-0000" << (list == &a ? 1 : 2)
            << "-of-00002.safetensors\"";
        first = false;
      }
    }
    idx << "}}";
  }
  if (with_config && !m.config.empty()) std::ofstream(dir / "config.json") << m.config;
  return dir;
}

PlanOptions small_chunks(OutType to) {
  PlanOptions po;
  po.to = to;
  po.max_chunk_bytes = 4096;  // several chunks per weight
  return po;
}

const MemorySink::Tensor& find(MemorySink& sink, const std::string& name) {
  for (const auto& t : sink.tensors()) {
    if (t.name == name) return t;
  }
  FAIL("no output tensor " << name);
  throw std::logic_error("unreachable");
}

// Small next to a model, but the budget covers a GPTQ/AWQ output held whole
// (the goldens' largest is 256 KiB) besides the input buffers.
constexpr std::uint64_t kBudget = 512 << 10;

MemorySink decode(const std::filesystem::path& model, OutType to) {
  boost::asio::io_context io;
  const Catalog cat = open_catalog({model.string()}, io.get_executor());
  const Plan plan = make_plan(cat, small_chunks(to));
  MemorySink sink;
  run_pipeline(io, cat, plan, sink,
               RunOptions{.threads = 2, .budget_bytes = kBudget, .progress = {}});
  return sink;
}

// Elements that differ, in `esz`-byte units; with zero_sign, +0 == -0.
std::size_t mismatches(std::span<const std::byte> got, const Bytes& want, std::size_t esz,
                       bool zero_sign) {
  REQUIRE(got.size() == want.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < want.size(); i += esz) {
    std::uint32_t g = 0, w = 0;
    std::memcpy(&g, got.data() + i, esz);
    std::memcpy(&w, want.data() + i, esz);
    if (g == w) continue;
    const std::uint32_t sign = esz == 4 ? 0x80000000u : 0x8000u;
    if (zero_sign && ((g | w) & ~sign) == 0) continue;
    ++bad;
  }
  return bad;
}

std::vector<Model> all_models() {
  std::vector<Model> models;
  for (const auto& p : test::fixture_files("gptq")) models.push_back(gptq_model(p));
  for (const auto& p : test::fixture_files("awq")) models.push_back(awq_model(p));
  for (const auto& p : test::fixture_files("bnb")) models.push_back(bnb_model(p));
  return models;
}

}  // namespace

TEST_CASE("every GPTQ, AWQ and BitsAndBytes golden loads over HTTP as it loads from disk",
          "[quant][http][net]") {
  const auto base = test::server_or_skip();
  if (!base) return;
  const auto models = all_models();
  CHECK(models.size() >= 7);
  for (const auto& m : models) {
    INFO(m.label);
    // Two shards, their index and config.json, all found beside the index URL.
    const auto dir = write_model(m, true, "http");
    const auto index = dir / "model.safetensors.index.json";
    CHECK(test::load_bytes({index.string()}, OutType::bf16) ==
          test::load_bytes({test::url_of(*base, index)}, OutType::bf16));
  }
}

TEST_CASE("every GPTQ, AWQ and BitsAndBytes golden arrives through the upload ring as in memory",
          "[quant][upload][fixtures]") {
  const auto models = all_models();
  CHECK(models.size() >= 7);
  for (const auto& m : models) {
    INFO(m.label);
    const auto dir = write_model(m, true, "upload");
    test::check_upload_matches({(dir / "model.safetensors.index.json").string()}, OutType::bf16);
  }
}

TEST_CASE("every GPTQ, AWQ and BitsAndBytes golden decodes through detection and the pipeline",
          "[quant][pipeline][fixtures]") {
  const auto models = all_models();
  CHECK(models.size() >= 7);
  for (const auto& m : models) {
    DYNAMIC_SECTION(m.label) {
      const auto sharded = write_model(m, true, "sharded");
      {
        boost::asio::io_context io;
        const Catalog cat = open_catalog({sharded.string()}, io.get_executor());
        REQUIRE(cat.tensors.size() == 2);  // the weight and the norm: companions are not outputs
        const auto& t = cat.tensors[0].name == m.weight ? cat.tensors[0] : cat.tensors[1];
        REQUIRE(t.name == m.weight);
        CHECK(t.shape == m.shape);
        CHECK(scheme_description(t).rfind(m.scheme, 0) == 0);
      }
      auto f32 = decode(sharded, OutType::f32);
      REQUIRE(f32.tensors().size() == 2);
      const auto& w32 = find(f32, m.weight);
      CHECK(w32.shape == m.shape);
      CHECK(mismatches(w32.view(), m.f32, 4, m.zero_sign) == 0);

      auto bf16 = decode(sharded, OutType::bf16);
      CHECK(mismatches(find(bf16, m.weight).view(), m.bf16, 2, m.zero_sign) == 0);

      // F16 has no golden: our F32 rounded to nearest even.
      auto f16 = decode(sharded, OutType::f16);
      Bytes want16(w32.bytes / 2);
      for (std::size_t i = 0; i < w32.bytes / 4; ++i) {
        float x;
        std::memcpy(&x, w32.data.get() + 4 * i, 4);
        const std::uint16_t h = kernels::f16_from_f32(x);
        std::memcpy(&want16[2 * i], &h, 2);
      }
      CHECK(mismatches(find(f16, m.weight).view(), want16, 2, false) == 0);

      // One file, no config.json: the same bytes (parameters from the shapes).
      const auto single = write_model(m, false, "single", false);
      auto one = decode(single, OutType::f32);
      CHECK(mismatches(find(one, m.weight).view(),
                       Bytes(reinterpret_cast<const std::uint8_t*>(w32.data.get()),
                             reinterpret_cast<const std::uint8_t*>(w32.data.get()) + w32.bytes),
                       4, false) == 0);

      // Through a file sink (the assembled weight goes out as one chunk).
      const auto out = test::scratch_dir("quant-out") / "out.safetensors";
      {
        boost::asio::io_context io;
        const Catalog cat = open_catalog({sharded.string()}, io.get_executor());
        const Plan plan = make_plan(cat, small_chunks(OutType::bf16));
        FileSink sink(out.string(), FileFormat::safetensors);
        run_pipeline(io, cat, plan, sink,
                     RunOptions{.threads = 2, .budget_bytes = kBudget, .progress = {}});
      }
      auto back = decode(out, OutType::bf16);
      CHECK(mismatches(find(back, m.weight).view(), m.bf16, 2, m.zero_sign) == 0);
      CHECK(find(back, m.weight).shape == m.shape);
    }
  }
}

namespace {

// A small, valid GPTQ layer (in 64, out 32, 4-bit, group 32) to break in one place.
struct Synthetic {
  std::vector<Part> parts;
  std::string config;
  std::vector<MetadataEntry> metadata;
};

Bytes filled(std::size_t n, std::uint8_t v) {
  return Bytes(n, v);
}
Bytes f16_ones(std::size_t n) {
  Bytes b(2 * n);
  for (std::size_t i = 0; i < n; ++i) b[2 * i + 1] = 0x3C;
  return b;
}
Bytes i32s(const std::vector<std::int32_t>& v) {
  Bytes b(4 * v.size());
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}
std::vector<std::int32_t> seq_groups(std::size_t in, std::size_t group) {
  std::vector<std::int32_t> g(in);
  for (std::size_t i = 0; i < in; ++i) g[i] = static_cast<std::int32_t>(i / group);
  return g;
}

Synthetic gptq_layer() {
  return {{{"l.qweight", DType::i32, {8, 32}, filled(1024, 0x11)},
           {"l.scales", DType::f16, {2, 32}, f16_ones(64)},
           {"l.qzeros", DType::i32, {2, 4}, filled(32, 0x77)},
           {"l.g_idx", DType::i32, {64}, i32s(seq_groups(64, 32))}},
          "",
          {}};
}
Synthetic awq_layer() {
  return {{{"l.qweight", DType::i32, {64, 4}, filled(1024, 0x11)},
           {"l.scales", DType::f16, {2, 32}, f16_ones(64)},
           {"l.qzeros", DType::i32, {2, 4}, filled(32, 0x77)}},
          "",
          {}};
}
Synthetic nf4_layer(const std::string& state) {
  Bytes qmap(64, 0);
  const Bytes sb = text_bytes(state);
  return {{{"l.weight", DType::u8, {32, 1}, filled(32, 0x5A)},
           {"l.weight.absmax", DType::f32, {1}, filled(4, 0)},
           {"l.weight.quant_map", DType::f32, {16}, qmap},
           {"l.weight.quant_state.bitsandbytes__nf4", DType::u8, {sb.size()}, sb}},
          "",
          {}};
}
const char* kNf4State = R"({"quant_type":"nf4","blocksize":64,"shape":[8,8],"dtype":"bfloat16"})";
Synthetic int8_layer() {
  return {
      {{"l.weight", DType::i8, {4, 16}, filled(64, 3)}, {"l.SCB", DType::f32, {4}, filled(16, 0)}},
      "",
      {}};
}

template <class F>
Synthetic edit(Synthetic s, F&& f) {
  f(s);
  return s;
}
void drop(Synthetic& s, const std::string& name) {
  std::erase_if(s.parts, [&](const Part& p) { return p.name == name; });
}
Part& part(Synthetic& s, const std::string& name) {
  for (auto& p : s.parts) {
    if (p.name == name) return p;
  }
  throw std::logic_error("no part " + name);
}

// Gives part `name` a new shape and its bytes a new size (zero-filled), or new bytes.
void reshape(Synthetic& s, const std::string& name, std::vector<std::uint64_t> shape,
             std::size_t bytes) {
  auto& p = part(s, name);
  p.shape = std::move(shape);
  p.bytes.resize(bytes);
}
void reshape(Synthetic& s, const std::string& name, std::vector<std::uint64_t> shape, Bytes bytes) {
  auto& p = part(s, name);
  p.shape = std::move(shape);
  p.bytes = std::move(bytes);
}

}  // namespace

TEST_CASE("inconsistent GPTQ, AWQ and BitsAndBytes checkpoints give typed errors",
          "[quant][hostile]") {
  struct Case {
    const char* name;
    Synthetic model;
    ErrorKind kind;
  };
  const auto cfg = [](Synthetic s, const std::string& c) {
    s.config = c;
    return s;
  };
  const std::vector<Case> cases{
      {"GPTQ missing scales", edit(gptq_layer(), [](auto& s) { drop(s, "l.scales"); }),
       ErrorKind::parse},
      {"GPTQ missing qzeros", edit(gptq_layer(), [](auto& s) { drop(s, "l.qzeros"); }),
       ErrorKind::parse},
      {"GPTQ qweight stored as F32",
       edit(gptq_layer(), [](auto& s) { part(s, "l.qweight").dtype = DType::f32; }),
       ErrorKind::parse},
      {"GPTQ integer scales",
       edit(gptq_layer(), [](auto& s) { part(s, "l.scales").dtype = DType::i16; }),
       ErrorKind::parse},
      {"GPTQ bits 3 in config.json",
       cfg(gptq_layer(), R"({"quantization_config":{"quant_method":"gptq","bits":3}})"),
       ErrorKind::unsupported},
      {"GPTQ config bits 8 on 4-bit packing",
       cfg(gptq_layer(), R"({"quantization_config":{"bits":8}})"), ErrorKind::parse},
      {"GPTQ group size not dividing",
       cfg(gptq_layer(), R"({"quantization_config":{"group_size":24}})"), ErrorKind::parse},
      {"GPTQ g_idx out of range",
       edit(gptq_layer(),
            [](auto& s) { part(s, "l.g_idx").bytes = i32s(std::vector<std::int32_t>(64, 5)); }),
       ErrorKind::parse},
      {"GPTQ negative g_idx",
       edit(gptq_layer(),
            [](auto& s) { part(s, "l.g_idx").bytes = i32s(std::vector<std::int32_t>(64, -1)); }),
       ErrorKind::parse},
      {"GPTQ g_idx of the wrong length",
       edit(gptq_layer(), [](auto& s) { reshape(s, "l.g_idx", {32}, 128); }), ErrorKind::parse},
      {"GPTQ desc_act without g_idx",
       cfg(edit(gptq_layer(), [](auto& s) { drop(s, "l.g_idx"); }),
           R"({"quantization_config":{"desc_act":true}})"),
       ErrorKind::parse},
      {"GPTQ unknown checkpoint_format",
       cfg(gptq_layer(), R"({"quantization_config":{"checkpoint_format":"marlin"}})"),
       ErrorKind::unsupported},
      {"GPTQ tensors, config says awq",
       cfg(gptq_layer(), R"({"quantization_config":{"quant_method":"awq"}})"), ErrorKind::parse},
      {"config says gptq, nothing is quantized",
       cfg(Synthetic{{{"x", DType::f16, {4}, filled(8, 0)}}, "", {}},
           R"({"quantization_config":{"quant_method":"gptq"}})"),
       ErrorKind::parse},
      {"GPTQ qzeros groups differ from scales",
       edit(gptq_layer(),
            [](auto& s) {
              reshape(s, "l.qzeros", {3, 4}, 48);
            }),
       ErrorKind::parse},
      {"qweight and scales fit no packing",
       edit(gptq_layer(),
            [](auto& s) {
              auto& q = part(s, "l.qweight");
              q.shape = {16, 16};
            }),
       ErrorKind::parse},
      {"GPTQ 2-bit packing",
       edit(gptq_layer(),
            [](auto& s) {
              reshape(s, "l.qzeros", {2, 2}, 16);
            }),
       ErrorKind::unsupported},
      {"GPTQ group size unknowable",
       edit(edit(gptq_layer(), [](auto& s) { drop(s, "l.g_idx"); }),
            [](auto& s) {
              reshape(s, "l.scales", {3, 32}, f16_ones(96));
              reshape(s, "l.qzeros", {3, 4}, 48);
            }),
       ErrorKind::parse},
      {"__metadata__ gptq_bits not a number",
       edit(gptq_layer(),
            [](auto& s) {
              s.metadata = {{"gptq_bits", "four"}};
            }),
       ErrorKind::parse},
      {"__metadata__ and config.json disagree",
       cfg(edit(gptq_layer(),
                [](auto& s) {
                  s.metadata = {{"gptq_bits", "4"}};
                }),
           R"({"quantization_config":{"bits":8}})"),
       ErrorKind::parse},
      {"decoded name collides with a tensor",
       edit(gptq_layer(),
            [](auto& s) {
              s.parts.push_back({"l.weight", DType::f16, {4}, filled(8, 0)});
            }),
       ErrorKind::parse},
      {"AWQ kernel version gemv",
       cfg(awq_layer(), R"({"quantization_config":{"quant_method":"awq","version":"GEMV"}})"),
       ErrorKind::unsupported},
      {"AWQ groups not dividing in_features",
       edit(awq_layer(),
            [](auto& s) {
              reshape(s, "l.scales", {3, 32}, f16_ones(96));
              reshape(s, "l.qzeros", {3, 4}, 48);
            }),
       ErrorKind::parse},
      {"AWQ without zero points",
       cfg(awq_layer(), R"({"quantization_config":{"quant_method":"awq","zero_point":false}})"),
       ErrorKind::unsupported},
      {"NF4 quant_state not JSON", nf4_layer("{\"shape\": [8, 8"), ErrorKind::parse},
      {"NF4 quant_state lies about the shape",
       nf4_layer(R"({"quant_type":"nf4","blocksize":64,"shape":[16,8]})"), ErrorKind::parse},
      {"NF4 quant_state without a shape", nf4_layer(R"({"quant_type":"nf4","blocksize":64})"),
       ErrorKind::parse},
      {"NF4 quant_state with a negative dimension",
       nf4_layer(R"({"quant_type":"nf4","blocksize":64,"shape":[-8,-8]})"), ErrorKind::parse},
      {"NF4 odd block size", nf4_layer(R"({"quant_type":"nf4","blocksize":63,"shape":[8,8]})"),
       ErrorKind::parse},
      {"NF4 quant_type against its name",
       nf4_layer(R"({"quant_type":"fp4","blocksize":64,"shape":[8,8]})"), ErrorKind::parse},
      {"NF4 missing quant_state",
       edit(nf4_layer(kNf4State),
            [](auto& s) { drop(s, "l.weight.quant_state.bitsandbytes__nf4"); }),
       ErrorKind::parse},
      {"NF4 missing quant_map",
       edit(nf4_layer(kNf4State), [](auto& s) { drop(s, "l.weight.quant_map"); }),
       ErrorKind::parse},
      {"NF4 absmax count wrong",
       edit(nf4_layer(kNf4State), [](auto& s) { reshape(s, "l.weight.absmax", {2}, 8); }),
       ErrorKind::parse},
      {"NF4 double quant without nested_offset",
       edit(
           nf4_layer(R"({"quant_type":"nf4","blocksize":64,"shape":[8,8],"nested_blocksize":256})"),
           [](auto& s) {
             auto& a = part(s, "l.weight.absmax");
             a.dtype = DType::u8;
             a.bytes.resize(1);
             s.parts.push_back({"l.weight.nested_absmax", DType::f32, {1}, filled(4, 0)});
             s.parts.push_back({"l.weight.nested_quant_map", DType::f32, {256}, filled(1024, 0)});
           }),
       ErrorKind::parse},
      {"NF4 huge quant_state", nf4_layer(std::string(70000, ' ') + kNf4State), ErrorKind::limit},
      {"NF4 against config fp4",
       cfg(nf4_layer(kNf4State),
           R"({"quantization_config":{"quant_method":"bitsandbytes","bnb_4bit_quant_type":"fp4"}})"),
       ErrorKind::parse},
      {"INT8 SCB of the wrong length",
       edit(int8_layer(), [](auto& s) { reshape(s, "l.SCB", {3}, 12); }), ErrorKind::parse},
      {"INT8 weight not 2-D", edit(int8_layer(), [](auto& s) { part(s, "l.weight").shape = {64}; }),
       ErrorKind::parse},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const auto dir = test::scratch_dir("quant-bad");
      std::vector<const Part*> parts;
      for (const auto& p : c.model.parts) parts.push_back(&p);
      write_st(dir / "model.safetensors", parts, c.model.metadata);
      if (!c.model.config.empty()) std::ofstream(dir / "config.json") << c.model.config;
      try {
        // Some lies only show when the companions are read (g_idx values).
        auto sink = decode(dir, OutType::bf16);
        FAIL("accepted " << c.name);
      } catch (const Error& e) {
        INFO(e.what());
        CHECK(e.kind() == c.kind);
      }
    }
  }
  CHECK(cases.size() >= 30);
}

TEST_CASE("the synthetic layers themselves are valid", "[quant]") {
  for (const auto& s : {gptq_layer(), awq_layer(), nf4_layer(kNf4State), int8_layer()}) {
    const auto dir = test::scratch_dir("quant-good");
    std::vector<const Part*> parts;
    for (const auto& p : s.parts) parts.push_back(&p);
    write_st(dir / "model.safetensors", parts);
    auto sink = decode(dir, OutType::f32);
    REQUIRE(sink.tensors().size() == 1);
    CHECK(sink.tensors()[0].name == "l.weight");
  }
}

TEST_CASE("the CLI names each scheme and remembers a sharded GPTQ model",
          "[quant][cli][fixtures]") {
  const char* cli = test::cli_or_skip();
  if (!cli) return;
  const auto dir = test::scratch_dir("quant-cli");
  const std::vector<std::pair<std::string, std::string>> schemes{
      {"gptq", "gptq 4-bit group 32 g_idx"},
      {"awq", "awq 4-bit group 32"},
      {"bnb_nf4", "bnb nf4 block 64"}};
  for (const auto& [file, expected] : schemes) {
    const auto path = test::fixtures_root() / "safetensors" / (file + ".safetensors");
    if (!std::filesystem::exists(path)) continue;
    const auto txt = dir / (file + ".txt");
    const std::string cmd =
        std::string(cli) + " inspect '" + path.string() + "' > '" + txt.string() + "'";
    REQUIRE(std::system(cmd.c_str()) == 0);
    const auto out = test::read_file(txt);
    CHECK(std::string(out.begin(), out.end()).find(expected) != std::string::npos);
  }

  const auto gptq = test::fixture_files("gptq");
  REQUIRE(!gptq.empty());
  const Model m = gptq_model(gptq.front());
  const auto model = write_model(m, true, "cli-sharded");
  const auto out = dir / "out.safetensors";
  const std::string cmd = std::string(cli) + " remember '" + model.string() +
                          "' --to bf16 --chunk 4K --budget 512K -o '" + out.string() +
                          "' 2>/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto back = decode(out, OutType::bf16);
  CHECK(find(back, m.weight).shape == m.shape);
  CHECK(mismatches(find(back, m.weight).view(), m.bf16, 2, false) == 0);
}
