#!/usr/bin/python3
"""`mneme load` of NPZ (stored and deflated) and PyTorch .pth files against
numpy.load, torch.load and `cat` on the same files, in one session.

    scripts/bench_archives.py [--dir /tmp/mneme-archives] [--size 320M] [--reps 5]

Writes (once; reused when present) model.npz (np.savez, stored),
model_deflated.npz (np.savez_compressed) and model.pth (torch.save of the same
state dict), each holding float32 standard-normal tensors of llama-like
shapes. Every timing starts with the file in the page cache. numpy.load and
torch.load are timed in this process (interpreter start-up excluded) and must
produce every array; mneme and cat are timed as processes. Prints the median
and min-max of each, as seconds and as GB/s of file bytes.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def tensors(total_bytes):
    rng = np.random.default_rng(0)
    out, size, i = {}, 0, 0
    while size < total_bytes:
        shape = (4096, 2560) if i % 3 else (2560,)  # weights and the odd norm vector
        out[f"layers.{i}.weight"] = rng.standard_normal(shape, dtype=np.float32)
        size += out[f"layers.{i}.weight"].nbytes
        i += 1
    return out


def timed(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/mneme-archives")
    ap.add_argument("--size", default="320M")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--mneme", default=os.path.join(ROOT, "build", "mneme"))
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    files = {k: os.path.join(a.dir, k) for k in ("model.npz", "model_deflated.npz", "model.pth")}

    try:
        import torch
    except ImportError:
        torch = None
        print("torch not installed: the .pth case is skipped", file=sys.stderr)
    if not all(os.path.exists(f) for f in files.values()):
        state = tensors(parse_size(a.size))
        np.savez(files["model.npz"], **state)
        np.savez_compressed(files["model_deflated.npz"], **state)
        if torch is not None:
            torch.save({k: torch.from_numpy(v) for k, v in state.items()}, files["model.pth"])

    def np_load(path):
        with np.load(path) as z:
            for k in z.files:
                z[k]

    rows = []
    for name, path in files.items():
        if not os.path.exists(path):
            continue
        size = os.path.getsize(path)
        run(["cat", path])  # warm the page cache
        cases = {
            "cat": lambda: run(["sh", "-c", f"cat '{path}' > /dev/null"]),
            "mneme load (1 thread)": lambda: run([a.mneme, "load", path, "--threads", "1"]),
            "mneme load (2 threads)": lambda: run([a.mneme, "load", path, "--threads", "2"]),
        }
        if name.endswith(".npz"):
            cases["numpy.load"] = lambda: np_load(path)
        elif torch is not None:
            cases["torch.load"] = lambda: torch.load(path)
        for label, fn in cases.items():
            t = timed(fn, a.reps)
            med = statistics.median(t)
            rows.append((name, size, label, med, min(t), max(t)))
            print(f"{name:20s} {size / 1e6:7.1f} MB  {label:24s} {med:7.3f} s  "
                  f"(min {min(t):.3f}, max {max(t):.3f})  {size / med / 1e9:6.2f} GB/s", flush=True)


if __name__ == "__main__":
    main()
