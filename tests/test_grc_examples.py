"""Every examples/*.grc compiles with grcc against this checkout's block ymls."""

import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.grc"))


def test_examples_exist():
    assert EXAMPLES, "examples/ holds no .grc flowgraph"


@pytest.mark.parametrize("grc", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_grcc_compiles(grc, tmp_path):
    grcc = shutil.which("grcc")
    assert grcc, "grcc (GNU Radio Companion compiler) not found; install gnuradio"
    env = dict(os.environ, GRC_BLOCKS_PATH=str(REPO / "grc"))
    result = subprocess.run([grcc, "-o", str(tmp_path), str(grc)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    generated = list(tmp_path.glob("*.py"))
    assert generated, f"grcc wrote no Python for {grc.name}"
    compile(generated[0].read_text(), str(generated[0]), "exec")
