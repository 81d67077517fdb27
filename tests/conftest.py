"""Test the BUILD TREE (or the source tree), never an installed copy of gnuradio.specenc.

`make test` runs with PYTHONPATH=build/test_modules (made by CMake's copy_module_for_tests step,
with the pybind11 module copied in). Without that, build/test_modules is put first on sys.path when
it exists. A PYTHONPATH shim that links gnuradio/specenc to this checkout's python/specenc is also
accepted (pure-Python tests only; tests needing the C++ block then skip with a reason).
"""

import os
import pathlib
import signal
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD_MODULES = REPO / "build" / "test_modules"
SOURCE_PACKAGE = REPO / "python" / "specenc"


def _shim_on_pythonpath():
    for entry in filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        pkg = pathlib.Path(entry) / "gnuradio" / "specenc"
        if pkg.exists() and pkg.resolve() == SOURCE_PACKAGE:
            return True
    return False


if not _shim_on_pythonpath() and BUILD_MODULES.is_dir() and str(BUILD_MODULES) not in sys.path[:1]:
    sys.path.insert(0, str(BUILD_MODULES))
    # subprocesses started by tests (CLI runs) import the same tree
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BUILD_MODULES), os.environ.get("PYTHONPATH")]))

import gnuradio.specenc  # noqa: E402  (after the path is set)

PACKAGE_DIR = pathlib.Path(gnuradio.specenc.__file__).resolve().parent
FROM_BUILD = PACKAGE_DIR == (BUILD_MODULES / "gnuradio" / "specenc").resolve()
assert FROM_BUILD or PACKAGE_DIR == SOURCE_PACKAGE, (
    f"gnuradio.specenc was imported from {PACKAGE_DIR}, not from this checkout's build tree "
    f"({BUILD_MODULES}) or source; run `make build` (tests never use an installed copy)")


def shared_dir():
    """The shared data folder: $SPECENC_SHARED, else <repo>/../shared."""
    return pathlib.Path(os.environ.get("SPECENC_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_iq():
    """Folder of real SigMF captures; skips LOUDLY when absent."""
    path = shared_dir() / "data" / "iq"
    if not any(path.glob("*.sigmf-meta")):
        pytest.skip(f"SKIPPED: real IQ captures not found at {path} (set SPECENC_SHARED)")
    return path


@pytest.fixture(scope="session")
def specenc_cpp():
    """The compiled pybind11 module; fails in the build tree, skips (with reason) in a source-only run."""
    try:
        from gnuradio.specenc import specenc_python
    except ImportError as exc:
        if FROM_BUILD:
            raise
        pytest.skip(f"SKIPPED: C++ blocks need the build tree (make build), source-tree run: {exc}")
    return specenc_python


@pytest.fixture
def ctrl_c_handled():
    """Python's own Ctrl-C handler for the test: a suite started in a script's background ignores SIGINT, and the
    code under test leaves an ignored signal ignored (audit 68: an endless flowgraph test ran for ever)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
