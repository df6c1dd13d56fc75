"""mneme: stream model weights from anywhere and decode every quantization.

Sources are what the ``mneme`` command takes: a path, a directory, an index
file, several shards (a list), ``-``, or a URL (``http(s)://``, ``s3://``,
``hf://``). Tensors come out as :class:`Array`, which own their memory and
convert without a copy::

    import mneme, torch
    with mneme.safe_open("model/", dtype="bf16") as f:
        for name, array in f.tensors():          # as each tensor is decoded
            weights[name] = torch.from_dlpack(array)

Errors are :class:`Error` subclasses, one per kind: :class:`ParseError`,
:class:`UnsupportedError`, :class:`LimitError`, :class:`SecurityError`,
:class:`IOError` (and its :class:`NetworkError`), :class:`CancelledError`.
"""
import dataclasses
import os
import typing

from . import _mneme
from ._mneme import (Array, CancelledError, Error, IOError, LimitError, NetworkError,
                     ParseError, SecurityError, UnsupportedError)

__all__ = ["Array", "ModelInfo", "TensorInfo", "safe_open", "load_file", "inspect",
           "remember", "convert", "Error", "ParseError", "UnsupportedError", "LimitError",
           "SecurityError", "IOError", "NetworkError", "CancelledError"]

Sources = typing.Union[str, os.PathLike, typing.Sequence[typing.Union[str, os.PathLike]]]


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor as the headers describe it (nothing is decoded)."""
    name: str
    dtype: str          # the stored element type ("F32", "I32" for GPTQ words, ...)
    type: str           # as users know it: "Q4_K", "GPTQ4", "F8_E4M3+scale", "BF16", ...
    shape: tuple
    scheme: str         # "gptq 4-bit group 128", "" for plain tensors
    stored_bytes: int


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What :func:`inspect` found: format, metadata and every tensor."""
    format: str
    version: int
    metadata: dict
    tensors: list
    warnings: list      # (tensor or "", message): what could not be resolved


def inspect(sources: Sources, *, config=None, limits=None) -> ModelInfo:
    """Reads only the headers of a model (any format, any source); ``limits``
    as for :class:`safe_open`."""
    info = _mneme.inspect(_sources(sources), config, limits)
    tensors = [TensorInfo(t["name"], t["dtype"], t["type"], tuple(t["shape"]), t["scheme"],
                          t["stored_bytes"]) for t in info["tensors"]]
    return ModelInfo(info["format"], info["version"], info["metadata"], tensors,
                     list(info["warnings"]))


class safe_open:
    """Streams a model; use it as a context manager.

    ``safe_open(sources, *, dtype=None, threads=None, budget=None, tensors=None,
    progress=None, config=None, io=None, limits=None)``

    dtype     "bf16", "f16" or "f32": float tensors are converted and
              quantized ones decoded to it; None keeps floats as stored
              (quantized tensors decode to BF16).
    threads   decode threads (default: the cores).
    budget    bytes the run may hold at once (default: 64 MiB, raised to the
              largest tensor's need); tensors decoded but not yet taken count
              against it too, so a slow consumer slows the load down instead
              of filling memory.
    tensors   a list of names, or a predicate on the name: only those are read.
    progress  callable(done_bytes, total_bytes), called from a worker thread.
    config    the model's config.json when it is not beside the weights.
    io        how local files are read, as the CLI's --io: "auto" (the
              default: mapped, zero copy, with pread where a file cannot be
              mapped), "mmap", "pread" or "uring". A file truncated while it
              is read is an IOError in every mode.
    limits    the caps that protect the parsers from hostile headers, by the
              CLI's names (``mneme load --help``) with underscores:
              ``{"tensors": 2_000_000, "header_bytes": 1 << 28}``. Going over
              one is a LimitError naming its option; a name that is no cap or
              a value below its floor is a ValueError.

    The load starts at once and runs in the background (the GIL released).
    ``tensors()`` yields ``(name, Array)`` as each tensor finishes, in that
    order, and keeps nothing; ``get_tensor(name)`` waits for one tensor and
    keeps it (and those that finished before it) in the handle until the block
    ends; ``tensors()`` yields those too. A tensor ``tensors()`` has handed
    over is not kept: ``get_tensor`` cannot return it again. Arrays own their memory and
    stay valid after the block. Ctrl-C or :meth:`cancel` stop the run; leaving
    the block cancels whatever has not finished.
    """

    def __init__(self, sources: Sources, *, dtype=None, threads=None, budget=None, tensors=None,
                 progress=None, config=None, io=None, limits=None):
        self._handle = _mneme.open(_sources(sources), dtype, threads, budget, tensors, progress,
                                   config, io, limits)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def keys(self) -> list:
        """Every tensor name the load will produce, in plan order."""
        return self._handle.keys()

    def metadata(self) -> dict:
        """The model's text metadata (safetensors __metadata__, GGUF scalars)."""
        return self._handle.metadata()

    def get_tensor(self, name: str) -> Array:
        """The tensor ``name``, waiting until it is decoded."""
        return self._handle.get_tensor(name)

    def tensors(self) -> typing.Iterator[typing.Tuple[str, Array]]:
        """``(name, Array)`` for every tensor, as each one finishes."""
        while True:
            array = self._handle.next()
            if array is None:
                return
            yield array.name, array

    def cancel(self):
        """Stops the load (tensors already handed out stay valid)."""
        self._handle.close()

    close = cancel


def load_file(sources: Sources, **options) -> typing.Dict[str, Array]:
    """Loads every tensor (``safe_open``'s options) into a dict, in plan order."""
    with safe_open(sources, **options) as f:
        arrays = dict(f.tensors())
        return {name: arrays[name] for name in f.keys()}


def remember(sources: Sources, out, *, to="bf16", threads=None, budget=None, tensors=None,
             progress=None, config=None, io=None, limits=None, overwrite=False):
    """Decodes a model into one safetensors file, as ``mneme remember`` does.

    The file appears only when complete (a temporary beside it is synced and
    renamed); an error or Ctrl-C leaves nothing. An existing ``out`` is
    replaced only with ``overwrite=True``.
    """
    _mneme.remember(_sources(sources), os.fspath(out), "safetensors", to, threads, budget,
                    tensors, progress, config, io, limits, overwrite)


def convert(sources: Sources, out, *, format="safetensors", dtype=None, threads=None,
            budget=None, tensors=None, progress=None, config=None, io=None, limits=None,
            overwrite=False):
    """Writes a model as safetensors or GGUF (``format``), as ``mneme convert`` does;
    float tensors keep their type unless ``dtype`` is given."""
    if format not in ("safetensors", "gguf"):
        raise ValueError("format must be 'safetensors' or 'gguf'")
    _mneme.remember(_sources(sources), os.fspath(out), format, dtype, threads, budget, tensors,
                    progress, config, io, limits, overwrite)


def _sources(sources):
    if isinstance(sources, (str, os.PathLike)):
        return [os.fspath(sources)]
    return [os.fspath(s) for s in sources]
