// The restricted pickle VM. Values live in an arena and refer to each other
// by index, so cycles built through the memo cannot leak and destruction is
// never recursive; the only recursion (state-dict extraction) is depth- and
// visit-bounded. Opcode semantics follow CPython's Lib/pickle.py.
#include "src/formats/pickle.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>

#include "mneme/checked.hpp"
#include "mneme/error.hpp"

namespace mneme::pickle {
namespace {

enum class Kind : std::uint8_t {
  none,
  boolean,
  integer,
  floating,
  string,
  bytes,
  tuple,
  list,
  dict,
  global,
  storage,
  reduced,
};

enum class Callable : std::uint8_t {
  rebuild_tensor_v2,
  rebuild_parameter,
  rebuild_parameter_with_state,
  parameter,
  ordered_dict,
  storage_class,
};

struct StorageClass {
  std::string_view name;
  DType dtype;
};
constexpr std::array<StorageClass, 15> kStorageClasses{{
    {"FloatStorage", DType::f32},
    {"DoubleStorage", DType::f64},
    {"HalfStorage", DType::f16},
    {"BFloat16Storage", DType::bf16},
    {"LongStorage", DType::i64},
    {"IntStorage", DType::i32},
    {"ShortStorage", DType::i16},
    {"CharStorage", DType::i8},
    {"ByteStorage", DType::u8},
    {"BoolStorage", DType::bool_},
    {"UInt16Storage", DType::u16},
    {"UInt32Storage", DType::u32},
    {"UInt64Storage", DType::u64},
    {"Float8_e4m3fnStorage", DType::f8_e4m3},
    {"Float8_e5m2Storage", DType::f8_e5m2},
}};

struct Global {
  Callable callable;
  DType dtype = DType::u8;  // storage classes
};

std::optional<Global> lookup_global(std::string_view module, std::string_view name) {
  if (module == "torch._utils") {
    if (name == "_rebuild_tensor_v2") return Global{Callable::rebuild_tensor_v2};
    if (name == "_rebuild_parameter") return Global{Callable::rebuild_parameter};
    if (name == "_rebuild_parameter_with_state") {
      return Global{Callable::rebuild_parameter_with_state};
    }
  } else if (module == "torch") {
    for (const auto& s : kStorageClasses) {
      if (name == s.name) return Global{Callable::storage_class, s.dtype};
    }
  } else if (module == "collections" && name == "OrderedDict") {
    return Global{Callable::ordered_dict};
  } else if (module == "torch.nn.parameter" && name == "Parameter") {
    return Global{Callable::parameter};
  }
  return std::nullopt;
}

using Ref = std::uint32_t;

struct Obj {
  Kind kind = Kind::none;
  Callable callable = Callable::ordered_dict;  // global
  DType dtype = DType::u8;                     // global (storage class), storage
  std::uint32_t depth = 0;                     // container nesting below this value
  std::int64_t i = 0;                          // boolean, integer; storage numel
  std::string s;                               // string, bytes; storage key
  std::vector<Ref> items;  // tuple/list items; dict k,v,k,v...; reduced {callable, args}
};

constexpr Ref kNone = 0, kTrue = 1, kFalse = 2;
// Fixed caps, bounded by the user's ones anyway: every stack entry is charged
// to max_pickle_memory, and a state dict nests far less than containers may.
constexpr std::uint64_t kMaxStack = 1u << 20;
constexpr std::uint64_t kMaxExtractDepth = 32;

class Machine {
 public:
  Machine(std::span<const std::byte> in, const Limits& limits) : in_(in), lim_(limits) {
    arena_.reserve(256);
    new_obj(Kind::none);
    new_obj(Kind::boolean).i = 1;
    new_obj(Kind::boolean).i = 0;
  }

  Ref run();
  std::vector<TensorRef> extract(Ref root);

 private:
  [[noreturn]] void bad(const std::string& why) const {
    fail(ErrorKind::parse, "pickle: " + why + " (at byte " + std::to_string(op_pos_) + ")");
  }
  // A cap the caller sets (named by its --max-NAME option in the message).
  [[noreturn]] void over(const std::string& what, std::uint64_t Limits::*cap) const {
    over_limit("pickle", what, cap, lim_);
  }
  // A bound of the VM itself, not configurable: the stack and the extractor's walk.
  [[noreturn]] void over_fixed(const std::string& what, std::uint64_t bound) const {
    fail(ErrorKind::limit, "pickle: " + what + " exceeds the limit of " + std::to_string(bound));
  }

