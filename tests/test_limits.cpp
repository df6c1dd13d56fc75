// Issue 14, item 4: every cap in mneme::Limits, at its boundary. Each case
// builds an input that needs exactly N of one cap: it must read with the cap
// at N and end in Error{limit} naming the cap's --max- option at N - 1.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>

#include "gguf_builder.hpp"
#include "memory_source_for_tests.hpp"
#include "mneme/error.hpp"
#include "mneme/formats.hpp"
#include "mneme/limits.hpp"
#include "src/formats/npy.hpp"
#include "src/formats/npz.hpp"
#include "src/formats/pickle.hpp"
#include "src/formats/pth.hpp"
#include "test_support.hpp"

using namespace mneme;
using namespace mneme::test;

namespace {

std::string st_file(const std::string& header, std::size_t data_len) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + std::string(data_len, '\x01');
}

Bytes bytes(const std::string& s) {
  return to_bytes(std::string_view(s));
}

void safetensors(const std::string& file, const Limits& l) {
  parse_safetensors(memory_source("m.safetensors", bytes(file)), l);
}
void gguf(const GgufBuilder& g, const Limits& l) {
  parse_gguf(memory_source("m.gguf", bytes(g.bytes)), l);
}
void npz(const Bytes& b, const Limits& l) {
  parse_npz(memory_source("m.npz", b), l);
}
void npy(const Bytes& b, const Limits& l) {
  parse_npy(memory_source("m.npy", b), l);
}
void pth(const Bytes& pickle, std::size_t storage_bytes, const Limits& l) {
  parse_pth(memory_source("m.pth", make_pth(pickle, {{"0", Bytes(storage_bytes)}}).bytes), l);
}

// A state dict of f32 tensors in storage "0" (numel elements), one per shape.
Bytes state_dict(const std::vector<std::pair<std::string, std::vector<std::int64_t>>>& tensors,
                 std::int64_t numel, bool broadcast = false) {
  PickleWriter p;
  p.proto().ordered_dict().op('(');
  for (const auto& [name, shape] : tensors) {
    std::vector<std::int64_t> stride(shape.size(), 0);
    if (!broadcast) {
      std::int64_t s = 1;
      for (std::size_t k = shape.size(); k-- > 0;) stride[k] = s, s *= shape[k];
    }
    p.tensor(name, "FloatStorage", "0", numel, 0, shape, stride);
  }
  p.op('u').op('.');
  return p.b;
}

GgufBuilder gguf_with(
    const std::function<void(GgufBuilder&)>& kvs, std::uint64_t n_kv,
    const std::vector<std::pair<std::string, std::vector<std::uint64_t>>>& tensors) {
  GgufBuilder g;
  g.header(tensors.size(), n_kv);
  kvs(g);
  for (std::size_t i = 0; i < tensors.size(); ++i)
    g.tensor(tensors[i].first, tensors[i].second, 0, 32 * i);
  g.align();
  g.data(32 * tensors.size());
  return g;
}

struct Case {
  const char* name;
  std::uint64_t Limits::*cap;
  std::uint64_t needed;
  std::function<void(const Limits&)> read;
};

