"""A generated recording through the real flowgraph gives exactly model.predict on dsp.power_spectrum."""

import numpy as np
import pytest
from blocks_fake_model import scene_file, small_model_file

from gnuradio.specenc import dsp, sigmf_io
from gnuradio.specenc.app.flowgraph import run_chain
from gnuradio.specenc.model import load_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory, specenc_cpp):
    folder = tmp_path_factory.mktemp("e2e")
    model = load_model(small_model_file(folder, threshold=0.45))
    rec = sigmf_io.read_meta(scene_file(folder))
    return model, rec


def expected_alerts(scores, threshold, holdoff=16):
    """Spectra that open an alert event: above threshold and more than holdoff spectra after the last one above it."""
    onsets, last = [], None
    for i in np.flatnonzero(scores > threshold):
        if last is None or i - last > holdoff:
            onsets.append(int(i))
        last = i
    return onsets


@pytest.mark.parametrize("average", [1, 4])
def test_flowgraph_equals_model_predict_on_power_spectrum(setup, average):
    model, rec = setup
    spectra = dsp.power_spectrum(sigmf_io.read_samples(rec), nfft=model.nfft, overlap=0.5, average=average)
    ref = model.predict(spectra, rx_freq=rec.center_freq)
    threshold = float(np.median(ref.anomaly_score))  # about half the spectra alert: many events to place
    result = run_chain(rec, model, average=average, batch=32, threshold=threshold, holdoff=0)
    assert result.num_spectra == len(spectra) > 0  # same count: nothing dropped
    assert result.labels == ref.labels  # same order
    np.testing.assert_allclose(result.confidence, ref.confidence, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.scores, ref.anomaly_score, rtol=1e-4, atol=1e-5)
    # Alerts: one per event of spectra above threshold, placed at their spectrum in samples, seconds and Hz.
    onsets = expected_alerts(ref.anomaly_score, threshold, holdoff=0)
    assert len(onsets) > 2
    assert [a["spectrum"] for a in result.alerts] == onsets
    step = dsp.hop_size(model.nfft, 0.5) * average
    t0 = sum(sigmf_io.datetime_to_rx_time(rec.datetime))
    for alert in result.alerts:
        k = alert["spectrum"]
        assert alert["kind"] == (ref.anomaly_kind[k] or "unknown")
        assert alert["score"] == pytest.approx(ref.anomaly_score[k], rel=1e-4)
        assert alert["sample_start"] == k * step
        assert alert["time"] == pytest.approx(t0 + k * step / rec.sample_rate, abs=1e-6)
        where = np.flatnonzero(ref.anomaly_bins[k])  # located: the anomaly's bins; else the whole band
        edges = (dsp.bin_edges_hz(where[0], where[-1] + 1, model.nfft, rec.sample_rate, rec.center_freq)
                 if where.size else (rec.center_freq - rec.sample_rate / 2, rec.center_freq + rec.sample_rate / 2))
        assert (alert["freq_lower_edge"], alert["freq_upper_edge"]) == pytest.approx(edges)
        assert alert["band"] == "aero"
