#!/usr/bin/python3
"""Every figure of issue 15 against its floor, measured in the same run on the
machine at hand, written as one Markdown table (and, with --write, into
docs/performance.md between the bench.py markers).

    scripts/bench.py [--build build/release] [--work /tmp/mneme-bench]
                     [--out-dir DIR] [--reps 7] [--only load,scaling,...] [--write]

Whole processes are timed from outside (start to exit), page cache warm,
command and floor alternating A B A B, so a drifting machine moves both; each
row gives the medians, the spread (min-max) and the median of the pair-by-pair
ratios, as a rate: floor seconds / mneme seconds (1.0 = at the floor).

  load      mneme load of a 2 GiB four-shard F32 model -> BF16, 1 and 2 threads
            floor: dd bs=1M of the same files to /dev/null
  scaling   mneme load of a ~1 GiB Q4_K_M-like GGUF -> BF16, 2 threads
            floor: the same with 1 thread (the ratio is the speed-up)
  remember  mneme remember of that GGUF -> BF16 safetensors in --out-dir
            floor: dd of the same output bytes to the same place, O_DIRECT
            where the filesystem takes it (buffered on tmpfs), then fsync
  stored    mneme load x.pth / x.npz --to f32 (nothing to convert)
            floor: cat of the same file to /dev/null
  inspect   mneme inspect of the bundled sample (whole process, absolute)
            floor: /bin/true
  kernels   every kernel -> BF16 (1 thread), the bench_kernels_* binaries'
            own memcpy in the same process as the floor

Models are generated once into --work (about 5 GiB) by the generators in
scripts/; .pth needs PyTorch, the rest NumPy.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = "/usr/bin/python3"
BEGIN, END = "<!-- bench.py begin -->", "<!-- bench.py end -->"


def run_once(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def alternate(a, b, reps, after=None):
    """Runs a and b in turn reps times (after one unrecorded warm-up of each);
    returns their times and the pair-by-pair ratios b/a."""
    ta, tb = [], []
    for i in range(reps + 1):
        x = run_once(a)
        if after:
            after()
        y = run_once(b)
        if after:
            after()
        if i:
            ta.append(x)
            tb.append(y)
    return ta, tb, [y / x for x, y in zip(ta, tb)]


def spread(v):
    """Median (min–max) of times in seconds, in ms below 0.1 s."""
    scale, unit = (1e3, " ms") if statistics.median(v) < 0.1 else (1, " s")
    return f"{statistics.median(v) * scale:.3f}{unit} ({min(v) * scale:.3f}–{max(v) * scale:.3f})"


class Table:
    def __init__(self):
        self.rows = []
        self.target = None  # the Highway target the kernels dispatched to

    def add(self, what, floor, ta, tb, ratios, note=""):
        self.rows.append((what, spread(ta), floor, spread(tb),
                          f"**{statistics.median(ratios):.2f}** ({min(ratios):.2f}–{max(ratios):.2f})",
                          note))
        print(" | ".join(self.rows[-1]), flush=True)

    def markdown(self):
        out = ["| mneme | median (min–max) | floor | median (min–max) | floor / mneme, pair by pair | |",
               "|---|---:|---|---:|---:|---|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out)


def ensure(path, make):
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        make()
    return path


def warm(paths):
    for p in paths:
        subprocess.run(["cat", str(p)], check=True, stdout=subprocess.DEVNULL)


def fs_type(path):
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True,
                          check=True).stdout.strip()


def bench_load(args, mneme, table):
    model = ensure(args.work / "f32x4", lambda: subprocess.run(
        [PY, ROOT / "scripts/gen_safetensors_model.py", args.work / "f32x4", "--size", "2G",
         "--shards", "4", "--dtype", "F32"], check=True))
    shards = sorted(str(p) for p in model.glob("*.safetensors"))
    warm(shards)
    dd = ["sh", "-c", 'for f; do dd if="$f" of=/dev/null bs=1M status=none; done', "dd"] + shards
    for threads in (1, 2):
        ta, tb, r = alternate([mneme, "load", str(model), "--to", "bf16", "--threads", str(threads)],
                              dd, args.reps)
        table.add(f"load 2 GiB F32 → BF16, {threads} thread{'s' * (threads > 1)}", "dd bs=1M",
                  ta, tb, r, "goal ≥ 0.8")


def gguf_model(args):
    return ensure(args.work / "q4km.gguf", lambda: subprocess.run(
        [PY, ROOT / "scripts/gen_gguf_model.py", args.work / "q4km.gguf", "--size", "1.05G"],
        check=True))


def bench_scaling(args, mneme, table):
    model = gguf_model(args)
    warm([model])
    base = [mneme, "load", str(model), "--to", "bf16", "--threads"]
    ta, tb, r = alternate(base + ["2"], base + ["1"], args.reps)
    table.add("load Q4_K_M GGUF → BF16, 2 threads", "1 thread", ta, tb, r, "speed-up, goal ≥ 1.8")


def bench_remember(args, mneme, table):
    model = gguf_model(args)
    warm([model])
    out_dir = Path(args.out_dir or args.work)
    out = out_dir / "mneme-bench-out.safetensors"
    floor_out = out_dir / "mneme-bench-floor.bin"
    info = json.loads(subprocess.run([mneme, "inspect", "--json", str(model)], check=True,
                                     capture_output=True, text=True).stdout)
    mib = -(-info["bf16_bytes"] // (4 << 20))  # whole 4 MiB blocks, as O_DIRECT needs
    kind = fs_type(out_dir)
    direct = kind != "tmpfs"
    dd = ["dd", "if=/dev/zero", f"of={floor_out}", "bs=4M", f"count={mib}", "conv=fsync",
          "status=none"] + (["oflag=direct"] if direct else [])

    def clean():
        for p in (out, floor_out):
            p.unlink(missing_ok=True)
        os.sync()

    ta, tb, r = alternate([mneme, "remember", str(model), "--to", "bf16", "-o", str(out)], dd,
                          args.reps, after=clean)
    table.add(f"remember Q4_K_M GGUF → BF16 on {kind}",
              f"dd{' oflag=direct' if direct else ''} conv=fsync", ta, tb, r, "goal ≥ 0.8 (≤ 1.25×)")


def bench_stored(args, mneme, table):
    npz = ensure(args.work / "stored.npz", lambda: subprocess.run([PY, "-c", (
        "import numpy as np, sys\n"
        "rng = np.random.default_rng(0)\n"
        "np.savez(sys.argv[1], **{f'layer{i}': rng.standard_normal((4096, 4096), dtype=np.float32)"
        " for i in range(16)})\n"), args.work / "stored.npz"], check=True))
    files = [npz]
    try:
        files.append(ensure(args.work / "stored.pth", lambda: subprocess.run([PY, "-c", (
            "import torch, sys\n"
            "g = torch.Generator().manual_seed(0)\n"
            "torch.save({f'layer{i}': torch.randn(4096, 4096, generator=g) for i in range(16)},"
            " sys.argv[1])\n"), args.work / "stored.pth"], check=True)))
    except subprocess.CalledProcessError:
        print("no PyTorch: the .pth row is left out", flush=True)
    for f in files:
        warm([f])
        ta, tb, r = alternate([mneme, "load", str(f), "--to", "f32"], ["cat", str(f)], args.reps)
        table.add(f"load stored {f.suffix} (1 GiB F32) → F32", "cat", ta, tb, r, "goal ≥ 0.8")


def bench_inspect(args, mneme, table):
    sample = ROOT / "fixtures/sample-model"
    ta, tb, r = alternate([mneme, "inspect", str(sample)], ["/bin/true"], max(args.reps, 21))
    table.add("inspect the bundled sample", "/bin/true", ta, tb, r,
              f"goal ≤ 2.5 ms: {statistics.median(ta) * 1e3:.1f} ms")


def make_many_tensors(path, n=200_000):
    """One safetensors header naming n empty tensors, as an MoE checkpoint's might."""
    import json
    import struct
    header = json.dumps({f"model.layers.{i // 256}.mlp.experts.{i % 256}.w":
                         {"dtype": "BF16", "shape": [0, 4096], "data_offsets": [0, 0]}
                         for i in range(n)}, separators=(",", ":")).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)