  void charge(std::uint64_t bytes) {
    used_ += bytes;
    if (used_ > lim_.max_pickle_memory) over("working set", &Limits::max_pickle_memory);
  }
  Obj& new_obj(Kind k) {
    charge(sizeof(Obj));
    arena_.emplace_back().kind = k;
    return arena_.back();
  }
  Ref new_ref(Kind k) {
    new_obj(k);
    return static_cast<Ref>(arena_.size() - 1);
  }

  // Input.
  const std::byte* take(std::uint64_t n) {
    if (in_.size() - pos_ < n) bad("truncated stream");
    const std::byte* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::uint64_t le(std::size_t n) {
    const std::byte* p = take(n);
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) v |= std::to_integer<std::uint64_t>(p[k]) << (8 * k);
    return v;
  }
  std::string text_line() {
    const std::size_t max = 1024;
    std::string out;
    while (true) {
      const auto c = static_cast<char>(*take(1));
      if (c == '\n') return out;
      if (out.size() >= max) bad("GLOBAL line too long");
      out += c;
    }
  }

  // Stack.
  void push(Ref r) {
    if (stack_.size() >= kMaxStack) over_fixed("stack depth", kMaxStack);
    stack_.push_back(r);
  }
  Ref pop() {
    if (stack_.size() <= floor()) bad("stack underflow");
    const Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Ref top() const {
    if (stack_.size() <= floor()) bad("stack underflow");
    return stack_.back();
  }
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Items above the innermost MARK; the mark is removed.
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) bad("no MARK on the stack");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }

  // Values.
  void adopt(Ref parent, Ref child) {
    const std::uint32_t d = arena_[child].depth + 1;
    if (d > lim_.max_nesting) over("nesting depth " + std::to_string(d), &Limits::max_nesting);
    arena_[parent].depth = std::max(arena_[parent].depth, d);
  }
  Ref make_container(Kind k, std::vector<Ref> items) {
    charge(items.size() * sizeof(Ref));
    const Ref r = new_ref(k);
    arena_[r].items = std::move(items);
    for (std::size_t n = 0; n < arena_[r].items.size(); ++n) adopt(r, arena_[r].items[n]);
    return r;
  }
  void add_items(Ref target, Kind want, const std::vector<Ref>& items, const char* op) {
    if (arena_[target].kind != want) bad(std::string(op) + " on a value of the wrong type");
    charge(items.size() * sizeof(Ref));
    for (Ref c : items) {
      adopt(target, c);
      arena_[target].items.push_back(c);
    }
  }
  Ref make_string(Kind k, std::uint64_t n) {
    if (n > lim_.max_string_bytes)
      over("string of " + std::to_string(n) + " bytes", &Limits::max_string_bytes);
    const std::byte* p = take(n);  // checks n against the bytes left
    charge(n);
    const Ref r = new_ref(k);
    arena_[r].s.assign(reinterpret_cast<const char*>(p), n);
    return r;
  }
  Ref make_int(std::int64_t v) {
    const Ref r = new_ref(Kind::integer);
    arena_[r].i = v;
    return r;
  }
  Ref make_global(std::string_view module, std::string_view name) {
    const auto g = lookup_global(module, name);
    if (!g) {
      fail(ErrorKind::security, "pickle: global " + printable(module, 128) + "." +
                                    printable(name, 128) +
                                    " is not allowed (only torch tensor rebuilders, storages "
                                    "and OrderedDict are)");
    }
    const Ref r = new_ref(Kind::global);
    arena_[r].callable = g->callable;
    arena_[r].dtype = g->dtype;
    return r;
  }
  void reduce(const char* op) {
    const Ref args = pop();
    const Ref fn = pop();
    if (arena_[fn].kind != Kind::global) bad(std::string(op) + " of a value that is not a global");
    if (arena_[args].kind != Kind::tuple) bad(std::string(op) + " arguments are not a tuple");
    switch (arena_[fn].callable) {
      case Callable::ordered_dict:
        if (!arena_[args].items.empty()) bad("OrderedDict called with arguments");
        push(new_ref(Kind::dict));
        return;
      case Callable::storage_class:
        bad(std::string(op) + " of a storage class");
      default:
        push(make_container(Kind::reduced, {fn, args}));
    }
  }
  void persistent_load() {
    const Ref pid = pop();
    const Obj& t = arena_[pid];
    if (t.kind != Kind::tuple || t.items.size() < 5) bad("persistent id is not a storage tuple");
    const Obj& tag = arena_[t.items[0]];
    const Obj& cls = arena_[t.items[1]];
    const Obj& key = arena_[t.items[2]];
    const Obj& numel = arena_[t.items[4]];
    if (tag.kind != Kind::string || tag.s != "storage") bad("persistent id is not a storage");
    if (cls.kind != Kind::global || cls.callable != Callable::storage_class) {
      bad("persistent id names no storage class");
    }
    if (key.kind != Kind::string || key.s.empty()) bad("storage key is not a string");
    if (numel.kind != Kind::integer || numel.i < 0) bad("storage size is not a count");
    const DType dtype = cls.dtype;
    const std::string k = key.s;
    const std::int64_t n = numel.i;
    const Ref r = new_ref(Kind::storage);
    charge(k.size());
    arena_[r].dtype = dtype;
    arena_[r].s = k;
    arena_[r].i = n;
    push(r);
  }

