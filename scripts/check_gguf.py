#!/usr/bin/python3
"""Independent GGUF reader (the spec, NumPy, nothing from mneme) used by the
tests.

  check_gguf.py GGUF_FILE SAFETENSORS_FILE
      GGUF_FILE parses by the spec and holds exactly the tensors of
      SAFETENSORS_FILE (names, row-major shapes, dtypes, bytes).
  check_gguf.py --metadata GGUF_FILE SOURCE_GGUF
      GGUF_FILE (v3) holds every metadata entry of SOURCE_GGUF (v1-v3) with
      the same type and value (arrays element by element, nested ones too),
      and nothing else: split.* entries of a split source are dropped, and
      general.alignment may be added.
Exit 0 on match, 1 with a message otherwise.
"""
import json
import struct
import sys

import numpy as np

GGML = {0: "F32", 1: "F16", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 30: "BF16"}
SIZES = {"F32": 4, "F16": 2, "I8": 1, "I16": 2, "I32": 4, "I64": 8, "F64": 8, "BF16": 2}
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.data, self.pos, self.version = data, 0, 3

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def count(self):
        return self.take("<I" if self.version == 1 else "<Q")

    def string(self):
        n = self.count()
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.count()
            return (9, et, [self.value(et) for _ in range(n)])
        return self.take(SCALAR[t])

    def typed_value(self, t):
        """(type, value): arrays as (9, element type, [values])."""
        return (t, self.value(t))


def read_kv(path, versions=(3,)):
    r = Reader(open(path, "rb").read())
    assert r.data[:4] == b"GGUF", "bad magic"
    r.pos = 4
    r.version = r.take("<I")
    assert r.version in versions, f"version {r.version}"
    n_tensors, n_kv = r.count(), r.count()
    kv = {}
    for _ in range(n_kv):
        k = r.string()
        kv[k] = r.typed_value(r.take("<I"))
    return r, n_tensors, kv


def read_gguf(path):
    r, n_tensors, typed = read_kv(path)
    kv = {k: v[1] for k, v in typed.items()}
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        t, off = r.take("<I"), r.take("<Q")
        infos.append((name, ne, t, off))
    align = kv.get("general.alignment", 32)
    start = (r.pos + align - 1) // align * align
    tensors = {}
    for name, ne, t, off in infos:
        assert off % align == 0, f"{name}: unaligned offset"
        dtype = GGML[t]
        count = int(np.prod(ne))
        b = r.data[start + off:start + off + count * SIZES[dtype]]
        assert len(b) == count * SIZES[dtype], f"{name}: truncated"
        tensors[name] = (dtype, list(reversed(ne)), b)
    return kv, tensors


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack_from("<Q", data)[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"] or [1], data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}


def same(a, b):
    """Typed equality; NaN equals NaN (bit patterns are compared by struct)."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) == type(b) and a == b


def check_metadata(out_path, src_path):
    _, _, got = read_kv(out_path)
    _, _, want = read_kv(src_path, versions=(1, 2, 3))
    want = {k: v for k, v in want.items() if not k.startswith("split.")}
    if "general.alignment" not in want and "general.alignment" in got:
        del got["general.alignment"]
    if list(got) != list(want):
        print(f"metadata keys differ: missing {sorted(set(want) - set(got))}, extra {sorted(set(got) - set(want))}"
              if set(got) != set(want) else "metadata keys in another order")
        return 1
    for k in want:
        if got[k][0] != want[k][0]:
            print(f"{k}: type {got[k][0]}, source has {want[k][0]}")
            return 1
        if not same(got[k], want[k]):
            print(f"{k}: value differs")
            return 1
    print(f"ok: {len(want)} metadata entries with the source's types and values")
    return 0


def main():
    if sys.argv[1] == "--metadata":
        return check_metadata(sys.argv[2], sys.argv[3])
    kv, got = read_gguf(sys.argv[1])
    want = read_safetensors(sys.argv[2])
    if set(got) != set(want):
        print(f"tensor names differ: {sorted(set(got) ^ set(want))}")
        return 1
    for name, (dtype, shape, b) in want.items():
        if got[name] != (dtype, shape, b):
            print(f"{name}: gguf has {got[name][0]} {got[name][1]}, safetensors {dtype} {shape}, bytes equal: {got[name][2] == b}")
            return 1
    print(f"ok: {len(got)} tensors, {len(kv)} metadata keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
