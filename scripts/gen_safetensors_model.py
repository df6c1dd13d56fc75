#!/usr/bin/python3
"""Writes a sharded safetensors model with model.safetensors.index.json.

Used for the bundled sample (fixtures/sample-model, a few hundred KiB) and for
benchmark models of any size (e.g. --size 2G). Deterministic for a given seed.
Values are normal floats (std 0.02, like initialised weights) so conversions
exercise real rounding; no NumPy needed for the small sample, NumPy used when
present for speed.

  gen_safetensors_model.py OUT_DIR [--size 512K] [--shards 3] [--dtype F32]
"""
import argparse
import json
import os
import random
import struct

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1}


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.upper().rstrip("B").rstrip("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def tensor_bytes(dtype, count, rng):
    try:
        import numpy as np
        g = np.random.default_rng(rng.randrange(1 << 30))
        if dtype in ("I64", "I32", "U8"):
            np_t = {"I64": "<i8", "I32": "<i4", "U8": "u1"}[dtype]
            return g.integers(0, 100, size=count).astype(np_t).tobytes()
        v = (g.standard_normal(count, dtype=np.float32) * 0.02).astype("<f4")
        if dtype == "F32":
            return v.tobytes()
        if dtype == "F64":
            return v.astype("<f8").tobytes()
        if dtype == "F16":
            return v.astype("<f2").tobytes()
        if dtype == "BF16":
            b = v.view("<u4").astype("<u8")
            return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype("<u2").tobytes()
    except ImportError:
        pass
    out = bytearray()
    for _ in range(count):
        if dtype in ("I64", "I32", "U8"):
            out += struct.pack({"I64": "<q", "I32": "<i", "U8": "<B"}[dtype], rng.randrange(100))
            continue
        x = rng.gauss(0.0, 0.02)
        if dtype == "F32":
            out += struct.pack("<f", x)
        elif dtype == "F64":
            out += struct.pack("<d", x)
        elif dtype == "F16":
            out += struct.pack("<e", x)
        elif dtype == "BF16":
            b = struct.unpack("<I", struct.pack("<f", x))[0]
            out += struct.pack("<H", (b + 0x7FFF + ((b >> 16) & 1)) >> 16)
    return bytes(out)


def write_shard(path, tensors, metadata):
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, data in tensors:
            f.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--size", default="384K", help="approximate total weight bytes")
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16", "F64"])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    total = parse_size(args.size)
    esize = DTYPE_SIZE[args.dtype]
    hidden = 64 if total < (1 << 24) else 4096
    layers = max(args.shards, total // (4 * hidden * hidden * esize) or 1)
    layer_elems = max(1, total // layers // esize // hidden) * hidden
    os.makedirs(args.out_dir, exist_ok=True)

    # Tensors in layer order; a small BF16 norm and an I64 buffer per shard
    # keep mixed dtypes (passthrough and conversion) in every run.
    names = []
    for layer in range(layers):
        names.append((f"model.layers.{layer}.mlp.weight", args.dtype, [layer_elems // hidden, hidden]))
        if layer % max(1, layers // args.shards) == 0:
            names.append((f"model.layers.{layer}.norm.weight", "BF16", [hidden]))
            names.append((f"model.layers.{layer}.position_ids", "I64", [8]))
    per_shard = -(-len(names) // args.shards)
    weight_map = {}
    for s in range(args.shards):
        part = names[s * per_shard:(s + 1) * per_shard]
        if not part:
            continue
        fname = f"model-{s + 1:05d}-of-{args.shards:05d}.safetensors"
        tensors = []
        for name, dtype, shape in part:
            count = 1
            for d in shape:
                count *= d
            tensors.append((name, dtype, shape, tensor_bytes(dtype, count, rng)))
            weight_map[name] = fname
        write_shard(os.path.join(args.out_dir, fname), tensors, {"format": "pt", "generator": "mneme"})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(args.out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