std::vector<Case> cases() {
  std::vector<Case> c;
  const std::string t1 = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";

  {  // header-bytes: the safetensors JSON itself
    const std::string header = "{" + t1 + "}";
    c.push_back({"safetensors header", &Limits::max_header_bytes, header.size(),
                 [=](const Limits& l) { safetensors(st_file(header, 4), l); }});
  }
  {  // header-bytes: a GGUF's metadata, its key and value bytes
    const auto g =
        gguf_with([](GgufBuilder& b) { b.kv_string("general.name", std::string(3000, 'x')); }, 1,
                  {{"w", {8}}});
    c.push_back({"GGUF metadata", &Limits::max_header_bytes, 12 + 3000,
                 [=](const Limits& l) { gguf(g, l); }});
  }
  {  // tensors: __metadata__ is not a tensor
    const std::string header = R"({"__metadata__":{"k":"v"},)" + t1 +
                               R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    c.push_back({"safetensors tensors", &Limits::max_tensors, 2,
                 [=](const Limits& l) { safetensors(st_file(header, 8), l); }});
  }
  {
    const auto g = gguf_with([](GgufBuilder&) {}, 0, {{"a", {8}}, {"b", {8}}, {"c", {8}}});
    c.push_back({"GGUF tensors", &Limits::max_tensors, 3, [=](const Limits& l) { gguf(g, l); }});
  }
  {
    const Bytes member =
        make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Bytes(4));
    const Bytes z = build_zip({{"a.npy", member}, {"b.npy", member}}).bytes;
    c.push_back({"npz arrays", &Limits::max_tensors, 2, [=](const Limits& l) { npz(z, l); }});
    const Bytes z3 = build_zip({{"a.npy", member}, {"b.npy", member}, {"c.npy", member}}).bytes;
    c.push_back({"zip members", &Limits::max_zip_entries, 3, [=](const Limits& l) { npz(z3, l); }});
  }
  {
    const Bytes p = state_dict({{"a", {1}}, {"b", {1}}}, 1);
    c.push_back({".pth tensors", &Limits::max_tensors, 2, [=](const Limits& l) { pth(p, 4, l); }});
  }
  {  // rank
    const std::string header = R"({"a":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]}})";
    c.push_back({"safetensors rank", &Limits::max_rank, 5,
                 [=](const Limits& l) { safetensors(st_file(header, 4), l); }});
    const Bytes n = make_npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1), }", Bytes(4));
    c.push_back({"NPY rank", &Limits::max_rank, 6, [=](const Limits& l) { npy(n, l); }});
    const Bytes p = state_dict({{"a", {1, 1, 1, 1, 1, 1, 1}}}, 1);
    c.push_back({".pth rank", &Limits::max_rank, 7, [=](const Limits& l) { pth(p, 4, l); }});
  }
  {  // name bytes
    const std::string name(300, 'n');
    const std::string header =
        R"({")" + name + R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    c.push_back({"safetensors tensor name", &Limits::max_name_bytes, 300,
                 [=](const Limits& l) { safetensors(st_file(header, 4), l); }});
    const auto g =
        gguf_with([&](GgufBuilder& b) { b.kv_u32(std::string(400, 'k'), 1); }, 1, {{name, {8}}});
    c.push_back({"GGUF key", &Limits::max_name_bytes, 400, [=](const Limits& l) { gguf(g, l); }});
    const Bytes member =
        make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Bytes(4));
    const Bytes z = build_zip({{std::string(500, 'm') + ".npy", member}}).bytes;
    c.push_back(
        {"zip member name", &Limits::max_name_bytes, 504, [=](const Limits& l) { npz(z, l); }});
  }
  {  // string bytes
    const auto g = gguf_with([](GgufBuilder& b) { b.kv_string("k", std::string(1000, 's')); }, 1,
                             {{"w", {8}}});
    c.push_back(
        {"GGUF string", &Limits::max_string_bytes, 1000, [=](const Limits& l) { gguf(g, l); }});
    const Bytes p = state_dict({{std::string(700, 'p'), {1}}}, 1);
    c.push_back(
        {"pickle string", &Limits::max_string_bytes, 700, [=](const Limits& l) { pth(p, 4, l); }});
  }
  {  // array length
    const auto g = gguf_with(
        [](GgufBuilder& b) {
          b.str("tokenizer.scores");
          b.u32(9);  // array
          b.u32(4);  // of u32
          b.count(5);
          for (int i = 0; i < 5; ++i) b.u32(static_cast<std::uint32_t>(i));
        },
        1, {{"w", {8}}});
    c.push_back({"GGUF array", &Limits::max_array_length, 5, [=](const Limits& l) { gguf(g, l); }});
  }
  {  // nesting: {"x": [[...[1]...]]} with 20 lists holds 21 containers in
     // each other, and 20 MARKs open at once.
    PickleWriter p;
    p.proto().op('}').str("x");
    for (int i = 0; i < 20; ++i) p.op('(');
    p.integer(1);
    for (int i = 0; i < 20; ++i) p.op('l');
    p.op('s').op('.');
    const Bytes b = p.b;
    c.push_back({"pickle nesting", &Limits::max_nesting, 21,
                 [=](const Limits& l) { pickle::load_state_dict(b, l); }});
    PickleWriter m;  // 40 MARKs opened, then popped (POP_MARK): no container nests
    m.proto().op('}').str("x");
    for (int i = 0; i < 40; ++i) m.op('(');
    for (int i = 0; i < 40; ++i) m.op('1');
    m.integer(1).op('s').op('.');
    const Bytes marks = m.b;
    c.push_back({"pickle MARKs", &Limits::max_nesting, 40,
                 [=](const Limits& l) { pickle::load_state_dict(marks, l); }});
  }
  {  // zip ratio: 100 000 zero bytes deflate to about a hundred
    const Bytes member =
        make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (25000,), }", Bytes(100000));
    ZipMember m{"a.npy", deflate_raw(member)};
    m.method = 8;
    m.usize = member.size();
    const std::uint64_t needed = (member.size() + m.data.size() - 1) / m.data.size();
    const Bytes z = build_zip({m}).bytes;
    c.push_back({"zip ratio", &Limits::max_zip_ratio, needed, [=](const Limits& l) { npz(z, l); }});
  }
  {  // view expansion: one float broadcast to 2^18 + 100 elements is 1 MiB of
     // slack plus 400 bytes, 100 times its 4-byte storage
    const Bytes p = state_dict({{"a", {(1 << 18) + 100}}}, 1, true);
    c.push_back({".pth view expansion", &Limits::max_view_expansion, 100,
                 [=](const Limits& l) { pth(p, 4, l); }});
  }
  return c;
}

// What the read needs of the cap found by search, for caps whose exact need
// depends on internal accounting: the least value it reads with.
std::uint64_t least_that_reads(const std::function<void(const Limits&)>& read,
                               std::uint64_t Limits::*cap, std::uint64_t hi) {
  std::uint64_t lo = 0;  // fails at lo (or lo is 0), reads at hi
  while (hi - lo > 1) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    Limits l;
    l.*cap = mid;
    try {
      read(l);
      hi = mid;
    } catch (const Error&) {
      lo = mid;
    }
  }
  return hi;
}