def bench_header(args, mneme, table):
    """Issue 14, item 5: the per-tensor cost of a 200 000-tensor header, read
    from a pipe, against the pipe itself."""
    model = ensure(args.work / "many.safetensors", lambda: make_many_tensors(args.work / "many.safetensors"))
    warm([model])
    ta, tb, r = alternate(["sh", "-c", '"$0" load - -q < "$1"', mneme, str(model)],
                          ["sh", "-c", 'cat < "$0" > /dev/null', str(model)], args.reps)
    table.add("load 200 000 empty tensors (16 MB header) from a pipe", "cat", ta, tb, r,
              f"goal ≤ 5 µs a tensor: {statistics.median(ta) / 200_000 * 1e6:.1f} µs")


def bench_kernels(args, mneme, table):
    bench_dir = Path(args.build) / "bench"
    for name, floor_key in (("bench_kernels_gguf", "memcpy"), ("bench_kernels_quant", "memcpy"),
                            ("bench_kernels_convert", "Memcpy")):
        exe = bench_dir / name
        if not exe.exists():
            print(f"{exe} not built: its rows are left out", flush=True)
            continue
        res = json.loads(subprocess.run(
            [exe, "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true",
             "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout)
        rows = [b for b in res["benchmarks"] if b.get("aggregate_name") == "median"]

        def rate(b):
            return b.get("bytes_per_second") or b.get("GB/s", 0) * 1e9

        floor = [rate(b) for b in rows if floor_key in b["run_name"] and "chunk" not in b["run_name"]]
        if not floor:
            continue
        base = statistics.median(floor)
        context = res.get("context", {})
        target = context.get("hwy_targets (first is dispatched)", "")
        if target:
            table.target = target.split(" ")[0]
        for b in rows:
            n = b["run_name"]
            to_bf16 = n.split("/real_time")[0].endswith(("/bf16", "_to_BF16")) or "f32:0" in n
            if floor_key in n or "scalar" in n or not to_bf16:
                continue
            goal = "goal ≥ 0.3" if any(k in n for k in ("IQ1", "IQ2", "TQ1")) else "goal ≥ 0.8"
            table.rows.append((f"kernel {n.replace('/real_time', '')}", f"{rate(b) / 1e9:.2f} GB/s",
                               "memcpy, same process", f"{base / 1e9:.2f} GB/s",
                               f"**{rate(b) / base:.2f}**",
                               goal))
            print(" | ".join(table.rows[-1]), flush=True)


CASES = {"load": bench_load, "scaling": bench_scaling, "remember": bench_remember,
         "stored": bench_stored, "inspect": bench_inspect, "header": bench_header,
         "kernels": bench_kernels}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build/release"))
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "mneme-bench")
    ap.add_argument("--out-dir", help="where remember writes (default: --work)")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", default=",".join(CASES))
    ap.add_argument("--write", action="store_true", help="replace the table in docs/performance.md")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    mneme = str(Path(args.build) / "mneme")
    table = Table()
    for case in args.only.split(","):
        CASES[case](args, mneme, table)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    text = (f"Measured {time.strftime('%Y-%m-%d')} by `scripts/bench.py --reps {args.reps}` on "
            f"{os.cpu_count()} cores of {cpu}"
            + (f"; kernels on Highway's {table.target} target" if table.target else "")
            + ".\n\n" + table.markdown())
    print("\n" + text)
    if args.write:
        doc = ROOT / "docs/performance.md"
        s = doc.read_text()
        if BEGIN in s:
            s = s[:s.index(BEGIN) + len(BEGIN)] + "\n" + text + "\n" + s[s.index(END):]
        else:
            s += f"\n## Every figure of issue 15 against its floor\n\n{BEGIN}\n{text}\n{END}\n"
        doc.write_text(s)


if __name__ == "__main__":
    sys.exit(main())