  void memo_put(std::uint64_t idx) {
    const Ref v = top();
    auto [it, inserted] = memo_.insert_or_assign(static_cast<std::uint32_t>(idx), v);
    if (inserted) charge(48);
  }
  void memo_get(std::uint64_t idx) {
    const auto it = memo_.find(static_cast<std::uint32_t>(idx));
    if (it == memo_.end()) bad("memo slot " + std::to_string(idx) + " was never set");
    push(it->second);
  }

  // Extraction.
  std::string key_name(Ref k) const;
  void walk(Ref v, const std::string& name, std::uint64_t depth, std::vector<TensorRef>& out);
  TensorRef make_tensor(Ref args, const std::string& name) const;
  std::uint64_t count(Ref r, const char* what) const {
    const Obj& o = arena_[r];
    if (o.kind == Kind::boolean) return static_cast<std::uint64_t>(o.i);
    if (o.kind != Kind::integer || o.i < 0)
      bad(std::string(what) + " is not a non-negative integer");
    return static_cast<std::uint64_t>(o.i);
  }

  std::span<const std::byte> in_;
  const Limits& lim_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  std::uint64_t used_ = 0;
  std::uint64_t visits_ = 0;
  std::vector<Obj> arena_;
  std::vector<Ref> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint32_t, Ref> memo_;
};

Ref Machine::run() {
  while (true) {
    op_pos_ = pos_;
    const auto op = std::to_integer<unsigned char>(*take(1));
    switch (op) {
      case 0x80: {  // PROTO
        const auto v = le(1);
        if (v > 5) {
          fail(ErrorKind::unsupported, "pickle: protocol " + std::to_string(v));
        }
        break;
      }
      case 0x95: {  // FRAME: framing only, the whole pickle is in memory
        const auto n = le(8);
        if (n > in_.size() - pos_) bad("FRAME longer than the stream");
        break;
      }
      case '.': {  // STOP
        if (!marks_.empty()) bad("STOP with an open MARK");
        const Ref r = pop();
        if (pos_ != in_.size()) bad("bytes after STOP");
        return r;
      }
      case 'N':
        push(kNone);
        break;
      case 0x88:
        push(kTrue);
        break;
      case 0x89:
        push(kFalse);
        break;
      case 'J':
        push(make_int(static_cast<std::int32_t>(le(4))));
        break;
      case 'K':
        push(make_int(static_cast<std::int64_t>(le(1))));
        break;
      case 'M':
        push(make_int(static_cast<std::int64_t>(le(2))));
        break;
      case 0x8a: {  // LONG1: little-endian two's complement
        const auto n = le(1);
        if (n > 8) bad("integer wider than 64 bits");
        std::uint64_t v = n ? le(n) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t{0} << (8 * n);
        push(make_int(static_cast<std::int64_t>(v)));
        break;
      }
      case 'G': {  // BINFLOAT (big-endian); kept only as a value to skip
        take(8);
        push(new_ref(Kind::floating));
        break;
      }
      case 0x8c:
        push(make_string(Kind::string, le(1)));
        break;  // SHORT_BINUNICODE
      case 'X':
        push(make_string(Kind::string, le(4)));
        break;  // BINUNICODE
      case 0x8d:
        push(make_string(Kind::string, le(8)));
        break;  // BINUNICODE8
      case 'U':
        push(make_string(Kind::string, le(1)));
        break;     // SHORT_BINSTRING
      case 'T': {  // BINSTRING
        const auto n = static_cast<std::int32_t>(le(4));
        if (n < 0) bad("negative string length");
        push(make_string(Kind::string, static_cast<std::uint64_t>(n)));
        break;
      }
      case 'C':
        push(make_string(Kind::bytes, le(1)));
        break;  // SHORT_BINBYTES
      case 'B':
        push(make_string(Kind::bytes, le(4)));
        break;  // BINBYTES
      case 0x8e:
        push(make_string(Kind::bytes, le(8)));
        break;  // BINBYTES8
      case '}':
        push(new_ref(Kind::dict));
        break;
      case ']':
        push(new_ref(Kind::list));
        break;
      case ')':
        push(new_ref(Kind::tuple));
        break;
      case '(':
        if (marks_.size() >= lim_.max_nesting) over("open MARKs", &Limits::max_nesting);
        marks_.push_back(stack_.size());
        break;
      case 't':
        push(make_container(Kind::tuple, pop_mark()));
        break;
      case 'l':
        push(make_container(Kind::list, pop_mark()));
        break;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::vector<Ref> items(op - 0x84);
        for (std::size_t k = items.size(); k-- > 0;) items[k] = pop();
        push(make_container(Kind::tuple, std::move(items)));
        break;
      }
      case 'd': {  // DICT from MARK
        auto items = pop_mark();
        if (items.size() % 2) bad("DICT with an odd number of items");
        push(make_container(Kind::dict, std::move(items)));
        break;
      }
      case 's': {  // SETITEM
        const Ref v = pop();
        const Ref k = pop();
        add_items(top(), Kind::dict, {k, v}, "SETITEM");
        break;
      }
      case 'u': {  // SETITEMS
        auto items = pop_mark();
        if (items.size() % 2) bad("SETITEMS with an odd number of items");
        add_items(top(), Kind::dict, items, "SETITEMS");
        break;
      }
      case 'a': {  // APPEND
        const Ref v = pop();
        add_items(top(), Kind::list, {v}, "APPEND");
        break;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        add_items(top(), Kind::list, items, "APPENDS");
        break;
      }
      case '0':
        pop();
        break;  // POP
      case '1':
        pop_mark();
        break;  // POP_MARK
      case '2':
        push(top());
        break;     // DUP
      case 'c': {  // GLOBAL
        const std::string module = text_line();
        const std::string name = text_line();
        push(make_global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        const Ref name = pop();
        const Ref module = pop();
        if (arena_[name].kind != Kind::string || arena_[module].kind != Kind::string) {
          bad("STACK_GLOBAL operands are not strings");
        }
        push(make_global(arena_[module].s, arena_[name].s));
        break;
      }
      case 'R':
        reduce("REDUCE");
        break;
      case 0x81:
        reduce("NEWOBJ");
        break;
      case 'b': {  // BUILD: the state only sets attributes (e.g. _metadata); kept out
        pop();
        const Kind k = arena_[top()].kind;
        if (k != Kind::dict && k != Kind::reduced) bad("BUILD on a value that takes no state");
        break;
      }
      case 'Q':
        persistent_load();
        break;  // BINPERSID
      case 'q':
        memo_put(le(1));
        break;  // BINPUT
      case 'r':
        memo_put(le(4));
        break;  // LONG_BINPUT
      case 0x94:
        memo_put(memo_.size());
        break;  // MEMOIZE
      case 'h':
        memo_get(le(1));
        break;  // BINGET
      case 'j':
        memo_get(le(4));
        break;     // LONG_BINGET
      case 'i': {  // INST: names a class to instantiate
        const std::string module = text_line();
        const std::string name = text_line();
        fail(ErrorKind::security, "pickle: INST " + printable(module, 128) + "." +
                                      printable(name, 128) + " instantiates an object; refused");
      }
      case 'o':
      case 0x92:
        fail(ErrorKind::security, "pickle: OBJ/NEWOBJ_EX instantiate objects; refused");
      case 0x82:
      case 0x83:
      case 0x84:
        fail(ErrorKind::security,
             "pickle: EXT opcodes load globals from the extension registry; refused");
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        bad(std::string("unsupported opcode ") + hex);
      }
    }
  }
}

