"""The onnxruntime runtime: same Prediction as torch for the same network (labels, kinds, detections; scores
to float precision), from an exported .onnx or a checkpoint, with clear errors; and identical alerts from
the flowgraph with either runtime on a short generated recording."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime not installed: the onnxruntime runtime is untested")

from gnuradio.specenc.model import ModelConfig, SpectrumModel, load_model  # noqa: E402
from gnuradio.specenc.model.export import export_onnx  # noqa: E402
from gnuradio.specenc.model.runtime_onnx import load_onnx_model  # noqa: E402
from gnuradio.specenc.training import datasets  # noqa: E402

SMALL = dict(d_model=32, n_layers=2, n_heads=2, n_kv_heads=2, anomaly_hidden=16)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(torch model, weights path, exported .onnx path) of one small seeded network, threshold 0.42."""
    folder = tmp_path_factory.mktemp("rt")
    model = SpectrumModel.from_config(ModelConfig(**SMALL), seed=4, threshold=0.42)
    weights, _ = model.save(str(folder / "m.safetensors"), metadata={"note": "test"})
    return model, weights, export_onnx(model, str(folder / "m.onnx"))


@pytest.fixture(scope="module")
def scenes():
    return datasets.TestSets(7, 1024).scenes(96)


def assert_same_prediction(a, b):
    assert a.labels == b.labels and a.anomaly_kind == b.anomaly_kind
    np.testing.assert_array_equal(a.label_index, b.label_index)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-5)
    np.testing.assert_allclose(a.anomaly_score, b.anomaly_score, atol=1e-5)
    np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-4)
    strip = [[(d["bin_start"], d["bin_stop"], d["family"]) for d in row] for row in a.detections]
    assert strip == [[(d["bin_start"], d["bin_stop"], d["family"]) for d in row] for row in b.detections]
    conf_a = [d["confidence"] for row in a.detections for d in row]
    np.testing.assert_allclose(conf_a, [d["confidence"] for row in b.detections for d in row], atol=1e-5)


@pytest.mark.parametrize("source", ["onnx", "checkpoint"])
def test_same_prediction_as_torch(models, scenes, source):
    model, weights, onnx_path = models
    ort_model = load_onnx_model(onnx_path if source == "onnx" else weights, threads=1)
    assert ort_model.runtime == "onnxruntime" and ort_model.providers == ("CPUExecutionProvider",)
    for rx_freq in (scenes["center_freq"], None, 2.45e9):  # per-row bands, 'other', one band for all
        assert_same_prediction(model.predict(scenes["spectra"], rx_freq), ort_model.predict(scenes["spectra"], rx_freq))
    one = scenes["spectra"][5]  # (nfft,) is one row
    assert_same_prediction(model.predict(one, 433.92e6), ort_model.predict(one, 433.92e6))


def test_checkpoint_metadata_travels_in_the_onnx_file(models):
    model, _, onnx_path = models
    m = load_onnx_model(onnx_path)
    assert m.threshold == pytest.approx(0.42) and m.trained is False and m.metadata == {"note": "test"}
    assert m.config == model.config and m.nfft == 1024


def test_input_errors_are_the_same_as_torch(models):
    _, _, onnx_path = models
    m = load_onnx_model(onnx_path)
    x = np.full((4, 1024), -90.0, np.float32)
    x[2, 7] = np.nan
    with pytest.raises(ValueError, match=r"row\(s\) \[2\]"):
        m.predict(x)
    with pytest.raises(ValueError, match=r"expected \(1024,\) or \(B, 1024\)"):
        m.predict(np.zeros((2, 512), np.float32))


def test_onnx_file_errors(models, tmp_path):
    _, _, onnx_path = models
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        load_onnx_model(str(tmp_path / "nope.onnx"))
    with pytest.raises(ValueError, match="attention backend is fixed in an exported ONNX graph"):
        load_onnx_model(onnx_path, backend="mha")
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(onnx_path)
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ValueError, match="no 'specenc' metadata"):
        load_onnx_model(str(bare))
    m = load_onnx_model(onnx_path)
    with pytest.raises(ValueError, match="fixed in an exported ONNX graph"):
        m.set_backend("sdpa")
    with pytest.raises(ValueError, match="token count is fixed in an exported ONNX graph"):
        m.set_tokens_kept(0.5)  # as the encoder block's Tokens Kept would ask, before the flowgraph starts
    with pytest.raises(AttributeError, match="holds no torch network"):
        m.net


