"""Examples (a) recorded IQ (QT GUI, offscreen) and (c) headless edge run end to end on a recording.

Both must write the same alerts as the library chain (app.flowgraph.run_chain) on the same recording
and model; (d) the scripted example runs as a script. Compilation of every example is
test_grc_examples.py's job.
"""

import gc
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from blocks_fake_model import scene_file, small_model_file

from gnuradio.specenc import sigmf_io
from gnuradio.specenc.app.flowgraph import run_chain
from gnuradio.specenc.model import load_model

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, specenc_cpp):
    folder = tmp_path_factory.mktemp("examples")
    weights = small_model_file(folder, threshold=0.0)  # every spectrum alerts: one event per kind
    meta = scene_file(folder)
    reference = run_chain(sigmf_io.read_meta(meta), load_model(weights), average=1).alerts
    assert reference
    return folder, weights, meta, reference


def compile_example(name, out):
    grcc = shutil.which("grcc")
    assert grcc, "grcc not found; install gnuradio"
    env = dict(os.environ, GRC_BLOCKS_PATH=str(REPO / "grc"))
    done = subprocess.run([grcc, "-o", str(out), str(REPO / "examples" / name)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out / name.replace(".grc", ".py")


def read_alerts(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_alerts(got, want):
    """Equal alerts; scores to float precision (batching may differ between flowgraphs)."""
    assert [{k: v for k, v in a.items() if k != "score"} for a in got] == \
        [{k: v for k, v in a.items() if k != "score"} for a in want]
    assert [a["score"] for a in got] == pytest.approx([a["score"] for a in want], rel=1e-4)


def test_headless_edge_example_runs_to_the_end(inputs, tmp_path):
    folder, weights, meta, reference = inputs
    script = compile_example("edge_headless_alerts.grc", tmp_path)
    alerts = tmp_path / "alerts.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, str(script), "-r", meta, "-m", weights, "-a", str(alerts),
                           "-z", "tcp://127.0.0.1:*"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    same_alerts(read_alerts(alerts), reference)
    assert done.stdout.count("ALERT ") == len(reference)


def test_recorded_iq_qt_example_runs_offscreen(inputs, tmp_path, monkeypatch):
    folder, weights, meta, reference = inputs
    pytest.importorskip("PyQt5")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    script = compile_example("recorded_iq_alerts.grc", tmp_path)
    spec = importlib.util.spec_from_file_location("recorded_iq_alerts", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from PyQt5 import Qt

    app = Qt.QApplication.instance() or Qt.QApplication(["test"])
    alerts = tmp_path / "alerts.jsonl"
    # The throttle runs at the recording's rate, 0.25 s here; the GUI's event loop is not needed to run it.
    tb = module.recorded_iq_alerts(alerts_file=str(alerts), model=weights, recording=meta, samp_rate=1e6)
    tb.start()
    tb.wait()
    tb.stop()
    same_alerts(read_alerts(alerts), reference)
    # Free the Qt widgets now, while the QApplication lives: a later garbage collection would crash.
    tb.close()
    del tb
    gc.collect()
    assert app is not None


def test_scripted_example(inputs, tmp_path):
    folder, weights, meta, reference = inputs
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    alerts = tmp_path / "alerts.jsonl"
    done = subprocess.run([sys.executable, str(REPO / "examples" / "scripted_flowgraph.py"), meta, "--model",
                           weights, "--alerts", str(alerts)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    same_alerts(read_alerts(alerts), reference)
    assert f"{len(reference)} alerts" in done.stdout
