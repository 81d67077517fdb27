"""Flowgraph lifecycles and model variants (audits 77 and 78): a model giving the wrong number of rows, senders made
in another thread while a sink counts them, a deleted sink's ZMQ address, label-set sizes, MLP width and nfft a model
cannot work with, and a model trained with the flash backend evaluated and run on onnxruntime."""

import gc
import importlib.util
import json
import pathlib
import re
import sys
import threading
import time

import numpy as np
import pmt
import pytest
from blocks_fake_model import ToneModel, small_model_file
from gnuradio import blocks, gr

from gnuradio.specenc import cli, message_senders
from gnuradio.specenc.alert_sink import alert_sink
from gnuradio.specenc.anomaly_detector import anomaly_detector
from gnuradio.specenc.model import ModelConfig, load_model
from gnuradio.specenc.spectrum_encoder import spectrum_encoder

NFFT = 64


def _tags(sink, key):
    return {t.offset: pmt.to_python(t.value) for t in sink.tags() if pmt.symbol_to_string(t.key) == key}


def test_a_model_giving_one_row_too_few_is_a_model_failure_and_the_run_ends(specenc_cpp, capfd):
    """Only an exception from predict was a model failure: results for one spectrum fewer than given failed later,
    in work(), which ended the encoder's thread and the run never ended (audit 77). Now that window passes through
    tagged specenc_invalid, the error is logged, and the stream goes on to its end."""
    class Short(ToneModel):
        def predict(self, spectra, rx_freq=None, sample_rate=None):
            if len(self.calls) != 2:  # the warm-up, one window, then one window answered a row short
                return super().predict(spectra, rx_freq, sample_rate)
            pred = super().predict(np.atleast_2d(spectra)[:-1], rx_freq, sample_rate)
            self.calls[-1] = (len(spectra), rx_freq)
            return pred

    rng = np.random.default_rng(0)
    spectra = (-100 + rng.normal(0, 1, (64, NFFT))).astype(np.float32)
    spectra[:, 20] = np.linspace(-95, -40, len(spectra))
    model = Short(NFFT)
    tb = gr.top_block()
    src = blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT)
    enc = spectrum_encoder(model_path=model, nfft=NFFT, batch=16)
    out = blocks.vector_sink_f(NFFT)
    tb.connect(src, enc, out)
    running = threading.Thread(target=tb.run, daemon=True)
    running.start()
    running.join(30)
    if running.is_alive():
        tb.stop()
        pytest.fail("the flowgraph hung after the model gave one row too few")
    np.testing.assert_array_equal(np.array(out.data()).reshape(-1, NFFT), spectra)  # every spectrum, in order
    ends = np.cumsum([n for n, _ in model.calls[1:]])  # the windows' ends, in stream order
    assert ends[1] - ends[0] > 1
    failed = list(range(ends[0], ends[1]))
    assert sorted(_tags(out, "specenc_invalid")) == failed
    assert sorted(_tags(out, "specenc_anomaly_score")) == sorted(set(range(len(spectra))) - set(failed))
    logged = "".join(capfd.readouterr())
    n = len(failed)
    assert logged.count("the model failed on spectra") == 1
    assert (f"the model failed on spectra {ends[0]}..{ends[1] - 1} (ValueError: it gave results for [{n - 1}] "
            f"spectra, not the {n} it was given)") in logged


def test_a_model_that_locates_no_anomaly_is_scored(specenc_cpp):
    """anomaly_bins None (a model that does not locate anomalies) is no wrong row count: the row check took len(None)
    and every spectrum went out unscored (audit 82)."""
    class Unlocated(ToneModel):
        def predict(self, spectra, rx_freq=None, sample_rate=None):
            pred = super().predict(spectra, rx_freq, sample_rate)
            pred.anomaly_bins = None
            return pred

    spectra = (-100 + np.random.default_rng(1).normal(0, 1, (32, NFFT))).astype(np.float32)
    tb = gr.top_block()
    out = blocks.vector_sink_f(NFFT)
    tb.connect(blocks.vector_source_f(spectra.ravel().tolist(), False, NFFT),
               spectrum_encoder(model_path=Unlocated(NFFT), nfft=NFFT, batch=16), out)
    tb.run()
    assert sorted(_tags(out, "specenc_anomaly_score")) == list(range(len(spectra)))
    assert not _tags(out, "specenc_invalid")