std::string Machine::key_name(Ref k) const {
  const Obj& o = arena_[k];
  if (o.kind == Kind::string) return o.s;
  if (o.kind == Kind::integer) return std::to_string(o.i);
  bad("state-dict key is neither a string nor an integer");
}

TensorRef Machine::make_tensor(Ref args_ref, const std::string& name) const {
  const Obj& args = arena_[args_ref];
  if (args.items.size() < 4) bad("_rebuild_tensor_v2 takes at least 4 arguments");
  const Obj& st = arena_[args.items[0]];
  if (st.kind != Kind::storage) bad("tensor " + printable(name) + " has no storage");
  const Obj& size = arena_[args.items[2]];
  const Obj& stride = arena_[args.items[3]];
  if (size.kind != Kind::tuple || stride.kind != Kind::tuple) {
    bad("tensor " + printable(name) + " size or stride is not a tuple");
  }
  if (size.items.size() != stride.items.size()) {
    bad("tensor " + printable(name) + " size and stride ranks differ");
  }
  if (size.items.size() > lim_.max_rank)
    over("tensor rank " + std::to_string(size.items.size()), &Limits::max_rank);
  TensorRef t;
  t.name = name;
  t.storage.dtype = st.dtype;
  t.storage.key = st.s;
  t.storage.numel = static_cast<std::uint64_t>(st.i);
  t.storage_offset = count(args.items[1], "storage offset");
  for (std::size_t k = 0; k < size.items.size(); ++k) {
    t.shape.push_back(count(size.items[k], "tensor size"));
    t.stride.push_back(count(stride.items[k], "tensor stride"));
  }
  return t;
}

