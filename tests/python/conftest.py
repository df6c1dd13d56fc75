"""Shared fixtures for the Python tests (run by CTest: PYTHONPATH points at
BUILD/python, MNEME_CLI at the binary; the network servers' URLs come from
scripts/test.sh). Under CI a missing oracle (NumPy, PyTorch) is a failure,
never a skip."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "samples"
FIXTURES = pathlib.Path(os.environ.get("MNEME_FIXTURES", ROOT.parent / "shared" / "fixtures"))


def need(module):
    """Imports an oracle; a skip on a developer machine, a failure in CI."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} is not installed")


def server(var):
    url = os.environ.get(var)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{var} not set: scripts/test.sh starts the test servers")
        pytest.skip(f"{var} not set (scripts/test.sh starts the test servers)")
    return url
