"""Library modules import no GNU Radio; the lazy package exposes the blocks; CMake installs every .py."""

import pathlib
import subprocess
import sys

import pytest

import gnuradio.specenc

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["dsp", "sigmf_io"])
def test_library_module_imports_no_gnuradio_runtime(module):
    code = (f"import sys; import gnuradio.specenc.{module}; "
            "bad = sorted(m for m in sys.modules if m.startswith(('gnuradio.gr', 'pmt')));"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env=None, cwd=REPO,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_blocks_are_reachable_lazily(specenc_cpp):
    from gnuradio import specenc

    assert specenc.psd is specenc_cpp.psd
    assert specenc.sigmf_source.__name__ == "sigmf_source"


def test_cmake_install_covers_every_python_file():
    """build/install_manifest.txt (from the last `make build`) lists every .py of the package
    that existed then (files added since are left for the next build)."""
    manifest = REPO / "build" / "install_manifest.txt"
    if not manifest.is_file():
        pytest.skip(f"SKIPPED: no {manifest}; run `make build`")
    installed = {pathlib.PurePath(p).as_posix() for p in manifest.read_text().split()}
    package = REPO / "python" / "specenc"
    missing = [str(p.relative_to(package)) for p in package.rglob("*.py")
               if "bindings" not in p.parts and "__pycache__" not in p.parts
               and p.stat().st_mtime < manifest.stat().st_mtime
               and not any(i.endswith("/gnuradio/specenc/" + p.relative_to(package).as_posix()) for i in installed)]
    assert not missing, f"not installed by python/specenc/CMakeLists.txt (rerun make build?): {missing}"
    weights = [p.name for p in (package / "weights").glob("*") if p.suffix in (".safetensors", ".json", ".md")
               and p.stat().st_mtime < manifest.stat().st_mtime]
    assert all(any(i.endswith("/gnuradio/specenc/weights/" + w) for i in installed) for w in weights), weights
    assert any(i.endswith("/bin/specenc") for i in installed)
    assert any(i.endswith("share/gnuradio/grc/blocks/specenc_psd.block.yml") for i in installed)