def test_cuda_absent_and_onnxruntime_missing(models, monkeypatch):
    _, _, onnx_path = models
    ort = sys.modules["onnxruntime"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("SKIPPED: onnxruntime has the CUDA provider here, the cuda-absent error cannot be shown")
    with pytest.raises(ValueError, match="device 'cuda' asked for but onnxruntime has no CUDA/TensorRT"):
        load_onnx_model(onnx_path, device="cuda")
    assert load_onnx_model(onnx_path, device="auto").device == "cpu"
    # An .onnx file runs on onnxruntime whatever --runtime says, so auto asks onnxruntime, not torch, for a GPU.
    from gnuradio.specenc.model import runtime_select
    from gnuradio.specenc.spectrum_encoder import open_model

    monkeypatch.setattr(runtime_select, "detect_torch_cuda", lambda: True)
    assert open_model(onnx_path, runtime="torch", device="auto").device == "cpu"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        load_onnx_model(onnx_path)


def test_a_broken_onnx_file_is_one_clear_error(models, tmp_path):
    _, _, onnx_path = models
    import onnx

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x12\xff not protobuf" * 10)
    with pytest.raises(ValueError, match="bad.onnx: not a readable ONNX model"):
        load_onnx_model(str(bad))
    proto = onnx.load(onnx_path)
    (entry,) = [e for e in proto.metadata_props if e.key == "specenc"]
    meta = json.loads(entry.value)
    for text, message in (("{not json", "metadata is not valid JSON"), ('{"config": {"nfft": 1024}}',
                                                                         "metadata lacks threshold, trained")):
        entry.value = text
        onnx.save(proto, str(bad))
        with pytest.raises(ValueError, match=f"bad.onnx: its 'specenc' {message}"):
            load_onnx_model(str(bad))
    entry.value = json.dumps({**meta, "config": {**meta["config"], "nfft": 512}})
    onnx.save(proto, str(bad))
    with pytest.raises(ValueError, match=r"its graph takes spectra tensor\(float\) \['batch', 1024\].* writes spectra "
                                         r"tensor\(float\) \[batch, 512\]"):
        load_onnx_model(str(bad))
    other_grid = 4 if meta["config"]["pool_stride"] != 4 else 8  # same nfft, another token grid
    entry.value = json.dumps({**meta, "config": {**meta["config"], "pool_stride": other_grid}})
    onnx.save(proto, str(bad))
    with pytest.raises(ValueError, match="its graph keeps .* tokens .*, but its metadata describes"):
        load_onnx_model(str(bad))


def test_load_model_dispatches_to_onnxruntime(models):
    from gnuradio.specenc.model.runtime_onnx import OnnxSpectrumModel

    _, weights, onnx_path = models
    for path in (weights, onnx_path):
        m = load_model(path, runtime="onnxruntime")
        assert isinstance(m, OnnxSpectrumModel) and m.threshold == pytest.approx(0.42)
    auto = load_model(weights, runtime="auto", device="cpu")  # torch: the higher CPU throughput
    assert not isinstance(auto, OnnxSpectrumModel) and auto.device == "cpu"
    # an exported graph runs only on onnxruntime, so `specenc eval/run --model x.onnx` need no --runtime
    assert isinstance(load_model(onnx_path), OnnxSpectrumModel)


def test_specenc_run_gives_identical_alerts_with_either_runtime(models, tmp_path, capsys, specenc_cpp):
    """`specenc run` (psd -> encoder -> detector -> alert sink) on a 0.25 s generated scene, torch vs the
    exported .onnx: the same class and score for every spectrum, the same alerts."""
    from gnuradio.specenc import cli, sigmf_io
    from gnuradio.specenc.synth import write_scenario

    _, weights, onnx_path = models
    scene = write_scenario(str(tmp_path / "scene.sigmf-meta"), scenario="demo", seconds=0.25, seed=3)
    spectra, alerts = {}, {}
    for runtime, model in (("torch", weights), ("onnxruntime", onnx_path)):
        out, jsonl = tmp_path / f"{runtime}.sigmf-meta", tmp_path / f"{runtime}.jsonl"
        # threshold 0.3: this untrained model scores every spectrum 0.541-0.546, so the whole scene is one alert
        # event (a threshold among those scores would sit within the runtimes' 1e-5 difference of some)
        assert cli.main(["run", scene, "--runtime", runtime, "--model", model, "--threads", "1", "--threshold",
                         "0.3", "--per-spectrum", "--out", str(out), "--alerts", str(jsonl)]) == 0
        assert {"torch": "torch on cpu", "onnxruntime": "onnxruntime on cpu (CPU)"}[runtime] in capsys.readouterr().out
        annotations = sigmf_io.read_meta(str(out)).annotations
        spectra[runtime] = [(a["core:sample_start"], a["core:label"], a["specenc:score"]) for a in annotations
                            if "specenc:score" in a and a["core:label"] != "anomaly"]
        alerts[runtime] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    capsys.readouterr()
    assert len(spectra["torch"]) > 400 and len(alerts["torch"]) == 1
    assert [s[:2] for s in spectra["torch"]] == [s[:2] for s in spectra["onnxruntime"]]
    np.testing.assert_allclose([s[2] for s in spectra["torch"]], [s[2] for s in spectra["onnxruntime"]],
                               atol=1.5e-4)  # rounded to 4 decimals in the annotations
    no_score = [[{k: v for k, v in a.items() if k != "score"} for a in alerts[r]] for r in ("torch", "onnxruntime")]
    assert no_score[0] == no_score[1]
    np.testing.assert_allclose([a["score"] for a in alerts["torch"]], [a["score"] for a in alerts["onnxruntime"]],
                               atol=1e-5)


def test_calibrate_cli_writes_an_exported_model_with_the_sites_threshold(models, tmp_path, monkeypatch):
    """The deployed .onnx (an int8 one scores a little differently from its fp32 source) is calibrated itself:
    same threshold as its checkpoint's for the same scores, the same graph, the calibration in its metadata."""
    import argparse

    from gnuradio.specenc import sigmf_io
    from gnuradio.specenc.training import calibrate_cli

    _, weights, onnx_path = models
    rng = np.random.default_rng(4)
    iq = ((rng.normal(size=512 * 400) + 1j * rng.normal(size=512 * 400)) * 1e-3).astype(np.complex64)
    meta = sigmf_io.write_recording(str(tmp_path / "clean.sigmf-meta"), iq, 1e6, 433.92e6)
    parser = argparse.ArgumentParser()
    calibrate_cli.add_arguments(parser)
    site = {}
    for name, src in (("safetensors", weights), ("onnx", onnx_path)):
        out = tmp_path / "site" / f"site.{name}"  # a folder that does not exist yet, as for a checkpoint
        assert calibrate_cli.main(parser.parse_args([meta, "--model", src, "--far", "0.01", "--integrate", "4",
                                                     "--out", str(out)])) == 0
        site[name] = load_model(str(out)) if name == "safetensors" else load_onnx_model(str(out))
    assert site["onnx"].threshold == pytest.approx(site["safetensors"].threshold, abs=1e-5)
    assert site["onnx"].threshold != pytest.approx(0.42)
    cal = site["onnx"].metadata["calibration"]
    assert cal["integrate"] == 4 and cal["calibrated_on"] == "clean.sigmf-meta"
    assert site["onnx"].metadata["note"] == "test" and site["onnx"].config == load_onnx_model(onnx_path).config
    spectra = datasets.TestSets(7, 1024).scenes(8)["spectra"]
    np.testing.assert_array_equal(site["onnx"].predict(spectra).anomaly_score,
                                  load_onnx_model(onnx_path).predict(spectra).anomaly_score)
    # A wrong output name is refused before any recording is scored (minutes, on a long one).
    monkeypatch.setattr(calibrate_cli, "recording_scores", lambda *a: pytest.fail("scored before checking --out"))
    with pytest.raises(ValueError, match=r"site.safetensors: an ONNX model \(.*m.onnx\) is written as a .onnx file"):
        calibrate_cli.main(parser.parse_args([meta, "--model", onnx_path, "--out", str(tmp_path / "site.safetensors")]))
    for out in ("x.onnx", "M2"):
        with pytest.raises(ValueError, match=f"{out}: a checkpoint is written as .safetensors"):
            calibrate_cli.main(parser.parse_args([meta, "--model", weights, "--out", str(tmp_path / out)]))
