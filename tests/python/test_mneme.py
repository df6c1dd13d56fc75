"""import mneme: every family byte for byte against the C++ CLI, torch.load and
numpy.load; zero copy; streaming; errors; Ctrl-C; two loads at once."""
import json
import os
import pathlib
import signal
import struct
import subprocess
import sys
import threading

import pytest

import mneme
from conftest import FIXTURES, ROOT, SAMPLES, need, server

np = need("numpy")


def read_safetensors(path):
    """An independent reader of what the C++ CLI wrote: name -> (dtype, shape, bytes)."""
    data = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], tuple(t["shape"]), data[8 + n + a:8 + n + b])
    return out


def models():
    """Every model the repository and the golden fixtures hold as files (the
    quantized safetensors goldens need parameters from their .expected.json:
    the C++ tests take those)."""
    found = [SAMPLES / "q4k-q6k.gguf", SAMPLES / "gptq", SAMPLES / "fp8", ROOT / "fixtures" / "sample-model"]
    for family in ("npz", "pth"):
        folder = FIXTURES / family
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.suffix in (".npz", ".pth"))
    return found


@pytest.mark.parametrize("model", models(), ids=lambda p: p.name)
def test_every_family_matches_the_cli_byte_for_byte(model, tmp_path):
    out = tmp_path / "cli.safetensors"
    subprocess.run([os.environ["MNEME_CLI"], "remember", str(model), "--to", "bf16", "--keep-scales", "-q", "-o", str(out)],
                   check=True)
    want = read_safetensors(out)
    got = mneme.load_file(model, dtype="bf16")
    assert list(got) == list(want)
    for name, array in got.items():
        dtype, shape, raw = want[name]
        assert array.dtype == dtype and array.shape == shape, name
        assert bytes(memoryview(array).cast("B")) == raw, name


def test_pth_and_npz_equal_torch_load_and_numpy_load():
    torch = need("torch")
    pths = sorted((FIXTURES / "pth").glob("*.pth"))
    npzs = sorted((FIXTURES / "npz").glob("*.npz"))
    assert pths and npzs
    for path in pths:
        ref = torch.load(path, map_location="cpu", weights_only=True)
        got = mneme.load_file(path)
        assert set(got) == set(k for k, v in ref.items() if isinstance(v, torch.Tensor))
        for name, array in got.items():
            t = torch.from_dlpack(array)
            assert t.dtype == ref[name].dtype and torch.equal(t, ref[name].contiguous()), name
    for path in npzs:
        ref = np.load(path)
        got = mneme.load_file(path)
        assert set(got) == set(ref.files)
        for name, array in got.items():
            a = np.asarray(array)
            assert a.dtype == ref[name].dtype and a.shape == ref[name].shape
            assert a.tobytes() == np.ascontiguousarray(ref[name]).tobytes(), name


def test_zero_copy_and_ownership():
    torch = need("torch")
    with mneme.safe_open(SAMPLES / "gptq", dtype="bf16") as f:
        arrays = dict(f.tensors())
    for name, array in arrays.items():  # still valid after the block
        t = torch.from_dlpack(array)
        assert t.dtype == torch.bfloat16
        assert t.data_ptr() == array.data_ptr  # the producer's memory, no copy
        n = np.asarray(array)
        assert n.ctypes.data == array.data_ptr and n.dtype == np.uint16  # BF16 bits
        assert np.array_equal(n.view(np.uint16), t.view(torch.int16).numpy().view(np.uint16))
    del arrays
    f32 = mneme.load_file(SAMPLES / "q4k-q6k.gguf", dtype="f32")
    a = next(iter(f32.values()))
    assert np.from_dlpack(a).ctypes.data == a.data_ptr


def test_keys_get_tensor_and_selection():
    with mneme.safe_open(ROOT / "fixtures" / "sample-model", tensors=lambda n: n.endswith("weight")) as f:
        keys = f.keys()
        assert keys and all(k.endswith("weight") for k in keys)
        first = f.get_tensor(keys[-1])
        assert first.name == keys[-1]
        assert f.get_tensor(keys[-1]).data_ptr == first.data_ptr  # kept by the handle
        rest = dict(f.tensors())
        assert set(rest) | {keys[-1]} == set(keys)
    only = mneme.load_file(ROOT / "fixtures" / "sample-model", tensors=[keys[0]])
    assert list(only) == [keys[0]]


def test_every_io_mode_loads_the_same_bytes():
    model = ROOT / "fixtures" / "sample-model"
    want = {k: bytes(memoryview(v).cast("B")) for k, v in mneme.load_file(model, dtype="bf16").items()}
    for io in ("uring", "pread", "mmap"):
        got = mneme.load_file(model, dtype="bf16", io=io)
        assert {k: bytes(memoryview(v).cast("B")) for k, v in got.items()} == want, io
    with pytest.raises(ValueError):
        mneme.load_file(model, io="dma")


def test_inspect_reads_headers():
    info = mneme.inspect(SAMPLES / "gptq")
    assert info.format == "safetensors"
    weight = next(t for t in info.tensors if t.type.startswith("GPTQ"))
    assert weight.scheme.startswith("gptq 4-bit")


