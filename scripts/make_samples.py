#!/usr/bin/python3
"""Writes the small quantized sample models that scripts/demo.sh decodes, each
well under 1 MiB, deterministic, into OUT_DIR (default fixtures/samples in the
repository):

    q4k-q6k.gguf   GGUF v3, one llama-like layer (dim 256, ffn 512): Q4_K and
                   Q6_K weights, F32 norms, general.* / llama.* metadata
    gptq/          GPTQ 4-bit, group 128, sym (model.safetensors with
                   qweight/qzeros/scales/g_idx for two linear layers, an F16
                   norm, config.json)
    fp8/           FP8 E4M3 with 128x128 block scales (weight_scale_inv), a
                   static input_scale and a BF16 norm, config.json

    scripts/make_samples.py [OUT_DIR] [--seed 11]

The GGUF writer is gen_gguf_model.py's, the safetensors writer
gen_safetensors_model.py's. Quantized weights are real quantizations of
normal weights (std 0.02), so decoded values look like a model's. Needs NumPy
(Debian: python3-numpy).
"""
import argparse
import json
import os
import sys

import numpy as np

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, SCRIPTS)
import gen_gguf_model  # noqa: E402
import gen_safetensors_model  # noqa: E402

GROUP = 128
FP8_BLOCK = 128
E4M3_MAX = 448.0


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def bf16_bytes(v):
    """Round-to-nearest-even float32 -> bfloat16 bytes."""
    b = np.asarray(v, dtype="<f4").view("<u4").astype("<u8")
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype("<u2").tobytes()


def make_gguf(path, rng):
    dim, ffn = 256, 512
    tensors = gen_gguf_model.layer_tensors(0, dim, ffn)
    kv = [
        ("general.architecture", "llama"),
        ("general.name", "mneme sample Q4_K/Q6_K"),
        ("general.file_type", 15),  # LLAMA_FTYPE_MOSTLY_Q4_K_M
        ("llama.block_count", 1),
        ("llama.embedding_length", dim),
        ("llama.feed_forward_length", ffn),
    ]
    return gen_gguf_model.write_gguf(path, tensors, kv, rng)


def gptq_layer(rng, base, in_features, out_features):
    """GPTQ v1 4-bit symmetric: qweight [in/8, out] (8 input rows per word,
    row 8i+j in bits 4j..4j+3), qzeros [groups, out/8] storing zero - 1 = 7,
    scales F16 [groups, out], g_idx I32 [in] (row // group, as desc_act=false
    checkpoints write it)."""
    groups = in_features // GROUP
    w = rng.standard_normal((in_features, out_features), dtype=np.float32) * 0.02
    wg = w.reshape(groups, GROUP, out_features)
    scales = (np.abs(wg).max(axis=1) / 7.0).astype(np.float16)  # [groups, out]
    q = np.clip(np.rint(wg / scales[:, None, :].astype(np.float32)) + 8, 0, 15).astype(np.uint32)
    q = q.reshape(in_features // 8, 8, out_features)
    qweight = np.zeros((in_features // 8, out_features), dtype=np.uint32)
    for j in range(8):
        qweight |= q[:, j, :] << np.uint32(4 * j)
    qzeros = np.full((groups, out_features // 8), 0x77777777, dtype=np.uint32)
    g_idx = (np.arange(in_features) // GROUP).astype("<i4")
    return [
        (base + ".qweight", "I32", [in_features // 8, out_features], qweight.astype("<u4").tobytes()),
        (base + ".qzeros", "I32", [groups, out_features // 8], qzeros.astype("<u4").tobytes()),
        (base + ".scales", "F16", [groups, out_features], scales.astype("<f2").tobytes()),
        (base + ".g_idx", "I32", [in_features], g_idx.tobytes()),
    ]


def make_gptq(out_dir, rng):
    os.makedirs(out_dir, exist_ok=True)
    hidden, inter = 256, 512
    tensors = gptq_layer(rng, "model.layers.0.mlp.up_proj", hidden, inter)
    tensors += gptq_layer(rng, "model.layers.0.mlp.down_proj", inter, hidden)
    tensors.append(("model.layers.0.post_attention_layernorm.weight", "F16", [hidden],
                    np.ones(hidden, dtype="<f2").tobytes()))
    path = os.path.join(out_dir, "model.safetensors")
    gen_safetensors_model.write_shard(path, tensors, {"format": "pt"})
    write_json(os.path.join(out_dir, "config.json"), {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": 1,
        "torch_dtype": "float16",
        "quantization_config": {
            "quant_method": "gptq",
            "bits": 4,
            "group_size": GROUP,
            "desc_act": False,
            "sym": True,
            "checkpoint_format": "gptq",
        },
    })
    return os.path.getsize(path)


def e4m3_table():
    """The 127 non-negative finite E4M3FN values, by code (0x00..0x7E)."""
    codes = np.arange(0x7F)
    exp, man = codes >> 3, codes & 7
    return np.where(exp == 0, man / 8.0 * 2.0 ** -6, (1 + man / 8.0) * 2.0 ** (exp - 7.0))


def to_e4m3(x):
    """Nearest E4M3FN codes of `x` (already within +-448)."""
    table = e4m3_table()
    mag = np.abs(x)
    hi = np.clip(np.searchsorted(table, mag), 1, len(table) - 1)
    code = np.where(mag - table[hi - 1] <= table[hi] - mag, hi - 1, hi).astype(np.uint8)
    return code | np.where(x < 0, 0x80, 0).astype(np.uint8)


def make_fp8(out_dir, rng):
    """DeepSeek-V3 style: W ~= e4m3(W / s) * s per 128x128 block, s stored
    as weight_scale_inv; a static per-tensor input_scale beside it."""
    os.makedirs(out_dir, exist_ok=True)
    n = 256
    nb = n // FP8_BLOCK
    w = rng.standard_normal((n, n), dtype=np.float32) * 0.02
    blocks = w.reshape(nb, FP8_BLOCK, nb, FP8_BLOCK)
    scale = (np.abs(blocks).max(axis=(1, 3)) / E4M3_MAX).astype(np.float32)  # [nb, nb]
    codes = to_e4m3(blocks / scale[:, None, :, None]).reshape(n, n)
    base = "model.layers.0.mlp.down_proj"
    tensors = [
        (base + ".weight", "F8_E4M3", [n, n], codes.tobytes()),
        (base + ".weight_scale_inv", "F32", [nb, nb], scale.astype("<f4").tobytes()),
        (base + ".input_scale", "F32", [], np.array(0.0123, dtype="<f4").tobytes()),
        ("model.layers.0.post_attention_layernorm.weight", "BF16", [n], bf16_bytes(np.ones(n))),
    ]
    path = os.path.join(out_dir, "model.safetensors")
    gen_safetensors_model.write_shard(path, tensors, {"format": "pt"})
    write_json(os.path.join(out_dir, "config.json"), {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": n,
        "num_hidden_layers": 1,
        "torch_dtype": "bfloat16",
        "quantization_config": {
            "quant_method": "fp8",
            "fmt": "e4m3",
            "activation_scheme": "static",
            "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
        },
    })
    return os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?", default=os.path.join(os.path.dirname(SCRIPTS), "fixtures", "samples"))
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()

    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    for name, make in (("q4k-q6k.gguf", make_gguf), ("gptq", make_gptq), ("fp8", make_fp8)):
        size = make(os.path.join(a.out_dir, name), rng)
        print(f"{os.path.join(a.out_dir, name)}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