def test_a_sink_counts_its_senders_while_another_thread_makes_senders():
    """connections_to walked the senders' WeakSet while another thread's constructors added to it: "Set changed size
    during iteration" in the sink's thread ended it at a "done", and the detector's last alerts were lost (audit 77).
    A busy machine is stood for by a short switch interval."""
    keep = [anomaly_detector(nfft=NFFT) for _ in range(100)]  # earlier flowgraphs' senders not collected yet
    sink = alert_sink(stdout=False)
    stop, made, errors = threading.Event(), [], []

    def make():
        while not stop.is_set():
            made.append(anomaly_detector(nfft=NFFT))
            if len(made) > 200:
                del made[:100]  # dropped: their weak references die meanwhile too

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    maker = threading.Thread(target=make, daemon=True)
    try:
        maker.start()
        calls, deadline = 0, time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                assert message_senders.connections_to(sink) == 1  # none of them is connected to it
            except RuntimeError as exc:
                errors.append(exc)
            calls += 1
    finally:
        stop.set()
        maker.join()
        sys.setswitchinterval(previous)
    assert calls > 10 and not errors, f"{len(errors)} of {calls} calls raised: {errors[:1]}"
    assert len(keep) == 100 and sys.getswitchinterval() == previous


def test_a_deleted_sinks_zmq_address_is_bound_again(tmp_path):
    """A sink deleted with `del` (no close()) is freed only by the collector: a new sink on its address failed with
    "Address already in use" after a second of retries unless the script ran gc.collect() (audit 77)."""
    zmq = pytest.importorskip("zmq")
    assert gc.isenabled()
    sink = alert_sink(jsonl_path=str(tmp_path / "a.jsonl"), stdout=False, zmq_address="tcp://127.0.0.1:*")
    endpoint = sink._socket.getsockopt_string(zmq.LAST_ENDPOINT)  # a free port, chosen by the system
    del sink
    again = alert_sink(stdout=False, zmq_address=endpoint)
    assert again._socket.getsockopt_string(zmq.LAST_ENDPOINT) == endpoint
    again.close()


@pytest.mark.parametrize("change, message", [
    ({"n_bands": 2}, "n_bands=2 must be 5, the size of the label set"),
    ({"n_families": 3}, "n_families=3 must be 9, the size of the label set"),
    ({"n_kinds": 1}, "n_kinds=1 must be 6, the size of the label set"),
    ({"mlp_ratio": 0.01, "d_model": 32}, "mlp_ratio=0.01 with d_model=32 gives an MLP 0 wide"),
    ({"nfft": 32, "pool_stride": 4}, "nfft=32 must be a power of two >= 64"),
    ({"n_families": 10}, "n_families=10 must be 9, the size of the label set"),
    ({"nfft": 1000}, "nfft=1000 must be a power of two >= 64"),
], ids=["n_bands", "n_families", "n_kinds", "mlp_ratio", "nfft_small", "n_families_more", "nfft"])
def test_model_config_refuses_what_no_model_can_work_with(change, message):
    """2 bands crashed predict with a TorchScript traceback, 3 families named every spectrum family0, an MLP 0 wide
    trained without a word and failed export --int8, nfft 1000 was refused late by every command (audit 78)."""
    with pytest.raises(ValueError, match=re.escape(f"ModelConfig: {message}")):
        ModelConfig(**change).validate()
    with pytest.raises(ValueError, match=re.escape(message)):  # as a checkpoint's or training config's JSON
        ModelConfig.from_dict({**ModelConfig().to_dict(), **change})


@pytest.fixture(scope="module")
def flash_model(tmp_path_factory):
    """A small nfft-1024 model whose config says backend "flash", as a CUDA training run writes it."""
    folder = tmp_path_factory.mktemp("flash")
    weights = small_model_file(folder)
    config = pathlib.Path(weights).with_suffix(".json")
    doc = json.loads(config.read_text())
    doc["config"]["backend"] = "flash"
    config.write_text(json.dumps(doc))
    return weights


def test_a_model_trained_with_flash_is_evaluated_as_sdpa(flash_model, tmp_path, capsys):
    """eval had no --backend: a flash-trained model was refused on the CPU ("use backend 'sdpa'") and the user could
    not pass it (audit 78)."""
    out = tmp_path / "eval"
    code = cli.main(["eval", "--model", flash_model, "--backend", "sdpa", "--data", "synthetic", "--n-test", "32",
                     "--n-clean", "64", "--ae-steps", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "model" in json.loads((out / "results.json").read_text())


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_a_model_trained_with_flash_loads_on_onnxruntime(flash_model):
    """load_onnx_model built the torch model with the checkpoint's flash backend before exporting it as SDPA's maths:
    a flash-trained model could not run on onnxruntime at all (audit 78)."""
    model = load_model(flash_model, runtime="onnxruntime")
    assert type(model).__name__ == "OnnxSpectrumModel" and model.config.backend == "sdpa"
    spectra = np.random.default_rng(1).normal(-100, 1, (2, model.nfft)).astype(np.float32)
    reference = load_model(flash_model, backend="sdpa").predict(spectra)
    np.testing.assert_allclose(model.predict(spectra).anomaly_score, reference.anomaly_score, atol=1e-4)
