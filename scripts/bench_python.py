#!/usr/bin/python3
"""mneme's Python API against the loaders Python users have, on the same files
(issue 12; figures in docs/performance.md). In-process timings, page cache
warm, alternating A B A B, medians with min-max and the ratio pair by pair.

    PYTHONPATH=build/release/python scripts/bench_python.py [--dir /tmp/mneme-py] [--size 1G] [--reps 5]

Writes (once) model.safetensors (F32, one file), model.pth (torch.save) and
model.npz (np.savez, stored) of the same llama-like tensors, and a 16-shard
safetensors model. Compares:
  mneme.load_file(safetensors, dtype="bf16")  vs a NumPy reader (np.fromfile per tensor, then the cast)
  mneme.load_file(.pth)                       vs torch.load(weights_only=True)
  mneme.load_file(.npz)                       vs numpy.load, every array materialised
  dd bs=4M of each file to /dev/null        (the read floor)
and, on the 16-shard model, when tensors() yields its first tensor against
the whole load.
"""
import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import time

import numpy as np

import mneme


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def tensors(total):
    rng = np.random.default_rng(0)
    out, size, i = {}, 0, 0
    while size < total:
        shape = (4096, 2560) if i % 3 else (2560,)
        out[f"layers.{i}.weight"] = rng.standard_normal(shape, dtype=np.float32)
        size += out[f"layers.{i}.weight"].nbytes
        i += 1
    return out


def write_safetensors(path, arrays):
    header, offset = {}, 0
    for name, a in arrays.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for a in arrays.values():
            f.write(a.tobytes())


def numpy_safetensors_bf16(path):
    """The plain reader: np.fromfile per tensor, then F32 -> BF16 (round to nearest even)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        x = np.fromfile(path, dtype=np.float32, count=(b - a) // 4, offset=8 + n + a).view(np.uint32)
        out[name] = ((x + 0x7FFF + ((x >> 16) & 1)) >> 16).astype(np.uint16)
    return out


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pairs(a, b, reps):
    ta, tb = [], []
    for _ in range(reps):
        ta.append(timed(a))
        tb.append(timed(b))
    ratios = [x / y for x, y in zip(ta, tb)]
    return ta, tb, ratios


def fmt(xs):
    return f"{statistics.median(xs):.3f} s ({min(xs):.3f}-{max(xs):.3f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/mneme-py")
    ap.add_argument("--size", default="1G")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    st, pth, npz = (os.path.join(args.dir, n) for n in ("model.safetensors", "model.pth", "model.npz"))
    shards = os.path.join(args.dir, "sharded")
    if not all(os.path.exists(p) for p in (st, pth, npz)):
        arrays = tensors(parse_size(args.size))
        write_safetensors(st, arrays)
        np.savez(npz, **arrays)
        import torch
        torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, pth)
    if not os.path.exists(os.path.join(shards, "model.safetensors.index.json")):
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "gen_safetensors_model.py"),
                        shards, "--size", args.size, "--shards", "16"], check=True)
    for p in (st, pth, npz):
        subprocess.run(["cat", p], stdout=subprocess.DEVNULL, check=True)
    import torch

    def cat(p):
        return lambda: subprocess.run(["dd", f"if={p}", "of=/dev/null", "bs=4M"], stderr=subprocess.DEVNULL, check=True)

    rows = [
        ("safetensors F32 -> BF16", st, lambda: mneme.load_file(st, dtype="bf16"),
         lambda: numpy_safetensors_bf16(st), "NumPy reader"),
        (".pth", pth, lambda: mneme.load_file(pth),
         lambda: torch.load(pth, weights_only=True), "torch.load"),
        (".npz (stored)", npz, lambda: mneme.load_file(npz),
         lambda: {k: v for k, v in np.load(npz).items()}, "numpy.load"),
    ]
    for label, path, ours, theirs, name in rows:
        ta, tb, r = pairs(ours, theirs, args.reps)
        _, tc, rc = pairs(ours, cat(path), args.reps)
        size = os.path.getsize(path)
        print(f"{label} ({size / 1e9:.2f} GB): mneme {fmt(ta)}, {name} {fmt(tb)}, "
              f"{name}/mneme {statistics.median([1 / x for x in r]):.2f}x "
              f"({min(1 / x for x in r):.2f}-{max(1 / x for x in r):.2f}); dd {fmt(tc)}, "
              f"mneme at {statistics.median([1 / x for x in rc]):.2f} of dd's rate")

    firsts, totals = [], []
    for _ in range(args.reps):
        start = time.perf_counter()
        first = None
        with mneme.safe_open(shards) as f:
            for _name, _array in f.tensors():
                if first is None:
                    first = time.perf_counter() - start
        firsts.append(first)
        totals.append(time.perf_counter() - start)
    share = [f / t for f, t in zip(firsts, totals)]
    print(f"16 shards: first tensor after {fmt(firsts)} of {fmt(totals)}: "
          f"{statistics.median(share) * 100:.1f} % ({min(share) * 100:.1f}-{max(share) * 100:.1f})")


if __name__ == "__main__":
    main()