std::string option_of(std::uint64_t Limits::*cap) {
  for (const auto& f : limit_fields()) {
    if (f.field == cap) return "--max-" + std::string(f.name);
  }
  return "?";
}

void check_boundary(const std::string& name, std::uint64_t Limits::*cap, std::uint64_t needed,
                    const std::function<void(const Limits&)>& read) {
  INFO(name << ": needs " << needed << " of " << option_of(cap));
  Limits at;
  at.*cap = needed;
  CHECK_NOTHROW(read(at));
  Limits under;
  under.*cap = needed - 1;
  try {
    read(under);
    FAIL_CHECK("read with the cap one below what it needs");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::limit);
    CHECK_THAT(e.what(), Catch::Contains(option_of(cap)));
  }
}

}  // namespace

TEST_CASE("issue 14: every cap reads what needs exactly the cap and refuses one more") {
  std::set<std::string> covered;
  for (const auto& k : cases()) {
    check_boundary(k.name, k.cap, k.needed, k.read);
    covered.insert(option_of(k.cap));
  }
  // The pickle VM's working set is charged per value: its boundary is found
  // by search and checked like the others. A 300 kB string needs the cap's
  // floor and more.
  const Bytes p = state_dict({{std::string(300'000, 'w'), {1}}}, 1);
  const auto read = [&](const Limits& l) { pth(p, 4, l); };
  const std::uint64_t needed = least_that_reads(read, &Limits::max_pickle_memory, 64 << 20);
  CHECK(needed > 300'000);
  check_boundary("pickle working set", &Limits::max_pickle_memory, needed, read);
  covered.insert(option_of(&Limits::max_pickle_memory));

  // Shards: a folder of two files, and an index naming two.
  const auto dir = scratch_dir("limits-shards");
  for (const char* f : {"a", "b"}) {
    std::ofstream(dir / (std::string("model-") + f + ".safetensors"), std::ios::binary) << st_file(
        std::string(R"({")") + f + R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4);
  }
  boost::asio::io_context io;
  const auto open = [&](const std::string& spec) {
    return [&io, spec](const Limits& l) {
      CatalogOptions o;
      o.limits = l;
      open_catalog({spec}, io.get_executor(), o);
    };
  };
  check_boundary("folder of shards", &Limits::max_shards, 2, open(dir.string()));
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map":{"a":"model-a.safetensors","b":"model-b.safetensors"}})";
  check_boundary("index of shards", &Limits::max_shards, 2,
                 open((dir / "model.safetensors.index.json").string()));
  covered.insert(option_of(&Limits::max_shards));

  // No cap goes untested.
  for (const auto& f : limit_fields()) {
    INFO("--max-" << f.name);
    CHECK(covered.count("--max-" + std::string(f.name)) == 1);
  }
}

TEST_CASE("issue 14: a cap set below its floor is refused before anything is read") {
  boost::asio::io_context io;
  for (const auto& f : limit_fields()) {
    CatalogOptions o;
    o.limits.*f.field = f.floor - 1;
    INFO("--max-" << f.name);
    try {
      open_catalog({"/nonexistent/model.safetensors"}, io.get_executor(), o);
      FAIL_CHECK("opened with a cap below its floor");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::limit);
      CHECK_THAT(e.what(), Catch::Contains("--max-" + std::string(f.name)));
    }
    o.limits.*f.field = f.floor;
    CHECK_THROWS_MATCHES(
        open_catalog({"/nonexistent/model.safetensors"}, io.get_executor(), o), Error,
        Catch::Predicate<Error>([](const Error& e) { return e.kind() == ErrorKind::io; }));
  }
}

TEST_CASE("issue 14: the CLI sets every cap with --max-NAME and refuses one below its floor") {
  const char* cli = cli_or_skip();
  if (!cli) return;
  const auto dir = scratch_dir("limits-cli");
  const auto file = dir / "m.safetensors";
  std::ofstream(file, std::ios::binary) << st_file(
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      8);
  const std::string f = shq(file);
  CHECK(run(std::string(cli) + " inspect " + f + " --max-tensors 2").status == 0);
  const auto over = run(std::string(cli) + " inspect " + f + " --max-tensors=1 2>&1");
  CHECK(over.status == 1);
  CHECK_THAT(over.out, Catch::Contains("--max-tensors"));
  CHECK(run(std::string(cli) + " inspect " + f + " --max-header-bytes 1k").status == 0);
  const auto floor = run(std::string(cli) + " inspect " + f + " --max-nesting 7 2>&1");
  CHECK(floor.status == 2);
  CHECK_THAT(floor.out, Catch::Contains("at least 8"));
  CHECK(run(std::string(cli) + " inspect " + f + " --max-bogus 7 2>/dev/null").status == 2);
  const auto help = run(std::string(cli) + " load --help");
  for (const auto& l : limit_fields())
    CHECK_THAT(help.out, Catch::Contains("--max-" + std::string(l.name)));
}
