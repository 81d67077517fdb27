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


@pytest.mark.parametrize("average", [1, 4])
def test_flowgraph_equals_model_predict_on_power_spectrum(setup, average):
    model, rec = setup
    result = run_chain(rec, model, average=average, batch=32)
    spectra = dsp.power_spectrum(sigmf_io.read_samples(rec), nfft=model.nfft, overlap=0.5, average=average)
    ref = model.predict(spectra, rx_freq=rec.center_freq)
    assert result.num_spectra == len(spectra) > 0  # same count: nothing dropped
    assert result.labels == ref.labels  # same order
    np.testing.assert_allclose(result.confidence, ref.confidence, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.scores, ref.anomaly_score, rtol=1e-4, atol=1e-5)
    # Alerts: one per event of spectra above threshold, placed at their spectrum in samples, seconds and Hz.
    above = np.flatnonzero(ref.anomaly_score > model.threshold)
    assert {a["spectrum"] for a in result.alerts} <= set(above.tolist())
    if above.size:
        assert result.alerts and result.alerts[0]["spectrum"] == above[0]
    step = dsp.hop_size(model.nfft, 0.5) * average
    t0 = sigmf_io.datetime_to_rx_time(rec.datetime)
    for alert in result.alerts:
        k = alert["spectrum"]
        assert alert["sample_start"] == k * step
        assert alert["time"] == pytest.approx(t0[0] + t0[1] + k * step / rec.sample_rate, abs=1e-6)
        assert alert["freq_lower_edge"] == pytest.approx(rec.center_freq - rec.sample_rate / 2)
        assert alert["band"] == "aero"