def test_errors_have_their_classes(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 40) + b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 99]}}')
    with pytest.raises(mneme.ParseError):
        mneme.load_file(bad)
    with pytest.raises(mneme.IOError):
        mneme.load_file(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x01\x02not a model at all" * 10)
    with pytest.raises(mneme.Error):
        mneme.inspect(garbage)
    with pytest.raises(ValueError):
        mneme.load_file(SAMPLES / "gptq", dtype="int4")


def test_limits_are_set_by_name_at_their_boundary(tmp_path):
    # Issue 14, item 4, from Python: the CLI's caps by name, underscores for dashes.
    header = b'{"__metadata__":{"k":"v"},' + b",".join(
        b'"t%02d":{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]}' % (i, 4 * i, 4 * i + 4)
        for i in range(30)) + b"}"
    assert len(header) > 1024  # the header cap's floor
    model = tmp_path / "thirty.safetensors"
    model.write_bytes(struct.pack("<Q", len(header)) + header + bytes(4 * 30))
    assert len(mneme.load_file(model, limits={"tensors": 30})) == 30
    with pytest.raises(mneme.LimitError, match="--max-tensors"):
        mneme.load_file(model, limits={"tensors": 29})
    assert len(mneme.inspect(model, limits={"header_bytes": len(header)}).tensors) == 30
    with pytest.raises(mneme.LimitError, match="--max-header-bytes"):
        mneme.inspect(model, limits={"header_bytes": len(header) - 1})
    with pytest.raises(ValueError, match="no cap named"):
        mneme.inspect(model, limits={"tensor": 30})
    with pytest.raises(ValueError, match="at least 8"):
        mneme.inspect(model, limits={"nesting": 7})
    out = tmp_path / "out.safetensors"
    with pytest.raises(mneme.LimitError):
        mneme.remember(model, out, limits={"tensors": 29})
    assert not out.exists()


@pytest.mark.xfail(strict=False, reason=(
    "open defect: once in CI (adec696+1, ctest -j 2) the model loaded beside another load "
    "differed from the same model loaded alone; not reproduced in 180 local runs, with and "
    "without CPU contention. Kept running so that a recurrence shows as XFAIL, not hidden."))
def test_two_loads_at_once_in_two_threads():
    results, errors = {}, []

    def load(key, model):
        try:
            results[key] = mneme.load_file(model, dtype="f32", threads=1 if key == "a" else 2)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=load, args=("a", SAMPLES / "q4k-q6k.gguf")),
               threading.Thread(target=load, args=("b", ROOT / "fixtures" / "sample-model"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results["a"] and results["b"]
    alone = mneme.load_file(SAMPLES / "q4k-q6k.gguf", dtype="f32")
    assert all(bytes(memoryview(alone[k]).cast("B")) == bytes(memoryview(v).cast("B"))
               for k, v in results["a"].items())


def test_tensors_arrive_while_the_load_runs():
    proxy = server("MNEME_FAULT_URL")
    rel = "repo-fixtures/sample-model/model.safetensors.index.json"
    seen = []
    with mneme.safe_open(f"{proxy}/rate=400000~py-stream-{os.getpid()}/{rel}",
                         progress=lambda done, total: seen.append((done, total))) as f:
        it = f.tensors()
        name, first = next(it)
        at_first = seen[-1] if seen else (0, 1)
        rest = list(it)
    assert at_first[0] < at_first[1]  # the first tensor came before the last byte was decoded
    assert len(rest) + 1 == len(mneme.load_file(ROOT / "fixtures" / "sample-model"))


def test_keyboard_interrupt_stops_a_remember_and_leaves_nothing(tmp_path):
    proxy = server("MNEME_FAULT_URL")
    rel = "repo-fixtures/sample-model/model.safetensors.index.json"
    url = f"{proxy}/rate=20000~py-int-{os.getpid()}/{rel}"  # ~20 KB/s: many seconds
    out = tmp_path / "out.safetensors"
    code = (f"import mneme, sys\n"
            f"try:\n mneme.remember({url!r}, {str(out)!r})\n"
            f"except KeyboardInterrupt:\n print('interrupted'); sys.exit(3)\n")
    p = subprocess.Popen([sys.executable, "-c", code], env=os.environ, stdout=subprocess.PIPE, text=True)
    threading.Event().wait(1.5)
    p.send_signal(signal.SIGINT)
    stdout, _ = p.communicate(timeout=20)
    assert p.returncode == 3 and "interrupted" in stdout
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary


def test_backpressure_never_stalls_tensors_in_flight(tmp_path):
    """Three shards of one 8 MiB tensor each (two chunks apiece, interleaved
    across shards) under a budget that holds one tensor and a half: decode
    threads waiting for room must never be the ones the tensors in flight
    need. Run in a child so that a stall fails the test instead of hanging it."""
    rng = np.random.default_rng(1)
    (tmp_path / "model").mkdir()
    weights = {}
    for i in range(3):
        a = rng.standard_normal((2048, 1024), dtype=np.float32)
        weights[f"w{i}"] = a
        header = json.dumps({f"w{i}": {"dtype": "F32", "shape": [2048, 1024],
                                        "data_offsets": [0, a.nbytes]}}).encode()
        header += b" " * (-len(header) % 8)
        (tmp_path / "model" / f"m-0000{i + 1}-of-00003.safetensors").write_bytes(
            struct.pack("<Q", len(header)) + header + a.tobytes())
    # Five times, checking every byte: two chunks of one tensor waiting for room
    # at once once allocated it twice, and the first one's writes went to freed memory.
    np.save(tmp_path / "want.npy", np.stack([weights[f"w{i}"] for i in range(3)]))
    code = ("import mneme, sys, numpy as np\n"
            f"want = np.load({str(tmp_path / 'want.npy')!r})\n"
            "for _ in range(5):\n"
            f"    got = mneme.load_file({str(tmp_path / 'model')!r}, threads=2, budget=12 << 20)\n"
            "    assert all(np.array_equal(np.asarray(got[f'w{i}']), want[i]) for i in range(3))\n"
            "print(sorted(got))\n")
    p = subprocess.run([sys.executable, "-c", code], env=os.environ, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "['w0', 'w1', 'w2']"
