"""Other tools' SigMF files and real users' paths: outputs that would replace another recording, folders given as
files, links, odd characters in names, foreign labels as truth (audits 69 and 72)."""

import argparse
import json
import os
import shlex
import shutil
import sys

import numpy as np
import pytest
from blocks_fake_model import small_model_file

from gnuradio.specenc import cli, labels, sigmf_io
from gnuradio.specenc.app import summary
from gnuradio.specenc.model import ModelConfig, SpectrumModel, load_model
from gnuradio.specenc.training import calibrate_cli, datasets, eval_cli, evaluate

SPECTRA = 39  # the recording's spectra at nfft 1024, 50 % overlap


def _noise(samples, seed=3):
    return (np.random.default_rng(seed).normal(size=(samples, 2)) * 0.01).astype(np.float32).view(np.complex64).ravel()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, specenc_cpp):
    """A small model and a short noise recording (20 480 samples) in a folder of their own."""
    folder = tmp_path_factory.mktemp("foreign")
    meta = sigmf_io.write_recording(str(folder / "rec.sigmf-meta"), _noise(1024 * 20), 1e6, 915e6)
    return small_model_file(folder), meta


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    cfg = ModelConfig(nfft=256, d_model=16, n_layers=1, n_heads=2, n_kv_heads=2, anomaly_hidden=8, pool_stride=8)
    SpectrumModel.from_config(cfg, seed=1, threshold=0.5).save(str(path))
    return str(path)


