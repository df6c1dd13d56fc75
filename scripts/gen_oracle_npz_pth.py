#!/usr/bin/env python3
"""Writes NumPy / PyTorch oracle archives for mneme's NPZ/NPY/.pth tests.

Usage: gen_oracle_npz_pth.py npz|pth OUTDIR

Writes the archives into OUTDIR plus, for every tensor, a .raw file holding
its contiguous little-endian C-order bytes as the reference library itself
produces them, and OUTDIR/manifest.tsv with one line per tensor:
archive<TAB>tensor name<TAB>raw file<TAB>dtype<TAB>dims (comma-separated, "" for a scalar)
dtype uses mneme's safetensors spelling (F32, BF16, BOOL, ...).
"""
import os
import pickle
import sys
import zipfile


def npz(out):
    import numpy as np

    rng = np.random.default_rng(1234)
    codes = {"b1": "BOOL", "u1": "U8", "u2": "U16", "u4": "U32", "u8": "U64",
             "i1": "I8", "i2": "I16", "i4": "I32", "i8": "I64",
             "f2": "F16", "f4": "F32", "f8": "F64"}
    arrays = {}
    for code, name in codes.items():
        for order in "<>":
            dt = np.dtype(order + code)
            if code == "b1":
                base = rng.integers(0, 2, size=(3, 4, 5)).astype(bool)
            elif code[0] in "ui":
                info = np.iinfo(np.dtype(code))
                base = rng.integers(info.min, info.max, size=(3, 4, 5), dtype=np.dtype(code), endpoint=True)
            else:
                base = (rng.standard_normal((3, 4, 5)) * 100).astype(np.dtype(code))
            arrays[f"{name}_{'le' if order == '<' else 'be'}_c"] = (base.astype(dt), name)
            arrays[f"{name}_{'le' if order == '<' else 'be'}_f"] = (np.asfortranarray(base.astype(dt)), name)
    bits = rng.integers(0, 1 << 16, size=(6, 7), dtype=np.uint16)
    bf16 = bits.astype("<u2").view("V2")
    arrays["BF16_c"] = (bf16, "BF16")
    arrays["BF16_f"] = (np.asfortranarray(bf16), "BF16")
    arrays["scalar_f8"] = (np.array(2.5, dtype="<f8"), "F64")
    arrays["empty_f4"] = (np.zeros((0, 3), dtype="<f4"), "F32")
    arrays["vec_be_i4"] = (np.arange(-5, 6, dtype=">i4"), "I32")
    arrays["rank5_f"] = (np.asfortranarray(rng.standard_normal((2, 1, 3, 1, 4)).astype("<f4")), "F32")
    # Big enough that inflating spans many 64 KiB / 1 MiB chunks.
    arrays["big_f4"] = (np.concatenate([np.zeros(200000, "<f4"),
                                        rng.standard_normal(300000).astype("<f4")]), "F32")

    lines = []

    def raw_of(key, arr):
        path = f"{key}.raw"
        le = arr.astype(arr.dtype.newbyteorder("<")) if arr.dtype.kind != "V" else arr
        with open(os.path.join(out, path), "wb") as f:
            f.write(le.tobytes(order="C"))
        return path

    plain = {k: v[0] for k, v in arrays.items()}
    np.savez(os.path.join(out, "stored.npz"), **plain)
    np.savez_compressed(os.path.join(out, "compressed.npz"), **plain)
    for key, (arr, name) in arrays.items():
        raw = raw_of(key, arr)
        dims = ",".join(str(d) for d in arr.shape)
        for archive in ("stored.npz", "compressed.npz"):
            lines.append(f"{archive}\t{key}\t{raw}\t{name}\t{dims}")
        np.save(os.path.join(out, f"{key}.npy"), arr)
        lines.append(f"{key}.npy\t{key}\t{raw}\t{name}\t{dims}")
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def pth(out):
    import torch

    torch.manual_seed(7)
    lines = []

    def raw_of(stem, key, t):
        t = t.detach().contiguous()
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        path = f"{stem}.{key}.raw"
        with open(os.path.join(out, path), "wb") as f:
            f.write(data)
        return path

    names = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
             torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
             torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}

    def save(stem, sd, flat):
        torch.save(sd, os.path.join(out, f"{stem}.pth"))
        for key, t in flat.items():
            dims = ",".join(str(d) for d in t.shape)
            lines.append(f"{stem}.pth\t{key}\t{raw_of(stem, key, t)}\t{names[t.dtype]}\t{dims}")

    base = torch.randn(6, 8)
    a2 = torch.randn(4, 5)
    sd = {
        "a": torch.randn(3, 4),
        "a2": a2,
        "a2_t": a2.t(),                        # non-contiguous, shares a2's storage
        "slice": base[1:5, ::3],               # storage offset and strides
        "row": base[2],                        # contiguous view with an offset
        "col": base[:, 5],                     # strided 1-D view
        "expand": torch.tensor([1.5, -2.0]).expand(3, 2),  # zero stride
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
        "f64": torch.randn(2, 3, dtype=torch.float64),
        "f16": torch.randn(5, 3).half(),
        "bf16": torch.randn(5, 3).bfloat16(),
        "bf16_t": torch.randn(3, 5).bfloat16().t(),
        "i64": torch.randint(-2**40, 2**40, (4, 3), dtype=torch.int64),
        "i32": torch.randint(-2**31, 2**31 - 1, (7,), dtype=torch.int32),
        "i16": torch.randint(-2**15, 2**15 - 1, (2, 2, 2), dtype=torch.int16),
        "i8": torch.randint(-128, 127, (9,), dtype=torch.int8),
        "u8": torch.randint(0, 255, (3, 3), dtype=torch.uint8),
        "bool": torch.rand(4, 4) > 0.5,
        "perm": torch.randn(2, 3, 4).permute(2, 0, 1),
    }
    save("views", sd, sd)

    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    save("module", model.state_dict(), model.state_dict())

    params = {"w": torch.nn.Parameter(torch.randn(3, 2)), "b": torch.nn.Parameter(torch.randn(2))}
    save("params", params, params)

    nested = {"model": {"x": torch.randn(2, 2), "y": torch.arange(6).reshape(2, 3)}, "epoch": 3,
              "lr": 0.5, "note": "hi"}
    torch.save(nested, os.path.join(out, "nested.pth"))
    for key, t in {"model.x": nested["model"]["x"], "model.y": nested["model"]["y"]}.items():
        dims = ",".join(str(d) for d in t.shape)
        lines.append(f"nested.pth\t{key}\t{raw_of('nested', key, t)}\t{names[t.dtype]}\t{dims}")

    # Big-endian twin of "views": the same pickle, storages byte-swapped and
    # byteorder "big" (torch on x86 cannot write one itself).
    itemsize = {}

    class Scan(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch" and name.endswith("Storage"):
                return name
            if module == "collections" and name == "OrderedDict":
                import collections
                return collections.OrderedDict
            return lambda *a, **k: None

        def persistent_load(self, pid):
            sizes = {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2,
                     "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1,
                     "ByteStorage": 1, "BoolStorage": 1}
            itemsize[pid[2]] = sizes[pid[1]]
            return None

    src = zipfile.ZipFile(os.path.join(out, "views.pth"))
    pkl_name = next(n for n in src.namelist() if n.endswith("/data.pkl"))
    prefix = pkl_name[: -len("data.pkl")]
    Scan(src.open(pkl_name)).load()
    with zipfile.ZipFile(os.path.join(out, "views_be.pth"), "w", zipfile.ZIP_STORED) as dst:
        if prefix + "byteorder" not in src.namelist():  # torch < 2.1 writes none
            dst.writestr(prefix + "byteorder", b"big")
        for info in src.infolist():
            data = src.read(info.filename)
            rel = info.filename[len(prefix):]
            if rel == "byteorder":
                data = b"big"
            elif rel.startswith("data/"):
                n = itemsize[rel[len("data/"):]]
                data = b"".join(data[i:i + n][::-1] for i in range(0, len(data), n))
            dst.writestr(info.filename, data)
    for line in list(lines):
        if line.startswith("views.pth\t"):
            lines.append("views_be.pth\t" + line.split("\t", 1)[1])

    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    {"npz": npz, "pth": pth}[mode](out)