void Machine::walk(Ref v, const std::string& name, std::uint64_t depth,
                   std::vector<TensorRef>& out) {
  if (depth > kMaxExtractDepth) over_fixed("state-dict nesting", kMaxExtractDepth);
  // Shared containers could otherwise be walked exponentially many times.
  if (++visits_ > 2 * arena_.size() + 1024) over_fixed("values visited", 2 * arena_.size() + 1024);
  const Obj& o = arena_[v];
  const auto child = [&](const std::string& k) { return name.empty() ? k : name + "." + k; };
  switch (o.kind) {
    case Kind::dict:
      for (std::size_t k = 0; k + 1 < o.items.size(); k += 2) {
        walk(o.items[k + 1], child(key_name(o.items[k])), depth + 1, out);
      }
      break;
    case Kind::list:
    case Kind::tuple:
      for (std::size_t k = 0; k < o.items.size(); ++k) {
        walk(o.items[k], child(std::to_string(k)), depth + 1, out);
      }
      break;
    case Kind::reduced: {
      const Obj& fn = arena_[o.items[0]];
      const Obj& args = arena_[o.items[1]];
      if (fn.callable == Callable::rebuild_tensor_v2) {
        if (out.size() >= lim_.max_tensors) over("tensor count", &Limits::max_tensors);
        out.push_back(make_tensor(o.items[1], name.empty() ? "tensor" : name));
      } else {  // a Parameter wraps its tensor as the first argument
        if (args.items.empty()) bad("parameter without a tensor");
        const Kind inner = arena_[args.items[0]].kind;
        if (inner != Kind::reduced) bad("parameter " + printable(name) + " wraps no tensor");
        walk(args.items[0], name, depth + 1, out);
      }
      break;
    }
    default:
      break;  // scalars, strings, storages: not tensors (e.g. a checkpoint's epoch)
  }
}

std::vector<TensorRef> Machine::extract(Ref root) {
  const Kind k = arena_[root].kind;
  if (k != Kind::dict && k != Kind::reduced && k != Kind::list && k != Kind::tuple) {
    bad("the pickle holds no state dict");
  }
  std::vector<TensorRef> out;
  walk(root, "", 0, out);
  return out;
}

}  // namespace

bool allowed_global(std::string_view module, std::string_view name) {
  return lookup_global(module, name).has_value();
}

std::vector<TensorRef> load_state_dict(std::span<const std::byte> pickle, const Limits& limits) {
  Machine m(pickle, limits);
  const Ref root = m.run();
  return m.extract(root);
}

}  // namespace mneme::pickle