def run_cli(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _recording_named_by_dataset(folder, source_meta):
    """cap.sigmf-meta whose core:dataset names its samples, cap.iq (no cap.sigmf-data beside it)."""
    shutil.copy(sigmf_io.read_meta(source_meta).data_path, folder / "cap.iq")
    doc = json.load(open(source_meta))
    doc["global"]["core:dataset"] = "cap.iq"
    doc["annotations"] = [{"core:sample_start": 0, "core:sample_count": 4096, "core:label": "tone"}]
    meta = folder / "cap.sigmf-meta"
    meta.write_text(json.dumps(doc))
    assert sigmf_io.read_meta(meta).data_path == str(folder / "cap.iq")
    return meta


def test_run_refuses_the_meta_of_a_recording_whose_samples_core_dataset_names(inputs, tmp_path, capsys):
    """Only X.sigmf-data beside X.sigmf-meta counted as its recording: one naming cap.iq was replaced by the run's
    output, its captures and annotations gone (audit 69)."""
    weights, meta = inputs
    target = _recording_named_by_dataset(tmp_path, meta)
    before = target.read_bytes()
    code, _, err = run_cli(["run", meta, "--model", weights, "--out", str(target)], capsys)
    assert code == 2 and err.startswith("specenc run: error:") and err.count("\n") == 1
    assert "is the meta of the recording of" in err and "cap.iq" in err
    assert target.read_bytes() == before


def test_run_writes_again_over_its_own_output_of_another_input(inputs, tmp_path, capsys):
    """A run's output names its input in core:dataset: the check for other recordings' metas refused a second run
    of another input into the same --out (audit 73)."""
    weights, meta = inputs
    other = sigmf_io.write_recording(str(tmp_path / "other.sigmf-meta"), _noise(1024 * 20, seed=4), 1e6, 433.92e6)
    out = str(tmp_path / "runs" / "o.sigmf-meta")
    assert run_cli(["run", meta, "--model", weights, "--out", out], capsys)[0] == 0
    assert run_cli(["run", other, "--model", weights, "--out", out], capsys)[0] == 0
    assert sigmf_io.read_meta(out).center_freq == 433.92e6


def test_the_alert_sink_refuses_the_meta_of_a_recording_whose_samples_core_dataset_names(inputs, tmp_path):
    """The sink replaced cap.sigmf-meta (samples in cap.iq) with its empty file when it was made (audit 69)."""
    from gnuradio.specenc.alert_sink import alert_sink

    target = _recording_named_by_dataset(tmp_path, inputs[1])
    before = target.read_bytes()
    with pytest.raises(ValueError, match="is the meta of a recording"):
        alert_sink(sigmf_path=str(target), stdout=False)
    assert target.read_bytes() == before


@pytest.mark.parametrize("flag", ["--out", "--alerts"])
def test_run_refuses_a_new_folder_given_with_a_trailing_slash(inputs, tmp_path, capsys, flag):
    """--out NEWDIR/ wrote the hidden file NEWDIR/.sigmf-meta; --alerts NEWDIR/ said "[Errno 21] Is a directory" of a
    folder that did not exist (audit 69)."""
    weights, meta = inputs
    argv = ["run", meta, "--model", weights, "--out", str(tmp_path / "o.sigmf-meta")]
    if flag == "--out":
        argv[-1] = str(tmp_path / "new") + os.sep
    else:
        argv += ["--alerts", str(tmp_path / "new") + os.sep]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"{flag} {tmp_path / 'new'}{os.sep} is a folder; give a file in it" in err
    assert os.listdir(tmp_path) == []  # no folder made, no output written


def test_a_recording_too_short_for_a_spectrum_leaves_the_last_runs_outputs_alone(inputs, tmp_path, capsys):
    """The run removed the last run's meta and waterfall, then refused the input (audit 72): here the capture was
    recorded again, cut short, under its name."""
    weights, _ = inputs
    capture = sigmf_io.write_recording(str(tmp_path / "cap.sigmf-meta"), _noise(1024 * 20), 1e6, 915e6)
    out, png = tmp_path / "o.sigmf-meta", tmp_path / "w.png"
    argv = ["run", capture, "--model", weights, "--out", str(out), "--waterfall", str(png)]
    assert run_cli(argv, capsys)[0] == 0
    before = out.read_bytes(), png.read_bytes()
    sigmf_io.write_recording(capture, _noise(500), 1e6, 915e6)
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "500 samples give no spectrum" in err and err.count("\n") == 1
    assert (out.read_bytes(), png.read_bytes()) == before


@pytest.mark.parametrize("alerts", ["notes.txt", "alerts.sigmf-meta"])
def test_an_alerts_file_the_sink_refuses_leaves_the_last_runs_outputs_alone(inputs, tmp_path, capsys, alerts):
    """The run removed the last run's meta and waterfall before the alert sink refused its --alerts file (a file of no
    JSON lines, a SigMF name; audit 75)."""
    weights, meta = inputs
    out, png = tmp_path / "o.sigmf-meta", tmp_path / "w.png"
    argv = ["run", meta, "--model", weights, "--out", str(out), "--waterfall", str(png)]
    assert run_cli(argv, capsys)[0] == 0
    before = out.read_bytes(), png.read_bytes()
    (tmp_path / "notes.txt").write_text("not JSON\n")
    code, _, err = run_cli(argv + ["--alerts", str(tmp_path / alerts)], capsys)
    assert code == 2 and f"--alerts {tmp_path / alerts} " in err and err.count("\n") == 1
    assert (out.read_bytes(), png.read_bytes()) == before


def test_an_output_in_a_linked_folder_finds_the_input_samples(inputs, tmp_path, capsys):
    """core:dataset was a path from the link's own place (../..), which the kernel follows from the folder linked to:
    it named a file that does not exist (audit 69)."""
    weights, meta = inputs
    (tmp_path / "real" / "a" / "b").mkdir(parents=True)
    os.symlink(tmp_path / "real" / "a" / "b", tmp_path / "link")
    out = tmp_path / "link" / "o.sigmf-meta"
    assert run_cli(["run", meta, "--model", weights, "--out", str(out)], capsys)[0] == 0
    rec, src = sigmf_io.read_meta(out), sigmf_io.read_meta(meta)
    assert os.path.samefile(rec.data_path, src.data_path) and rec.num_samples == src.num_samples
    np.testing.assert_array_equal(sigmf_io.read_samples(rec), sigmf_io.read_samples(src))


def test_a_dollar_in_the_inputs_name_does_not_break_the_waterfall(inputs, tmp_path, capsys):
    """The waterfall's title, the input's file name, was read as mathtext: scan_$1_$2 failed after the whole run with a
    pyparsing error and no PNG (audit 69)."""
    weights, meta = inputs
    src = sigmf_io.read_meta(meta)
    shutil.copy(meta, tmp_path / "scan_$1_$2.sigmf-meta")
    shutil.copy(src.data_path, tmp_path / "scan_$1_$2.sigmf-data")
    png = tmp_path / "w.png"
    argv = ["run", str(tmp_path / "scan_$1_$2.sigmf-meta"), "--model", weights, "--out", str(tmp_path / "o.sigmf-meta"),
            "--waterfall", str(png)]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_finds_the_recordings_of_a_folder_with_brackets_in_its_name(tmp_path, tiny_model):
    """The folder's name went into a glob pattern: "caps [2024]" read as a character class held no recording
    (audit 69)."""
    folder = tmp_path / "caps [2024]"
    sigmf_io.write_recording(str(folder / "a b.sigmf-meta"), _noise(256 * 20), 1e6, 433.92e6)
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    args = parser.parse_args(["--model", tiny_model, "--out", str(tmp_path / "e"), "--data", str(folder)])
    assert eval_cli.main(args) == 0
    assert json.loads((tmp_path / "e" / "results.json").read_text())["recordings"]["a b"]["spectra"] == 39


def test_the_alert_sink_names_a_jsonl_path_it_cannot_write_and_leaves_the_sigmf_file(tmp_path):
    """A missing folder for jsonl_path gave a bare FileNotFoundError, after the SigMF file had been replaced (audit
    69)."""
    import pmt

    from gnuradio.specenc.alert_sink import alert_sink

    meta = tmp_path / "ok" / "a.sigmf-meta"
    meta.parent.mkdir()
    earlier = alert_sink(sigmf_path=str(meta), stdout=False)
    earlier.handle(pmt.to_pmt({"kind": "jamming", "score": 0.9, "threshold": 0.5, "time": 1.0, "center_freq": 1e8,
                               "sample_rate": 1e6, "freq_lower_edge": 99.9e6, "freq_upper_edge": 100.1e6,
                               "sample_start": 512, "sample_count": 1024}))
    earlier.close()
    before = meta.read_bytes()
    assert json.loads(before)["annotations"]  # the earlier sink's alert is in it
    missing = tmp_path / "missing" / "a.jsonl"
    with pytest.raises(ValueError, match=r"jsonl_path='.*missing/a\.jsonl' cannot be written") as err:
        alert_sink(jsonl_path=str(missing), sigmf_path=str(meta), stdout=False)
    assert "missing does not exist or cannot be written" in str(err.value)
    assert meta.read_bytes() == before and not missing.parent.exists()
    new_jsonl = tmp_path / "ok" / "new.jsonl"  # a sink not made leaves no file behind (audit 74)
    with pytest.raises(ValueError, match="sigmf_path="):
        alert_sink(jsonl_path=str(new_jsonl), sigmf_path=str(tmp_path / "missing" / "a.sigmf-meta"), stdout=False)
    assert not new_jsonl.exists()


def _labelled_recording(folder, annotations, samples=128 * 81):
    iq = _noise(samples)
    meta = sigmf_io.write_recording(str(folder / "r.sigmf-meta"), iq, 1e6, 915e6)
    doc = json.load(open(meta))
    doc["annotations"] = annotations
    json.dump(doc, open(meta, "w"))
    return meta


def test_eval_leaves_spectra_under_a_foreign_label_out_of_family_accuracy_and_says_so(tmp_path, tiny_model, caplog):
    """Spectra under an "LTE" emission, whose strength is not annotated, were scored as truth "noise" (audit 72)."""
    model = load_model(tiny_model)
    meta = _labelled_recording(tmp_path, [
        {"core:sample_start": 0, "core:sample_count": 40 * 128, "core:label": "fm"},
        {"core:sample_start": 20 * 128, "core:sample_count": 40 * 128, "core:label": "LTE",
         "core:freq_lower_edge": 914.9e6, "core:freq_upper_edge": 915.1e6}])
    with caplog.at_level("WARNING"):
        out = evaluate.evaluate_recording(model, meta)
    rec, spectra, freq, _ = datasets.recording_spectra(meta, model.nfft)
    assert len(spectra) == 80
    starts = np.arange(80) * 128
    known = ~((starts < 60 * 128) & (starts + 256 > 20 * 128))  # spectra touching the LTE emission are unknown
    truth = np.where(starts < 40 * 128, labels.FAMILY_INDEX["fm"], labels.FAMILY_INDEX["noise"])
    predicted = evaluate.predict_all(model, spectra, freq, np.full(len(spectra), rec.sample_rate))["label_index"]
    assert out["family_rows"] == known.sum() == 39
    assert out["family_accuracy"] == pytest.approx(np.mean(predicted[known] == truth[known]))
    assert "41 of its 80 spectra hold emissions labelled outside specenc's families ('LTE')" in caplog.text


def test_eval_says_when_no_annotation_of_a_recording_names_a_family(tmp_path, tiny_model, caplog):
    """A recording labelled only in other tools' words gave no truth figure and no word why (audit 72)."""
    model = load_model(tiny_model)
    meta = _labelled_recording(tmp_path, [
        {"core:sample_start": 0, "core:sample_count": 40 * 128, "core:label": "LTE"},
        {"core:sample_start": 0, "core:sample_count": 40 * 128, "core:label": "WiFi"}])
    with caplog.at_level("WARNING"):
        out = evaluate.evaluate_recording(model, meta)
    assert "family_accuracy" not in out
    assert "none of its annotations names a family or an anomaly kind ('LTE', 'WiFi')" in caplog.text


def test_calibrate_warns_of_an_anomaly_labelled_by_its_kind(tmp_path, tiny_model, caplog):
    """A jammer labelled "Jamming" (no specenc:kind): calibrate fitted its threshold over it without a warning
    (audit 72)."""
    meta = _labelled_recording(tmp_path, [
        {"core:sample_start": 2560, "core:sample_count": 512, "core:label": "Jamming"}], samples=256 * 40)
    with caplog.at_level("WARNING"):
        calibrate_cli.recalibrate(load_model(tiny_model), meta, far=0.01)
    assert "r.sigmf-meta marks 1 anomalies (e.g. at sample 2560)" in caplog.text


def test_the_demo_summary_reads_an_anomaly_kind_label_regardless_of_case():
    """"Jamming" was no truth anomaly for the demo's summary, "jamming" was (audit 72)."""
    found = summary.truth_anomalies([{"core:sample_start": 0, "core:sample_count": 10, "core:label": "Jamming"}])
    assert [a["kind"] for a in found] == ["jamming"]


def test_bench_paper_prints_a_command_line_that_runs_again_as_it_is(tmp_path):
    """An --out with a space was printed unquoted: the report's command split it in two (audit 69)."""
    from gnuradio.specenc.bench import paper

    parser = argparse.ArgumentParser()
    paper.add_arguments(parser)
    out = str(tmp_path / "my runs" / "it's 1")
    args = parser.parse_args(["--quick", "--sections", "latency, memory", "--out", out])
    words = shlex.split(paper.command_line(args))
    assert words[:3] == ["specenc", "bench", "paper"]
    assert vars(parser.parse_args(words[3:])) == vars(args)


def test_bench_model_makes_the_folder_of_its_json_file(tmp_path, monkeypatch, capsys):
    """--json NEWDIR/x.json was refused, where every other output's folder is made (audit 69)."""
    from gnuradio.specenc.bench import model

    row = {"p50_ms": 1.0, "p95_ms": 2.0, "iters": 5, "throughput": 100.0, "best_batch": 64, "network_throughput": 200.0,
           "backbone_gflops": 1.0, "gemm_gflops": 10.0, "gemm_share": 0.1, "network_gflops": 1.0}
    monkeypatch.setattr(model, "gemm_gflops", lambda *a, **k: 10.0)  # the measurements are not what is tested
    monkeypatch.setattr(model, "bench_variant", lambda *a, **k: dict(row))
    path = tmp_path / "new" / "deeper" / "x.json"
    argv = ["bench", "model", "--quick", "--backends", "mha", "--json", str(path)]
    monkeypatch.setattr(sys, "argv", ["specenc"] + argv)  # the suite's options are added from sys.argv
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert json.loads(path.read_text())["rows"][0]["p50_ms"] == 1.0


def test_capture_families_score_a_capture_whose_label_names_a_family(tmp_path, tiny_model, caplog):
    """A real capture's whole-file label "FSK" became truth once labels matched regardless of case, and its
    --capture-families entry was dropped without a word (audit 74): the user's family for it wins, said in a warning;
    its anomaly truth still gives anomaly F1 (audit 76)."""
    model = load_model(tiny_model)
    meta = _labelled_recording(tmp_path, [{"core:sample_start": 0, "core:label": "FSK"},
                                          {"core:sample_start": 0, "core:sample_count": 2048, "core:label": "jamming"}])
    with caplog.at_level("WARNING"):
        out = evaluate.evaluate_recording(model, meta, capture_family="fsk")
    assert out["capture_family"] == "fsk" and "capture_rows" in out and np.isfinite(out["anomaly_f1"])
    assert ("--capture-families names its transmitter (fsk): its family is scored on its bursts, not on its "
            "annotations") in caplog.text


def test_only_a_foreign_annotation_with_both_edges_leaves_spectra_out(tmp_path, tiny_model, caplog):
    """A foreign label with one edge was an emission by its lower edge alone and a note by its upper edge alone; the
    warning named notes that left nothing out (audit 76). One edge is read as none, with a warning."""
    model = load_model(tiny_model)
    meta = _labelled_recording(tmp_path, [
        {"core:sample_start": 0, "core:sample_count": 40 * 128, "core:label": "fm"},
        {"core:sample_start": 0, "core:label": "LTE", "core:freq_lower_edge": 914.9e6},
        {"core:sample_start": 0, "core:label": "Roof antenna"},
        {"core:sample_start": 20 * 128, "core:sample_count": 40 * 128, "core:label": "WiFi",
         "core:freq_lower_edge": 914.9e6, "core:freq_upper_edge": 915.1e6}])
    with caplog.at_level("WARNING"):
        out = evaluate.evaluate_recording(model, meta)
    assert "annotation 1 gives one frequency edge" in caplog.text
    assert out["family_rows"] == 39  # the spectra touching the WiFi emission are left out, no others
    assert "labelled outside specenc's families ('WiFi')" in caplog.text


def test_run_names_an_alerts_file_it_cannot_open_before_it_removes_anything(inputs, tmp_path, capsys):
    """An --alerts file the sink could not open (a link into a missing folder, a root-owned file) was found after the
    last run's meta and waterfall were removed, and the error named jsonl_path= (audit 76)."""
    weights, meta = inputs
    out, png = tmp_path / "o.sigmf-meta", tmp_path / "w.png"
    argv = ["run", meta, "--model", weights, "--out", str(out), "--waterfall", str(png)]
    assert run_cli(argv, capsys)[0] == 0
    before = out.read_bytes(), png.read_bytes()
    os.symlink(tmp_path / "gone" / "a.jsonl", tmp_path / "a.jsonl")
    code, _, err = run_cli(argv + ["--alerts", str(tmp_path / "a.jsonl")], capsys)
    assert code == 2 and err.startswith(f"specenc run: error: --alerts {tmp_path / 'a.jsonl'} cannot be written")
    assert (out.read_bytes(), png.read_bytes()) == before


def test_a_sink_refused_for_its_zmq_address_or_sigmf_path_leaves_the_users_files(tmp_path):
    """A typo in the ZMQ port emptied the last run's alerts file before the address was refused; a sink whose SigMF
    path failed removed a JSONL link to nothing, taken for a file it had made (audit 76)."""
    from gnuradio.specenc.alert_sink import alert_sink

    alerts = tmp_path / "a.jsonl"
    alerts.write_text('{"kind": "jamming"}\n')
    with pytest.raises(ValueError, match="zmq_address"):
        alert_sink(jsonl_path=str(alerts), stdout=False, zmq_address="tcp://*:99999")
    assert alerts.read_text() == '{"kind": "jamming"}\n'
    link = tmp_path / "link.jsonl"
    os.symlink(tmp_path / "target.jsonl", link)
    with pytest.raises(ValueError, match="sigmf_path="):
        alert_sink(jsonl_path=str(link), sigmf_path=str(tmp_path / "missing" / "a.sigmf-meta"), stdout=False)
    assert os.path.islink(link)
