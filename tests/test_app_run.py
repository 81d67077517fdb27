"""`specenc run` / `specenc demo`: outputs on disk, summary, truth matching and one-line errors."""

import json
import os
import shutil
import signal
from types import SimpleNamespace

import numpy as np
import pytest
from blocks_fake_model import scene_file, small_model_file

from gnuradio.specenc import cli, sigmf_io
from gnuradio.specenc.app import summary
from gnuradio.specenc.labels import FAMILIES


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, specenc_cpp):
    folder = tmp_path_factory.mktemp("app")
    return folder, small_model_file(folder, threshold=0.0), scene_file(folder)


def run_cli(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_writes_annotations_alerts_and_waterfall(inputs, tmp_path, capsys):
    _, weights, meta = inputs
    out, alerts, png = tmp_path / "o.sigmf-meta", tmp_path / "a.jsonl", tmp_path / "w.png"
    code, stdout, _ = run_cli(["run", meta, "--model", weights, "--out", str(out), "--alerts", str(alerts),
                               "--waterfall", str(png), "--per-spectrum"], capsys)
    assert code == 0
    rec = sigmf_io.read_meta(out)  # a valid SigMF meta pointing at the input's samples
    src = sigmf_io.read_meta(meta)
    assert rec.num_samples == src.num_samples and rec.sample_rate == src.sample_rate
    said = rec.global_["core:description"]  # the synth recording's said "truth in annotations" (audit 63)
    assert said.startswith("gr-specenc detections and alerts (the model's, not truth) on: ")
    assert said.endswith(src.global_["core:description"]) and "truth in annotations" in said
    anns = rec.annotations
    lines = [json.loads(x) for x in alerts.read_text().splitlines()]
    anomalies = [a for a in anns if a["core:label"] == "anomaly"]
    assert lines and len(anomalies) == len(lines)
    assert {a["specenc:kind"] for a in anomalies} == {a["kind"] for a in lines}
    per_spectrum = [a for a in anns if "specenc:score" in a and a["core:label"] != "anomaly"]
    n_spectra = (src.num_samples - 1024) // 512 + 1
    assert len(per_spectrum) == n_spectra
    assert [a["core:sample_start"] for a in per_spectrum] == [512 * i for i in range(n_spectra)]
    emissions = [a for a in anns if "specenc:spectra" in a]
    assert emissions and all(a["core:label"] in FAMILIES for a in emissions)
    assert all(src.center_freq - 5e5 <= a["core:freq_lower_edge"] < a["core:freq_upper_edge"] <= src.center_freq + 5e5
               for a in emissions)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sigmf = pytest.importorskip("sigmf")
    sigmf.SigMFFile(metadata=json.loads(out.read_text())).validate()
    assert f"{n_spectra} (0 invalid" in stdout and "real-time factor" in stdout and "UNTRAINED" in stdout
    assert "torch on cpu" in stdout.splitlines()[0]  # where the model runs (what device=auto chose)


def test_raw_input_gives_the_same_spectra_as_sigmf(inputs, tmp_path, capsys):
    _, weights, meta = inputs
    src = sigmf_io.read_meta(meta)
    raw = tmp_path / "scene.cf32"
    shutil.copy(src.data_path, raw)  # the scene is cf32_le already
    outs = []
    for argv in ([meta], [str(raw), "--rate", str(src.sample_rate), "--freq", str(src.center_freq),
                          "--format", "cf32"]):
        out = tmp_path / f"o{len(outs)}.sigmf-meta"
        assert run_cli(["run", *argv, "--model", weights, "--out", str(out), "--per-spectrum"], capsys)[0] == 0
        outs.append([(a["core:label"], a["specenc:score"]) for a in sigmf_io.read_meta(out).annotations
                     if "specenc:score" in a and a["core:label"] != "anomaly"])
    assert outs[0] == outs[1]


def test_run_counts_nan_spectra_as_invalid_and_goes_on(inputs, tmp_path, capsys, caplog):
    _, weights, meta = inputs
    src = sigmf_io.read_meta(meta)
    iq = sigmf_io.read_samples(src).copy()
    iq[5000:5100] = np.nan  # spectra 8 and 9 hold these samples
    iq[20000] = complex(np.inf, 0)  # spectra 38 and 39
    raw = tmp_path / "bad.cf32"
    iq.astype(np.complex64).tofile(raw)
    out = tmp_path / "elsewhere" / "o.sigmf-meta"  # the output meta away from the samples
    code, stdout, _ = run_cli(["run", str(raw), "--rate", str(src.sample_rate), "--format", "cf32", "--model", weights,
                               "--out", str(out), "--per-spectrum"], capsys)
    assert code == 0
    n_spectra = (src.num_samples - 1024) // 512 + 1
    assert f"{n_spectra} (4 invalid, skipped)" in stdout
    seen = stdout.split("families seen", 1)[1].splitlines()[0].split(",")
    assert sum(int(item.split()[-1]) for item in seen) == n_spectra - 4  # only the classified spectra, each named
    assert all(len(item.split()) == 2 and item.split()[0] in FAMILIES for item in seen)
    starts = {a["core:sample_start"] // 512 for a in sigmf_io.read_meta(out).annotations if "specenc:score" in a}
    assert starts == set(range(n_spectra)) - {8, 9, 38, 39}
    # One annotation per spectrum, as documented: those the model skipped read `invalid` (they were left out).
    invalid = [a for a in sigmf_io.read_meta(out).annotations if a["core:label"] == "invalid"]
    assert {a["core:sample_start"] // 512 for a in invalid} == {8, 9, 38, 39}
    assert "SigMF readers" not in caplog.text  # core:dataset leads from the output's folder to the samples
    assert os.path.samefile(sigmf_io.read_meta(out).data_path, raw)


def test_an_integration_longer_than_the_recording_is_said(inputs, tmp_path, capsys, caplog):
    """No mean formed and no alert could be raised, and the run said only "alerts 0" (audit 53)."""
    _, weights, meta = inputs
    argv = ["run", meta, "--model", weights, "--out", str(tmp_path / "o.sigmf-meta"), "--integrate", "100000"]
    with caplog.at_level("WARNING"):
        assert run_cli(argv, capsys)[0] == 0
    assert "fewer than the 100000 scores each alert's mean needs" in caplog.text


def test_per_spectrum_scores_with_integration_are_the_means_and_valid_json(inputs, tmp_path, capsys):
    """With --integrate N the scores the alerts are decided on are means of N, undefined for the first N - 1
    spectra: those annotations carry no score (NaN, which JSON does not have, made the file unreadable)."""
    _, weights, meta = inputs
    runs = {}
    for n in (1, 4):
        out = tmp_path / f"o{n}.sigmf-meta"
        argv = ["run", meta, "--model", weights, "--out", str(out), "--per-spectrum", "--integrate", str(n)]
        assert run_cli(argv, capsys)[0] == 0
        doc = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
        runs[n] = [a for a in doc["annotations"] if "specenc:confidence" in a and "specenc:spectra" not in a]
    single, means = ([a.get("specenc:score") for a in runs[n]] for n in (1, 4))
    assert means[:3] == [None] * 3 and None not in means[3:] and len(means) == len(single)
    np.testing.assert_allclose(means[3:], np.convolve(single, np.ones(4) / 4, "valid"), atol=2e-4)  # rounded to 4


def test_a_file_cut_short_while_it_plays_exits_1_with_what_was_read(inputs, tmp_path, capsys, monkeypatch):
    _, weights, meta = inputs
    src = sigmf_io.read_meta(meta)
    data = tmp_path / "cut.sigmf-data"
    shutil.copy(src.data_path, data)
    (tmp_path / "cut.sigmf-meta").write_text(open(meta).read())
    opened = sigmf_io.open_recording

    def open_then_cut(*args):  # the recorder's disk fills after the run has opened the file
        rec = opened(*args)
        os.truncate(data, 10_240 * 8)
        return rec

    monkeypatch.setattr(sigmf_io, "open_recording", open_then_cut)
    out = tmp_path / "o.sigmf-meta"
    code, stdout, _ = run_cli(["run", str(tmp_path / "cut.sigmf-meta"), "--model", weights, "--out", str(out)], capsys)
    assert code == 1
    n_spectra = (src.num_samples - 1024) // 512 + 1
    assert f"spectra processed   19 of {n_spectra} (the input ended early)" in stdout
    assert "IQ duration         0.010 s" in stdout  # what was read, not the recording's length
    assert out.exists()


def test_a_run_stopped_by_sigterm_writes_what_was_done_and_exits_143(inputs, tmp_path, capsys, monkeypatch):
    """SIGTERM (systemd) or Ctrl-C while the flowgraph runs: it stops cleanly and the outputs cover what was done
    (Ctrl-C ended Python under GNU Radio's threads: a segfault and no SigMF file or waterfall; audit 64)."""
    from gnuradio.specenc.app import flowgraph

    _, weights, meta = inputs
    real = flowgraph.run_to_end

    class TermOnFirstUpdate:  # the signal comes while the flowgraph runs, in the main thread, as a real one would,
        def __init__(self, bar):  # once a spectrum is made (on a starved CPU the first updates count none)
            self.bar, self.sent = bar, False

        def update(self, n):
            if n and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGTERM)
            self.bar.update(n)

    monkeypatch.setattr(flowgraph, "run_to_end", lambda tb, done, total, bar: real(tb, done, total,
                                                                                  TermOnFirstUpdate(bar)))
    out, alerts, png = tmp_path / "o.sigmf-meta", tmp_path / "a.jsonl", tmp_path / "w.png"
    code, _, stderr = run_cli(["run", meta, "--model", weights, "--out", str(out), "--alerts", str(alerts),
                               "--waterfall", str(png)], capsys)
    assert code == 143 and stderr.startswith("specenc run: interrupted by SIGTERM after ")
    assert "spectra; the outputs cover those" in stderr
    assert sigmf_io.read_meta(out).annotations and png.read_bytes()[:4] == b"\x89PNG" and alerts.read_text()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is the run's only


def test_the_meta_of_a_raw_sigmf_data_input_can_be_the_output(inputs, tmp_path, capsys):
    """A capture whose meta was lost, played raw, may get its meta back from the run: the samples beside --out are the
    input's own (this was refused as "another recording"; audit 65)."""
    _, weights, meta = inputs
    src = sigmf_io.read_meta(meta)
    shutil.copy(src.data_path, tmp_path / "cap.sigmf-data")
    out = tmp_path / "cap.sigmf-meta"
    argv = ["run", str(tmp_path / "cap.sigmf-data"), "--rate", str(src.sample_rate),
            "--format", src.datatype.removesuffix("_le"), "--freq", str(src.center_freq), "--model", weights,
            "--out", str(out)]
    assert run_cli(argv, capsys)[0] == 0
    rec = sigmf_io.read_meta(out)
    assert rec.data_path == str(tmp_path / "cap.sigmf-data") and rec.num_samples == src.num_samples
    assert "core:dataset" not in rec.global_


def test_signals_the_process_ignores_stay_ignored_and_commands_run_from_other_threads(tmp_path, monkeypatch):
    """A script's background job is started ignoring Ctrl-C: a run should not be stopped by it; and cli.main called
    from a thread failed at once ("signal only works in main thread"; audit 65)."""
    import threading

    from gnuradio import gr

    from gnuradio.specenc.app.interrupts import stop_on_signals
    from gnuradio.specenc.synth import cli as synth_cli

    seen = []

    def note_sigterm(*args, **kwargs):
        seen.append(signal.getsignal(signal.SIGTERM))
        raise ValueError("noted")

    monkeypatch.setattr(synth_cli, "write_scenario", note_sigterm)
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        assert cli.main(["synth", "--seconds", "0.01", "--out", str(tmp_path / "s")]) == 2
        assert seen == [signal.SIG_IGN] and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_on_signals(gr.top_block()):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # this one is taken
    finally:
        signal.signal(signal.SIGINT, previous)
    codes = []
    worker = threading.Thread(target=lambda: codes.append(cli.main(["synth", "--seed", "-1", "--out", "x"])))
    worker.start()
    worker.join()
    assert codes == [2]  # the bad seed's one line, not an exception about signals


def test_ctrl_c_stops_an_endless_flowgraph_and_says_so(ctrl_c_handled):
    """GNU Radio's own tb.run() took Ctrl-C as the flowgraph's end, so a benchmark timed a cut-short run as its best
    (audit 64): run_to_end returns the signal, and the flowgraph has stopped."""
    import threading

    from gnuradio import blocks, gr

    from gnuradio.specenc.app.interrupts import run_to_end

    tb = gr.top_block()
    sink = blocks.null_sink(gr.sizeof_gr_complex)
    tb.connect(blocks.vector_source_c([0j] * 4096, True), sink)  # repeats: never ends by itself
    watchdog = threading.Timer(60, tb.stop)  # should the signal be lost, the test fails instead of hanging
    watchdog.start()

    class CtrlCOnThirdUpdate:
        calls = 0

        def update(self, n):
            self.calls += 1
            if self.calls == 3:
                os.kill(os.getpid(), signal.SIGINT)

    stopped = run_to_end(tb, lambda: sink.nitems_read(0), 10**12, CtrlCOnThirdUpdate())
    watchdog.cancel()
    assert stopped == signal.SIGINT
    assert sink.nitems_read(0) > 0 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert run_to_end(gr.top_block()) == 0  # nothing to run: ends at once, no signal


def test_demo_reports_caught_ghost_anomalies(inputs, tmp_path, capsys):
    _, weights, _ = inputs
    code, stdout, _ = run_cli(["demo", "--out-dir", str(tmp_path), "--seconds", "0.3", "--model", weights], capsys)
    assert code == 0
    assert "ghost anomalies caught" in stdout and "of 6" in stdout and "generated" in stdout
    for name in ("alerts.jsonl", "waterfall.png", "demo_scene.specenc.sigmf-meta", "demo_scene.sigmf-meta",
                 "demo_site_clean.sigmf-meta", "alerts_site.jsonl", "demo_scene.site.specenc.sigmf-meta"):
        assert (tmp_path / name).is_file()
    # The site-calibrated pass: a ghost-free recording of the same site, a threshold on 16-score means.
    site = stdout[stdout.index("specenc demo, site calibrated"):]
    assert "on the mean of 16 scores" in site and "ghost anomalies caught" in site
    assert summary.truth_anomalies(sigmf_io.read_meta(str(tmp_path / "demo_site_clean.sigmf-meta")).annotations) == []
    code, stdout, _ = run_cli(["demo", "--out-dir", str(tmp_path), "--seconds", "0.3", "--model", weights], capsys)
    assert code == 0 and f"reusing {tmp_path / 'demo_site_clean.sigmf-meta'}" in stdout
    # A site recording made before ghost-free ones had their own noise (no specenc:take) is made again (audit 39).
    doc = json.loads((tmp_path / "demo_site_clean.sigmf-meta").read_text())
    del doc["global"]["specenc:take"]
    (tmp_path / "demo_site_clean.sigmf-meta").write_text(json.dumps(doc))
    code, stdout, _ = run_cli(["demo", "--out-dir", str(tmp_path), "--seconds", "0.3", "--model", weights], capsys)
    assert code == 0 and f"generated {tmp_path / 'demo_site_clean.sigmf-meta'}" in stdout


def test_truth_matching_by_time_and_frequency():
    truth = summary.truth_anomalies([
        {"core:sample_start": 1000, "core:sample_count": 500, "core:freq_lower_edge": 10.0,
         "core:freq_upper_edge": 20.0, "core:label": "anomaly", "specenc:kind": "stealth"},
        {"core:sample_start": 5000, "core:sample_count": 500, "core:label": "anomaly", "specenc:kind": "jamming"},
        {"core:sample_start": 0, "core:sample_count": 9000, "core:label": "fm"},
    ])
    assert [t["kind"] for t in truth] == ["stealth", "jamming"]
    alert = {"sample_count": 100, "freq_lower_edge": 15.0, "freq_upper_edge": 30.0}
    caught, matched = summary.match_alerts(truth, [
        dict(alert, sample_start=1450),  # overlaps the stealth truth in time and frequency
        dict(alert, sample_start=1500),  # touches its end: no overlap
        dict(alert, sample_start=1200, freq_lower_edge=20.0),  # right time, wrong frequency
    ])
    assert caught == [True, False] and matched == [True, False, False]


def test_the_summary_counts_emissions_that_overlap_no_emitter():
    annotations = [{"core:sample_start": 0, "core:sample_count": 9000, "core:freq_lower_edge": 100.0,
                    "core:freq_upper_edge": 200.0, "core:label": "fm"},
                   {"core:sample_start": 1000, "core:sample_count": 500, "core:label": "anomaly",
                    "specenc:kind": "stealth"}]
    emitters = summary.truth_emitters(annotations)
    assert [e["core:label"] for e in emitters] == ["fm"]
    emission = {"sample_start": 100, "sample_count": 200, "freq_lower_edge": 150.0, "freq_upper_edge": 160.0}
    result = SimpleNamespace(labels=[], alerts=[], input_name="x", num_spectra=0, num_invalid=0, duration_s=1.0,
                             ended_early=False, sample_rate=1e6, wall_s=1.0, threshold=0.5, integrate=1, detections=[
                                 emission, dict(emission, freq_lower_edge=300.0, freq_upper_edge=310.0),
                                 dict(emission, sample_start=9000)])  # on the fm; beside it; after it
    rows = dict(summary.summary_rows(result, emitters=emitters))
    assert rows["emissions on no emitter"] == "2 of 3"
    assert "emissions on no emitter" not in dict(summary.summary_rows(result))


@pytest.mark.parametrize("problem, message", [
    ("truncated", "truncated data"),
    ("no_rate", "missing core:sample_rate"),
    ("raw_without_rate", "needs a sample rate and a format"),
    ("missing_model", "not found"),
    ("unknown_backend", "backend"),
    ("cuda", "no CUDA device"),
    ("out_is_input", "is the input recording itself"),
    ("out_is_another_recording", "is the meta of the recording of"),  # was replaced (audit 63)
    ("out_pairs_with_other_samples", "would pair with the samples"),
    ("alerts_is_input", "--alerts"),
    ("alerts_is_out", "is --out's file too"),
    ("alerts_is_a_hard_link_to_the_input", "is the input recording itself"),
    ("out_is_folder", "is a folder; give a file in it"),
    ("out_under_a_file", "is a file, not a folder"),  # was "[Errno 17] File exists"
    ("waterfall_format", "matplotlib cannot write .txt images"),
    ("waterfall_folder", "is a folder; give a file in it"),  # "adir/" wrote the hidden adir/.png.png (audit 64)
    ("alerts_folder", "--alerts"),  # said "[Errno 21] Is a directory", naming no option
    ("batch", "--batch=0 must be in 1..4096"),
    ("threshold", "--threshold=2.0 must be <= 1"),
    ("integrate", "--integrate=-1 must be in 0..100000"),
    ("out_unwritable", "/proc: cannot write in it"),  # found after the whole run, naming a .tmp file (audit 53)
    ("average", "give no spectrum (need at least 5120512 for nfft=1024, average=10000)"),  # said "at least 1024"
])
def test_bad_input_is_one_clear_line(inputs, tmp_path, capsys, problem, message):
    _, weights, meta = inputs
    argv = ["run", meta, "--model", weights, "--out", str(tmp_path / "o.sigmf-meta")]
    if problem in ("truncated", "no_rate"):
        data = tmp_path / "bad.sigmf-data"
        blob = open(sigmf_io.read_meta(meta).data_path, "rb").read()
        data.write_bytes(blob[:-3] if problem == "truncated" else blob)
        doc = json.load(open(meta))
        if problem == "no_rate":
            del doc["global"]["core:sample_rate"]
        (tmp_path / "bad.sigmf-meta").write_text(json.dumps(doc))
        argv[1] = str(tmp_path / "bad.sigmf-meta")
    elif problem == "raw_without_rate":
        argv[1] = sigmf_io.read_meta(meta).data_path.replace(".sigmf-data", ".sigmf-data")
        shutil.copy(argv[1], tmp_path / "x.raw")
        argv[1] = str(tmp_path / "x.raw")
    elif problem == "missing_model":
        argv[3] = str(tmp_path / "nope.safetensors")
    elif problem == "unknown_backend":
        argv += ["--backend", "warp9"]
    elif problem == "cuda":
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("SKIPPED: a CUDA device is present, so the cuda-absent error cannot be shown")
        argv += ["--device", "cuda"]
    elif problem == "out_is_input":
        argv[-1] = meta
    elif problem == "out_pairs_with_other_samples":  # a .sigmf-data whose meta is gone (an interrupted synth)
        (tmp_path / "o.sigmf-data").write_bytes(bytes(64))
    elif problem == "out_is_another_recording":
        other = tmp_path / "other.sigmf-meta"
        sigmf_io.write_recording(str(other), np.zeros(64, np.complex64), sample_rate=2e6, center_freq=50e6)
        size = len(other.read_text())
        argv[-1] = str(other)
    elif problem == "alerts_is_input":  # opened for writing, it emptied the samples before the run read them
        data = sigmf_io.read_meta(meta).data_path
        size = os.path.getsize(data)
        argv += ["--alerts", data]
    elif problem == "alerts_is_a_hard_link_to_the_input":
        data = sigmf_io.read_meta(meta).data_path
        size = os.path.getsize(data)
        os.link(data, tmp_path / "alerts.jsonl")
        argv += ["--alerts", str(tmp_path / "alerts.jsonl")]
    elif problem == "alerts_is_out":  # the alerts, written during the run, were deleted with the old meta after it
        argv += ["--alerts", argv[-1]]
    elif problem == "out_is_folder":
        argv[-1] = str(tmp_path)
    elif problem == "out_under_a_file":
        (tmp_path / "afile").write_text("x")
        argv[-1] = str(tmp_path / "afile" / "o.sigmf-meta")
    elif problem == "waterfall_format":  # refused before the run, not by matplotlib after it
        argv += ["--waterfall", str(tmp_path / "w.txt")]
    elif problem == "waterfall_folder":
        argv += ["--waterfall", str(tmp_path / "new") + os.sep]
    elif problem == "alerts_folder":
        argv += ["--alerts", str(tmp_path)]
    elif problem in ("batch", "threshold", "integrate", "average"):
        argv += [f"--{problem}", {"batch": "0", "threshold": "2", "integrate": "-1", "average": "10000"}[problem]]
    elif problem == "out_unwritable":
        argv[-1] = "/proc/o.sigmf-meta"
    code, stdout, stderr = run_cli(argv, capsys)
    assert code == 2
    assert stderr.startswith("specenc run: error:") and message in stderr and stderr.count("\n") == 1
    if problem in ("alerts_is_input", "alerts_is_a_hard_link_to_the_input"):
        assert os.path.getsize(data) == size
    if problem == "out_is_another_recording":
        assert len(other.read_text()) == size


def test_run_on_a_real_cu8_capture(inputs, shared_iq, tmp_path, capsys):
    """A real RTL-SDR capture (cu8, 433.92 MHz, 250 kS/s) through the whole chain: every spectrum, in the ISM band."""
    _, weights, _ = inputs
    meta = shared_iq / "ism433_skylink_ha434tl_g001.sigmf-meta"
    rec = sigmf_io.read_meta(meta)
    out = tmp_path / "o.sigmf-meta"
    code, stdout, _ = run_cli(["run", str(meta), "--model", weights, "--out", str(out), "--per-spectrum",
                               "--average", "2"], capsys)
    assert code == 0
    n = ((rec.num_samples - 1024) // 512 + 1) // 2
    anns = sigmf_io.read_meta(out).annotations
    per_spectrum = [a for a in anns if "specenc:score" in a and a["core:label"] != "anomaly"]
    assert len(per_spectrum) == n and f"{n} (0 invalid" in stdout
    assert per_spectrum[-1]["core:sample_start"] == (n - 1) * 1024 and per_spectrum[0]["core:sample_count"] == 1536
    for a in anns:
        if "core:freq_lower_edge" in a:
            assert 433.92e6 - 125e3 - 1e3 <= a["core:freq_lower_edge"] < a["core:freq_upper_edge"] <= 433.92e6 + 125e3


def test_onnxruntime_runtime_gives_the_torch_results(inputs, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="SKIPPED: onnxruntime is not installed")
    _, weights, meta = inputs
    results = []
    for runtime in ("torch", "onnxruntime"):
        out = tmp_path / f"{runtime}.sigmf-meta"
        code, _, err = run_cli(["run", meta, "--model", weights, "--runtime", runtime, "--out", str(out),
                                "--per-spectrum"], capsys)
        assert code == 0, err
        results.append([(a["core:label"], a["specenc:score"]) for a in sigmf_io.read_meta(out).annotations
                        if "specenc:score" in a and a["core:label"] != "anomaly"])
    torch_run, ort_run = results
    assert len(torch_run) == len(ort_run) > 0
    assert [label for label, _ in torch_run] == [label for label, _ in ort_run]
    assert [score for _, score in ort_run] == pytest.approx([score for _, score in torch_run], abs=1e-3)


def test_waterfall_max_hold_groups_continue_across_calls():
    from gnuradio.specenc.app.waterfall import MaxHold
    x = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)[::-1].copy()  # row maxima decrease
    x[4, 1] = 99.0  # a peak inside the second group
    hold = MaxHold(decimation=3)
    hold.add(x[:2])
    hold.add(x[2:5])
    hold.add(x[5:])
    rows = hold.rows()
    np.testing.assert_array_equal(rows, [x[0:3].max(0), x[3:6].max(0), x[6]])
    assert rows[1, 1] == 99.0


def test_waterfall_max_hold_matches_per_group_max_for_any_split():
    from gnuradio.specenc.app.waterfall import MaxHold
    rng = np.random.default_rng(5)
    x = rng.standard_normal((200, 8)).astype(np.float32)
    x[10, 3] = np.nan  # fmax: a NaN bin never hides the group's finite peak
    for decimation in (1, 4, 7):
        hold, i = MaxHold(decimation), 0
        while i < len(x):
            step = int(rng.integers(1, 30))
            hold.add(x[i:i + step])
            i += step
        want = [np.fmax.reduce(x[j:j + decimation], axis=0) for j in range(0, len(x), decimation)]
        np.testing.assert_array_equal(hold.rows(), want)


def test_run_places_what_follows_a_retune_at_the_new_frequency(inputs, tmp_path, capsys):
    """A SigMF recording whose second capture retunes: emissions after it lie in the new band, those before it in
    the old one; the waterfall is drawn as offsets from the tuned centre. --freq overrides both captures."""
    _, weights, meta = inputs
    src = sigmf_io.read_meta(meta)
    half = src.num_samples // 2 // 512 * 512 + 100  # inside a spectrum: the psd block's tag puts it at the new tuning
    doc = json.load(open(meta))
    doc["captures"].append({"core:sample_start": half, "core:frequency": 2.44e9})
    doc["global"]["core:dataset"] = src.data_path
    retuned = tmp_path / "retuned.sigmf-meta"
    retuned.write_text(json.dumps(doc))
    for freq, centres in ((None, (src.center_freq, 2.44e9)), (100e6, (100e6, 100e6))):
        out, alerts, png = tmp_path / "o.sigmf-meta", tmp_path / "a.jsonl", tmp_path / "w.png"
        argv = ["run", str(retuned), "--model", weights, "--out", str(out), "--alerts", str(alerts),
                "--waterfall", str(png)] + (["--freq", str(freq)] if freq else [])
        assert run_cli(argv, capsys)[0] == 0 and png.read_bytes()[:4] == b"\x89PNG"
        emissions = [a for a in sigmf_io.read_meta(out).annotations if "specenc:spectra" in a]
        before = [a for a in emissions if a["core:sample_start"] + a["core:sample_count"] <= half - 1024]
        after = [a for a in emissions if a["core:sample_start"] >= half]
        assert before and after
        for group, centre in ((before, centres[0]), (after, centres[1])):
            assert all(centre - 5e5 <= a["core:freq_lower_edge"] < a["core:freq_upper_edge"] <= centre + 5e5
                       for a in group)
        # every annotation lies in the band of the capture it starts in, the one a SigMF reader gives it (those of
        # the spectrum holding the retune started 100 samples before it: audit 63)
        placed = [a for a in sigmf_io.read_meta(out).annotations if "core:freq_lower_edge" in a]
        assert freq or any(a["core:sample_start"] == half for a in placed)
        assert all(abs(a[edge] - centres[a["core:sample_start"] >= half]) <= 5e5
                   for a in placed for edge in ("core:freq_lower_edge", "core:freq_upper_edge"))
        # threshold 0: every spectrum is above it, one alert per tuning (a retune starts a new event), the second on
        # the spectrum that holds the retune
        lines = [json.loads(x) for x in alerts.read_text().splitlines()]
        assert [a["center_freq"] for a in lines] == list(dict.fromkeys(centres))
        assert all(a["center_freq"] == centres[a["sample_start"] + a["sample_count"] > half] for a in lines)
