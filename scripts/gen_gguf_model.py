#!/usr/bin/python3
"""Writes a synthetic GGUF v3 model of Q4_K and Q6_K weights (plus F32 norms)
for end-to-end benchmarks: llama-like layer shapes, random codes, sane F16
scales (no NaN/Inf), deterministic for a given seed.

    scripts/gen_gguf_model.py /tmp/q4k.gguf --size 1.1G

The layer mix follows llama.cpp's Q4_K_M: attention/ffn_gate/ffn_up in Q4_K,
ffn_down and attn_v in Q6_K. Needs NumPy (Debian: python3-numpy).
"""
import argparse
import struct

import numpy as np

GGML_F32, GGML_Q4_K, GGML_Q6_K = 0, 12, 14
BLOCK = {GGML_Q4_K: 144, GGML_Q6_K: 210}
ALIGN = 32


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def blocks(rng, ggml_type, count):
    """`count` random blocks with F16 scales in [2^-10, 2^-6)."""
    size = BLOCK[ggml_type]
    raw = rng.integers(0, 256, size=(count, size), dtype=np.uint8)
    scale = (rng.random(count, dtype=np.float32) * (2.0 ** -6 - 2.0 ** -10) + 2.0 ** -10).astype(np.float16)
    scale_bytes = scale.view(np.uint8).reshape(count, 2)
    if ggml_type == GGML_Q4_K:  # d, dmin, scales[12], qs[128]
        raw[:, 0:2] = scale_bytes
        raw[:, 2:4] = scale_bytes
    else:  # ql[128], qh[64], scales[16], d
        raw[:, 208:210] = scale_bytes
    return raw


def layer_tensors(i, dim, ffn):
    p = f"blk.{i}."
    return [
        (p + "attn_norm.weight", GGML_F32, [dim]),
        (p + "attn_q.weight", GGML_Q4_K, [dim, dim]),
        (p + "attn_k.weight", GGML_Q4_K, [dim, dim]),
        (p + "attn_v.weight", GGML_Q6_K, [dim, dim]),
        (p + "attn_output.weight", GGML_Q4_K, [dim, dim]),
        (p + "ffn_norm.weight", GGML_F32, [dim]),
        (p + "ffn_gate.weight", GGML_Q4_K, [ffn, dim]),
        (p + "ffn_up.weight", GGML_Q4_K, [ffn, dim]),
        (p + "ffn_down.weight", GGML_Q6_K, [dim, ffn]),
    ]


def nbytes(ggml_type, shape):
    n = int(np.prod(shape))
    return 4 * n if ggml_type == GGML_F32 else n // 256 * BLOCK[ggml_type]


def gguf_value(value):
    """A metadata value: a str is STRING (8), an int UINT32 (4)."""
    if isinstance(value, str):
        return struct.pack("<I", 8) + gguf_string(value)
    return struct.pack("<II", 4, value)


def write_gguf(path, tensors, kv, rng):
    """Writes a GGUF v3 file of `tensors` ((name, ggml_type, shape) in
    row-major order) with metadata `kv` ((key, str or int) pairs): F32 tensors
    are ones, quantized ones random blocks from `rng`. Returns the file size."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, v in kv:
        head += gguf_string(k) + gguf_value(v)
    offset = 0
    offsets = []
    for name, ggml_type, shape in tensors:
        offsets.append(offset)
        dims = list(reversed(shape))  # GGUF lists the fastest-varying dimension first
        head += gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        head += struct.pack("<IQ", ggml_type, offset)
        offset += (nbytes(ggml_type, shape) + ALIGN - 1) // ALIGN * ALIGN
    head += b"\0" * ((-len(head)) % ALIGN)

    with open(path, "wb") as f:
        f.write(head)
        base = f.tell()
        for (name, ggml_type, shape), off in zip(tensors, offsets):
            f.seek(base + off)
            n = int(np.prod(shape))
            if ggml_type == GGML_F32:
                f.write(np.ones(n, dtype=np.float32).tobytes())
            else:
                per = 1 << 16  # blocks per write
                for first in range(0, n // 256, per):
                    f.write(blocks(rng, ggml_type, min(per, n // 256 - first)).tobytes())
        f.truncate(base + offset)
    return base + offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--size", default="1.1G", help="approximate file size (default 1.1G)")
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--ffn", type=int, default=11008)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    target = parse_size(a.size)
    tensors = []
    total = 0
    layer = 0
    while total < target:
        for t in layer_tensors(layer, a.dim, a.ffn):
            tensors.append(t)
            total += nbytes(t[1], t[2])
        layer += 1

    kv = [("general.architecture", "llama"), ("general.name", "mneme synthetic Q4_K_M"), ("llama.block_count", layer)]
    size = write_gguf(a.out, tensors, kv, np.random.default_rng(a.seed))
    print(f"{a.out}: {len(tensors)} tensors in {layer} layers, {size / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
