"""Speculative ensemble: only low-confidence rows take the slow path, and it is counted."""

import numpy as np
import pytest

from gnuradio.specenc.model import ModelConfig, SpectrumModel
from gnuradio.specenc.model.ensemble import SpeculativeEnsemble

SMALL = ModelConfig(nfft=256, d_model=16, n_layers=1, n_heads=2, n_kv_heads=2)


def test_low_confidence_rows_take_the_large_model():
    small = SpectrumModel.from_config(SMALL, seed=0)
    large = SpectrumModel.from_config(SMALL.replace(d_model=32), seed=1)
    x = np.random.default_rng(0).normal(-100, 3, (6, 256)).astype(np.float32)
    conf = small.predict(x, rx_freq=2.44e9).confidence
    cut = float(np.median(conf))
    ens = SpeculativeEnsemble(small, large, min_confidence=cut)
    p, ps, pl = ens.predict(x, rx_freq=2.44e9), small.predict(x, rx_freq=2.44e9), large.predict(x, rx_freq=2.44e9)
    slow = conf < cut
    assert ens.stats["slow_rows"] == slow.sum() > 0 and ens.stats["rows"] == 6
    np.testing.assert_allclose(p.confidence[slow], pl.confidence[slow], rtol=1e-5)
    np.testing.assert_allclose(p.confidence[~slow], ps.confidence[~slow], rtol=1e-5)
    assert p.embedding.shape == (6, 16)
    edges = lambda row: [(d["bin_start"], d["bin_stop"], d["family"]) for d in row]  # noqa: E731
    assert [edges(row) for row in p.detections] == [edges((pl if s else ps).detections[i]) for i, s in enumerate(slow)]
    assert ens.slow_fraction() == pytest.approx(slow.mean())
    # Anomaly outputs are the small model's on every row: its threshold is the ensemble's.
    assert ens.threshold == small.threshold
    np.testing.assert_array_equal(p.anomaly_score, ps.anomaly_score)
    np.testing.assert_array_equal(p.anomaly_bins, ps.anomaly_bins)
    assert p.anomaly_kind == ps.anomaly_kind
    never = SpeculativeEnsemble(small, large, 0.0)
    never.predict(x)
    assert never.stats["slow_rows"] == 0


def test_mismatched_models_are_rejected():
    with pytest.raises(ValueError, match="nfft"):
        SpeculativeEnsemble(SpectrumModel.from_config(SMALL), SpectrumModel.from_config(ModelConfig()))
