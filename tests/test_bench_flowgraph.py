"""`specenc bench flowgraph` on a short scene: the three runs agree on the spectra, and the replayed run's CPU
is split by block (GNU Radio's performance counters)."""

import os
import re
import sys

import pytest

from gnuradio.specenc import cli

pytestmark = pytest.mark.usefixtures("specenc_cpp")


def test_bench_flowgraph_prints_rates_overhead_and_cpu_by_block(capsys, monkeypatch):
    monkeypatch.setenv("GR_CONF_PERFCOUNTERS_ON", "False")  # the bench turns them on for the replayed run only
    argv = ["bench", "flowgraph", "--seconds", "0.5", "--rate", "1e6", "--repeat", "1"]
    monkeypatch.setattr(sys, "argv", ["specenc"] + argv)  # the suite's options are added from sys.argv
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^full flowgraph +\d+", out, re.M) and "flowgraph overhead over the model" in out
    line = next(x for x in out.splitlines() if x.startswith("replayed run, CPU us per spectrum: "))
    per_block = {name: float(v) for name, v in re.findall(r"(\w+) (-?[\d.]+)", line.split(": ", 1)[1])}
    assert set(per_block) >= {"source", "psd", "spectrum_encoder", "anomaly_detector", "run_collector"}
    assert all(per_block[name] > 0 for name in ("psd", "spectrum_encoder", "anomaly_detector"))
    assert os.environ["GR_CONF_PERFCOUNTERS_ON"] == "False"  # restored


def test_bench_flowgraph_takes_the_rate_for_an_input_and_refuses_one_too_short(capsys, monkeypatch, tmp_path):
    import numpy as np

    from gnuradio.specenc import sigmf_io

    iq = (np.random.default_rng(0).normal(size=(60000, 2)) * 1e-2).astype(np.float32).view(np.complex64)[:, 0]
    meta = sigmf_io.write_recording(str(tmp_path / "r.sigmf-meta"), iq, 1e6, 100e6)
    argv = ["bench", "flowgraph", "--input", meta, "--rate", "2e6", "--repeat", "1"]
    monkeypatch.setattr(sys, "argv", ["specenc"] + argv)
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "r.sigmf-meta, 2 MS/s, 0.03 s" in out  # the rate given, not the recording's 1 MS/s
    assert "model: shipped default, torch on cpu" in out
    short = sigmf_io.write_recording(str(tmp_path / "s.sigmf-meta"), iq[:1000], 1e6, 100e6)
    argv = ["bench", "flowgraph", "--input", short, "--repeat", "1"]
    monkeypatch.setattr(sys, "argv", ["specenc"] + argv)
    assert cli.main(argv) == 2
    assert "1000 samples give no spectrum" in capsys.readouterr().err
