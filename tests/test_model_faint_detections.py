"""Detections no brighter than the free bins beside them are dropped (model.detections: local_contrast_db,
drop_faint)."""

import numpy as np

from gnuradio.specenc import labels
from gnuradio.specenc.model import ModelConfig, SpectrumModel
from gnuradio.specenc.model import spectrum_model
from gnuradio.specenc.model.detections import FAINT_DB, Detections, drop_faint, local_contrast_db


def _dets(n_rows, spans):
    """spans: (row, bin_start, bin_stop), sorted by row -> Detections (family tone, confidence 0.5)."""
    rows, a, b = zip(*spans) if spans else ((), (), ())
    return Detections(n_rows, rows, a, b, [labels.FAMILY_INDEX["tone"]] * len(rows), [0.5] * len(rows),
                      labels.FAMILIES)


def _spans(dets):
    return list(zip(dets.row.tolist(), dets.bin_start.tolist(), dets.bin_stop.tolist()))


def test_drop_faint_keeps_what_stands_above_its_free_neighbours():
    level = np.full((3, 1024), -100.0)
    level[0, 1::2] = -101.0  # a floor with some texture: its median is -100.5
    level[0, 100:110] = -90.0  # 10.5 dB over the floor: kept
    level[0, 300:310] = -99.0  # 1.5 dB: a bump of the floor, dropped
    level[0, 500:508] = -98.0  # 2.5 dB: kept at 2 dB, dropped at 3 dB
    level[0, 600:650] = -60.0  # a strong emitter ...
    level[0, 650:660] = -95.0  # ... a weak one beside it: its floor is the free bins beyond, not the strong one
    level[2, 0:10] = -90.0  # at the band's edge: free bins on one side only
    spans = [(0, 100, 110), (0, 300, 310), (0, 500, 508), (0, 600, 650), (0, 650, 660), (1, 0, 1024), (2, 0, 10)]
    dets = _dets(3, spans)
    np.testing.assert_allclose(local_contrast_db(dets, level)[[0, 1, 2, 3, 4, 6]], [10.5, 1.5, 2.5, 40.5, 5.5, 10.0])
    # Row 1 is all one detection of a flat floor: measured against the row's 10th percentile, 0 dB, dropped
    # (an infinite contrast kept it: audit 46).
    assert local_contrast_db(dets, level)[5] == 0.0
    assert _spans(drop_faint(dets, level, 2.0)) == [s for s in spans if s not in ((0, 300, 310), (1, 0, 1024))]
    assert _spans(drop_faint(dets, level, 3.0)) == [s for s in spans
                                                    if s not in ((0, 300, 310), (0, 500, 508), (1, 0, 1024))]
    assert len(drop_faint(dets, level).row) == 5  # FAINT_DB = 2
    level[1, 200:400] = -80.0  # the same whole-row detection over a 20 dB emitter filling a fifth of it: kept
    np.testing.assert_allclose(local_contrast_db(dets, level)[5], 20.0 * 200 / 1024, rtol=1e-6)
    assert (1, 0, 1024) in _spans(drop_faint(dets, level, 2.0))
    assert drop_faint(_dets(3, []), level).row.size == 0


def _contrast_reference(dets, level, floor_bins):
    """Detection by detection: mean level minus the median of the nearest free bins on each side (without any,
    the row's 10th percentile)."""
    covered = np.zeros(level.shape, bool)
    for r, a, b in _spans(dets):
        covered[r, a:b] = True
    out = []
    for r, a, b in _spans(dets):
        free = np.flatnonzero(~covered[r])
        near = np.concatenate([free[free < a][-floor_bins:], free[free >= b][:floor_bins]])
        out.append(level[r, a:b].astype(np.float64).mean() - np.median(level[r, near].astype(np.float64))
                   if near.size else level[r, a:b].astype(np.float64).mean() - np.percentile(level[r], 10))
    return np.array(out)


def test_contrast_agrees_with_a_loop_on_random_grids():
    rng = np.random.default_rng(3)
    level = rng.normal(-90, 6, (30, 256)).astype(np.float32)  # as spectra are
    spans = []
    for r in range(29):
        edges = np.sort(rng.choice(256, 8, replace=False))
        spans += [(r, int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
    spans.append((29, 0, 256))  # a row without free bins
    dets = _dets(30, spans)
    for floor_bins in (1, 4, 16):
        want = _contrast_reference(dets, level, floor_bins)
        got = local_contrast_db(dets, level, floor_bins)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert np.isfinite(got).all()
    kept = drop_faint(dets, level, 2.0)
    assert 0 < len(kept.row) < len(dets.row)  # the case drops some and keeps some


def test_predict_hands_out_the_decode_with_faint_detections_dropped(monkeypatch):
    model = SpectrumModel.from_config(ModelConfig(nfft=256, pool_stride=8, d_model=16, n_layers=1, n_heads=2,
                                                  n_kv_heads=2, dropout_mode="none", drop_ratio=0.0))
    x = np.random.default_rng(0).normal(-100, 5, (6, 256)).astype(np.float32)
    seen = []

    def spy(dets, level):
        seen.append((len(dets.row), level.copy()))
        return drop_faint(dets, level)

    monkeypatch.setattr(spectrum_model, "drop_faint", spy)
    got = model.predict(x).detections
    assert len(seen) == 1 and np.array_equal(seen[0][1], x)
    assert len(got.row) < seen[0][0]  # random weights detect noise; some of it is dropped


def test_contrast_rides_with_its_detection_through_slices_takes_and_joins():
    dets = Detections(3, [0, 0, 2], [1, 5, 7], [3, 9, 8], [1, 2, 3], [0.5, 0.6, 0.7], labels.FAMILIES, [4.0, 5.0, 6.0])
    assert dets[1:].contrast_db.tolist() == [6.0]
    assert dets.take([2, 0]).contrast_db.tolist() == [6.0, 4.0, 5.0]
    assert Detections.concat([dets, dets[:1]]).contrast_db.tolist() == [4.0, 5.0, 6.0, 4.0, 5.0]
    assert np.isnan(_dets(1, [(0, 1, 2)]).contrast_db).all()  # not measured


def test_predict_gives_each_detection_its_contrast_over_the_local_floor():
    model = SpectrumModel.from_config(ModelConfig(nfft=256, pool_stride=8, d_model=16, n_layers=1, n_heads=2,
                                                  n_kv_heads=2, dropout_mode="none", drop_ratio=0.0))
    x = np.random.default_rng(1).normal(-100, 5, (6, 256)).astype(np.float32)
    got = model.predict(x).detections
    assert len(got.row) and (got.contrast_db >= FAINT_DB).all()  # measured before the faint ones left
