#!/usr/bin/env python3
"""Independent NumPy expectations for the quant kernels' cases that have no
reference-library golden: FP8 E5M2 and GPTQ v2 zeros.

Usage: quant_expectations.py OUTDIR   (run by tests/test_kernels_quant.cpp)

Writes little-endian files:
  e5m2_<k>.bin: u32 rows, cols, block_rows, block_cols, scale_dtype (0 F32,
      1 BF16, 2 F16), grid_rows, grid_cols; weight bytes; scale bytes;
      expected F32 [rows, cols].
  gptq_v2_<bits>.bin: u32 bits, group_size, in, out, has_g_idx; qweight I32
      [in/pack, out]; scales F16 [groups, out]; qzeros I32 [groups, out/pack]
      (stored as the zero itself, gptq_v2); g_idx I32 [in] (if any);
      expected F32 [in, out].
The arithmetic is NumPy's own: float16 -> float32 widening, bfloat16 as the
top half of a float32, int32 math, one float32 multiply.
"""
import os
import sys

import numpy as np


def u32(*vals):
    return np.array(vals, dtype="<u4").tobytes()


def e5m2_case(rng, rows, cols, br, bc, scale_dtype):
    w = rng.integers(0, 256, size=(rows, cols), dtype=np.uint8)
    w.flat[:256] = np.arange(256, dtype=np.uint8)  # every code, Inf and NaN included
    gr, gc = -(-rows // br), -(-cols // bc) + 1  # one spare grid column
    s32 = (rng.standard_normal((gr, gc)) * 0.02).astype(np.float32)
    s32.flat[0] = np.float32(1.0)
    if scale_dtype == 0:
        sbytes = s32.astype("<f4").tobytes()
        s = s32
    elif scale_dtype == 1:
        bits = (s32.view(np.uint32) >> 16).astype("<u2")  # truncate: any bf16 will do
        sbytes = bits.tobytes()
        s = (bits.astype(np.uint32) << 16).view(np.float32)
    else:
        h = s32.astype(np.float16)
        sbytes = h.astype("<f2").tobytes()
        s = h.astype(np.float32)
    wf = (w.astype(np.uint16) << 8).view(np.float16).astype(np.float32)
    srow = s[np.arange(rows) // br][:, np.arange(cols) // bc]
    with np.errstate(invalid="ignore", over="ignore"):
        exp = (wf * srow).astype("<f4")
    return (u32(rows, cols, br, bc, scale_dtype, gr, gc) + w.tobytes() + sbytes + exp.tobytes())


def pack_along(vals, bits, axis):
    pf = 32 // bits
    v = np.moveaxis(vals.astype(np.uint32), axis, 0)
    v = v.reshape(v.shape[0] // pf, pf, *v.shape[1:])
    word = np.zeros(v[:, 0].shape, dtype=np.uint32)
    for k in range(pf):
        word |= v[:, k] << np.uint32(bits * k)
    return np.moveaxis(word, 0, axis)


def gptq_v2_case(rng, bits, gs, n_in, n_out, act_order):
    groups = n_in // gs
    q = rng.integers(0, 1 << bits, size=(n_in, n_out))
    z = rng.integers(0, 1 << bits, size=(groups, n_out))
    scales = (rng.standard_normal((groups, n_out)) * 0.01).astype(np.float16)
    if act_order:
        g_idx = (rng.permutation(n_in) // gs).astype(np.int32)
    else:
        g_idx = (np.arange(n_in) // gs).astype(np.int32)
    qweight = pack_along(q, bits, 0).astype("<u4")
    qzeros = pack_along(z, bits, 1).astype("<u4")
    diff = (q - z[g_idx]).astype(np.int32).astype(np.float32)
    exp = (diff * scales[g_idx].astype(np.float32)).astype("<f4")
    out = u32(bits, gs, n_in, n_out, 1 if act_order else 0)
    out += qweight.tobytes() + scales.astype("<f2").tobytes() + qzeros.tobytes()
    if act_order:
        out += g_idx.astype("<i4").tobytes()
    return out + exp.tobytes()


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(20240611)
    cases = {
        "e5m2_0.bin": e5m2_case(rng, 37, 300, 16, 64, 1),
        "e5m2_1.bin": e5m2_case(rng, 130, 129, 128, 128, 0),
        "e5m2_2.bin": e5m2_case(rng, 9, 77, 4, 8, 2),
        "gptq_v2_4.bin": gptq_v2_case(rng, 4, 32, 256, 72, True),
        "gptq_v2_8.bin": gptq_v2_case(rng, 8, 64, 192, 36, False),
    }
    for name, data in cases.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
