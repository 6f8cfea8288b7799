import os

import pytest

# Without a GPU, Triton kernels run in Triton's CPU interpreter. This must be set
# before triton is first imported, so it lives here.
try:
    import torch

    _HAS_CUDA = torch.cuda.is_available()
except Exception:  # pragma: no cover
    _HAS_CUDA = False
if not _HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    if _HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    """The fault suite's table (tests/faults/conftest.py), also where its kill chains ran in a
    pytest-xdist worker."""
    import importlib

    try:
        faults = importlib.import_module("faults.conftest")
    except ImportError:
        return
    faults.write_kill_table(terminalreporter)
