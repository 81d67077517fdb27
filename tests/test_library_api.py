"""The package as a library in notebooks and scripts: predict's inputs and memory, torch's random stream, the
caller's matplotlib backend (audits 69 and 71)."""

import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from blocks_fake_model import small_model_file

from gnuradio.specenc import synth
from gnuradio.specenc.model import ModelConfig, SpectrumModel, load_model, spectrum_model

SMALL = ModelConfig(d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, anomaly_hidden=16)


@pytest.fixture(scope="module")
def model():
    return SpectrumModel.from_config(SMALL, seed=0)


@pytest.fixture(scope="module")
def spectra():
    """Generated scenes' dB spectra: emitters, so rows have detections to decode."""
    return synth.make_batch(np.random.default_rng(1), batch_size=400, nfft=1024).spectra.astype(np.float32)


def test_predict_refuses_complex_iq_and_names_power_spectrum(model, spectra):
    """IQ given where dB spectra belong lost its imaginary part and was scored 'jamming' on every row, with only a
    NumPy ComplexWarning (audit 71)."""
    iq = (spectra[:4] + 1j * spectra[:4]).astype(np.complex64)
    with pytest.raises(ValueError, match=r"dsp\.power_spectrum"):
        model.predict(iq)


def test_predict_takes_a_read_only_array_without_a_warning(model, spectra):
    """np.load(mmap_mode='r') or np.frombuffer input made torch warn of undefined behaviour (audit 71)."""
    read_only = spectra[:16].copy()
    read_only.flags.writeable = False
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = model.predict(read_only)
    assert [str(w.message) for w in seen if issubclass(w.category, UserWarning)] == []
    want = model.predict(read_only.copy())
    assert got.labels == want.labels and got.anomaly_kind == want.anomaly_kind
    np.testing.assert_allclose(got.anomaly_score, want.anomaly_score, atol=1e-6)
    assert list(got.detections) == list(want.detections)


def _detections_close(a, b):
    """Detections equal row by row; confidences within float rounding."""
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b):
        assert [(d["bin_start"], d["bin_stop"], d["family"]) for d in row_a] == \
            [(d["bin_start"], d["bin_stop"], d["family"]) for d in row_b]
        np.testing.assert_allclose([d["confidence"] for d in row_a], [d["confidence"] for d in row_b], atol=1e-6)


def test_predict_in_row_blocks_gives_every_row_in_order(model, spectra, monkeypatch):
    """predict decodes MAX_BATCH rows at a time: the blocks' rows join in order, each as predicted alone or in one
    block (audit 71)."""
    x = spectra[:13]
    whole = model.predict(x, rx_freq=2.44e9)
    monkeypatch.setattr(spectrum_model, "MAX_BATCH", 5)  # blocks of 5, 5 and 3
    blocks = model.predict(x, rx_freq=2.44e9)
    assert blocks.labels == whole.labels and blocks.anomaly_kind == whole.anomaly_kind
    np.testing.assert_allclose(blocks.anomaly_score, whole.anomaly_score, atol=1e-6)
    np.testing.assert_allclose(blocks.embedding, whole.embedding, atol=1e-5)
    np.testing.assert_array_equal(blocks.anomaly_bins, whole.anomaly_bins)
    _detections_close(blocks.detections, whole.detections)
    alone = [model.predict(row, rx_freq=2.44e9) for row in x]
    assert [p.labels[0] for p in alone] == blocks.labels
    np.testing.assert_allclose([p.anomaly_score[0] for p in alone], blocks.anomaly_score, atol=1e-6)
    _detections_close([p.detections[0] for p in alone], blocks.detections)


def test_predicts_memory_grows_with_its_rows_outputs_not_their_decoding(model, spectra, monkeypatch):
    """Only the network ran in blocks: the decoding of the whole call held ~60-80 kB per row at once (a 20 000-row
    call grew by 1.2-1.5 GB; audit 71). In blocks, a row costs its input copy and outputs, ~6 kB."""
    monkeypatch.setattr(spectrum_model, "MAX_BATCH", 25)
    model.predict(spectra[:8])  # the trace is built once, outside the measure
    peaks = []
    for n in (100, 400):
        tracemalloc.start()
        try:
            model.predict(spectra[:n])
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert (peaks[1] - peaks[0]) / 300 < 20e3, f"{(peaks[1] - peaks[0]) / 300 / 1e3:.0f} kB per row"


def test_load_model_leaves_torchs_random_stream_where_it_was(tmp_path):
    """The network's random initial weights, replaced by the file's, were drawn from torch's global generator: a
    notebook that seeds torch got another stream for loading a model (audit 71)."""
    weights = small_model_file(tmp_path)
    torch.manual_seed(7)
    want = torch.rand(5)
    torch.manual_seed(7)
    load_model(weights)
    assert torch.equal(torch.rand(5), want)


def test_plots_leave_the_callers_matplotlib_backend_alone(tmp_path):
    """synth's plots and run's waterfall called matplotlib.use("Agg") and the training report did on import, so a
    notebook's plt.show() showed nothing after them (audit 71). In a process of its own: a backend is process-wide."""
    script = textwrap.dedent("""
        import sys
        import matplotlib
        import numpy as np
        import matplotlib.pyplot  # noqa: F401  (as a notebook has it)
        out = sys.argv[1]
        matplotlib.use("svg")
        from gnuradio.specenc.synth import write_scenario
        write_scenario(out + "/s.sigmf-meta", seconds=0.01, seed=1, plot=out + "/s.png")
        print("synth", matplotlib.get_backend())
        matplotlib.use("svg")
        from gnuradio.specenc.app import waterfall
        waterfall.render(out + "/w.png", np.zeros((4, 64)), 1e-3, 1e8, 1e6, title="w")
        print("waterfall", matplotlib.get_backend())
        matplotlib.use("svg")
        from gnuradio.specenc.training import report
        report.plot_snr({"family": {"by_snr": {"0..10 dB": {"accuracy": 0.5, "count": 3}}}}, out + "/r.png")
        print("report", matplotlib.get_backend())
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["synth", "svg", "waterfall", "svg", "report", "svg"]
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in ("s.png", "w.png", "r.png"))


def test_predict_converts_float64_block_by_block_and_refuses_values_float32_cannot_hold(model, spectra):
    """A float64 batch was converted to float32 whole before the blocks (audit 76); a value past float32's range,
    finite in float64, would reach the model as inf."""
    x = spectra[:6].astype(np.float64)
    want = model.predict(spectra[:6])
    got = model.predict(x)
    assert got.labels == want.labels
    np.testing.assert_allclose(got.anomaly_score, want.anomaly_score, atol=1e-6)
    x[4, 7] = 1e300
    with pytest.raises(ValueError, match=r"row\(s\) \[4\] contain NaN or inf"):
        model.predict(x)


def test_a_model_built_from_its_config_leaves_torchs_random_stream_where_it_was():
    """SpectrumModel.from_config seeds its own initial weights: the caller's torch stream stays where it was (audit 84:
    only load_model's was tested)."""
    torch.manual_seed(7)
    want = torch.rand(5)
    torch.manual_seed(7)
    SpectrumModel.from_config(SMALL, seed=3)
    assert torch.equal(torch.rand(5), want)
