"""The per-bin occupancy head (ModelConfig.bin_edges): its targets, its loss term, and detections whose
outer tokens are cut to the bins it calls occupied and which are split at free valleys, the same in torch and
onnxruntime."""

import numpy as np
import pytest
import torch

from gnuradio.specenc import bands, labels
from gnuradio.specenc.model import ModelConfig, SpectrumModel, batch_to_tensors, spectrum_loss
from gnuradio.specenc.model.detections import Detections, grid_to_detections, split_at_valleys, trim_to_bins
from gnuradio.specenc.model.loss import bin_targets

SMALL = dict(nfft=256, pool_stride=8, d_model=16, n_layers=1, n_heads=2, n_kv_heads=2, dropout_mode="none",
             drop_ratio=0.0)


def _batch(b=4):
    x = np.random.default_rng(0).normal(-100, 3, (b, 256)).astype(np.float32)
    x[:, 100:103] += 35
    bin_family = np.zeros((b, 256), np.int64)
    bin_family[:, 100:103] = labels.FAMILY_INDEX["tone"]
    return {"spectra": x, "family": np.full(b, labels.FAMILY_INDEX["tone"]), "bin_family": bin_family,
            "anomaly": np.zeros(b, np.float32), "anomaly_kind": np.full(b, -1), "anomaly_bins": np.zeros((b, 256), bool),
            "band": np.full(b, bands.BAND_INDEX["ism"])}


def test_bin_targets_are_the_occupied_bins_of_each_kept_token():
    bf = torch.zeros(1, 16, dtype=torch.long)
    bf[0, 5] = 3
    bf[0, 12:14] = 7
    got = bin_targets(bf, torch.tensor([[1, 3]]), 4)  # tokens 1 (bins 4..7) and 3 (bins 12..15)
    assert got.tolist() == [[[0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]]


def test_the_bin_term_joins_the_loss_only_for_a_network_with_the_head():
    t = batch_to_tensors(_batch())
    plain = SpectrumModel.from_config(ModelConfig(**SMALL)).net.train()
    assert "bins" not in spectrum_loss(plain(t["spectra"], t["band"]), t)[1]
    net = SpectrumModel.from_config(ModelConfig(**SMALL, bin_edges=True)).net.train()
    out = net(t["spectra"], t["band"])
    assert out["bin_logits"].shape == (4, 32, 8)
    loss, terms = spectrum_loss(out, t, alpha=0.3)
    others = terms["recon"] + 0.3 * terms["anomaly"] + terms["family"] + terms["token"] + terms["kind"] + terms["where"]
    assert terms["bins"] > 0 and terms["loss"] == pytest.approx(others + terms["bins"], rel=1e-5)
    loss.backward()
    assert net.heads.bin_occupancy.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="bin_edges"):
        ModelConfig(**SMALL, bin_edges=1).validate()


def test_trim_cuts_only_the_outer_tokens_and_keeps_an_edge_where_no_bin_is_occupied():
    names = labels.FAMILIES
    dets = Detections(2, [0, 0, 1], [8, 40, 16], [32, 48, 24], [1, 2, 3], [0.5, 0.6, 0.7], names)
    occ = np.zeros((2, 64), bool)
    occ[0, 11:30] = True  # first run: cut to 11..30; its middle token's bins do not matter
    occ[0, 20] = False
    occ[1, 18:20] = True  # a one-token detection: cut to exactly its occupied bins
    got = trim_to_bins(dets, occ, 8)  # row 0's second detection (40..48) has no occupied bin: kept
    assert [(d["bin_start"], d["bin_stop"]) for d in got[0]] == [(11, 30), (40, 48)]
    assert [(d["bin_start"], d["bin_stop"], d["family"]) for d in got[1]] == [(18, 20, names[3])]
    empty = Detections(1, [], [], [], [], [], names)
    assert len(trim_to_bins(empty, occ[:1], 8).row) == 0


def _cols(dets):
    return list(zip(dets.row.tolist(), dets.bin_start.tolist(), dets.bin_stop.tolist(), dets.family.tolist(),
                    dets.confidence.tolist()))


def test_split_cuts_at_wide_deep_free_gaps_only():
    names = labels.FAMILIES
    level = np.full((5, 64), -60.0)
    occ = np.zeros((5, 64), bool)
    occ[:, 0:10] = occ[:, 20:40] = True  # every row: one detection 0..40 with a 10-bin free gap at 10..20
    level[0, 10:20] = -90.0  # a deep gap: two emissions
    level[1, 10:20] = -64.0  # only 4 dB below its sides (an FSK's dip): one emission
    level[2, 10:20] = -90.0
    occ[2, 11:20] = True  # ... but only one free bin wide
    level[3, 10:20] = level[3, 25:30] = -90.0
    occ[3, 25:30] = False  # two deep gaps: three pieces
    occ[4, 30:40] = False
    level[4, 30:40] = -90.0  # free bins at the detection's end are no cut
    dets = Detections(5, range(5), [0] * 5, [40] * 5, [4] * 5, [0.75] * 5, names)
    got = _cols(split_at_valleys(dets, occ, level))
    assert got == [(0, 0, 10, 4, 0.75), (0, 20, 40, 4, 0.75), (1, 0, 40, 4, 0.75), (2, 0, 40, 4, 0.75),
                   (3, 0, 10, 4, 0.75), (3, 20, 25, 4, 0.75), (3, 30, 40, 4, 0.75), (4, 0, 40, 4, 0.75)]
    assert _cols(split_at_valleys(dets, occ, level, min_gap=11)) == _cols(dets)  # no gap that wide
    last = Detections(1, [0], [20], [64], [4], [0.75], names)  # a detection that ends at the last bin
    occ[0, 40:64] = True
    assert _cols(split_at_valleys(last, occ[:1], level[:1])) == [(0, 20, 64, 4, 0.75)]
    level[0, 40:64] = -30.0
    occ[0, 45:50] = False
    level[0, 45:50] = -90.0
    assert _cols(split_at_valleys(last, occ[:1], level[:1])) == [(0, 20, 45, 4, 0.75), (0, 50, 64, 4, 0.75)]
    assert len(split_at_valleys(Detections(1, [], [], [], [], [], names), occ[:1], level[:1]).row) == 0


def _split_reference(dets, occ, level, min_gap, valley_db):
    """Detection by detection, bin by bin: the rule of split_at_valleys written as a loop."""
    out = []
    for r, a, b, f, c in _cols(dets):
        o, lv, cuts, k = occ[r, a:b], level[r, a:b], [], 0
        while k < b - a:
            j = k
            while j < b - a and not o[j]:
                j += 1
            if k < j and 0 < k and j < b - a and j - k >= min_gap and lv[k:j].max() <= min(lv[:k].max(), lv[j:].max()) - valley_db:
                cuts += [k, j]
            k = max(j, k + 1)
        edges = [0] + cuts + [b - a]
        out += [(r, a + p, a + q, f, c) for p, q in zip(edges[::2], edges[1::2])]
    return out


def test_split_agrees_with_a_loop_on_random_grids():
    rng = np.random.default_rng(5)
    occ = rng.random((40, 256)) < 0.7
    occ[:, 100:130] = False  # long free stretches, so that cuts happen
    level = rng.normal(-80, 8, (40, 256))
    starts = np.sort(rng.choice(np.arange(0, 256, 8), (40, 6)), axis=1)
    rows, a_, b_ = [], [], []
    for r, row in enumerate(starts):
        for s, e in zip(row[:-1], row[1:]):
            if e > s:
                rows.append(r), a_.append(s), b_.append(e)
    dets = Detections(40, rows, a_, b_, rng.integers(1, 9, len(rows)), rng.random(len(rows)), labels.FAMILIES)
    for min_gap, valley in ((5, 6.0), (2, 0.0), (1, 12.0)):
        want = _split_reference(dets, occ, level, min_gap, valley)
        assert _cols(split_at_valleys(dets, occ, level, min_gap, valley)) == want
        assert len(want) > len(dets.row)  # the case cuts something


def test_predict_cuts_detections_to_the_heads_bins_and_onnxruntime_agrees():
    ort = pytest.importorskip("onnxruntime", reason="SKIPPED: onnxruntime not installed")
    del ort
    from gnuradio.specenc.model.runtime_onnx import OnnxSpectrumModel, make_session, onnx_bytes, checkpoint_meta
    cfg = ModelConfig(**SMALL, bin_edges=True)
    model = SpectrumModel.from_config(cfg, seed=3)
    with torch.no_grad():  # every token occupied, so each row is one detection over the whole band
        model.net.heads.token_family.bias.copy_(torch.tensor([-20.0] + [0.0] * (cfg.n_families - 1)))
        model.net.heads.bin_occupancy.weight.zero_()
        model.net.heads.bin_occupancy.bias.copy_(torch.tensor([-5.0, -5.0, 5.0, 5.0, 5.0, 5.0, 5.0, -5.0]))
    x = _batch(3)["spectra"]
    x[:, [0, 1, 255]] = -130.0  # the free bins beside the detection lie low, so drop_faint keeps it
    got = model.predict(x)
    assert [(d["bin_start"], d["bin_stop"]) for d in got.detections[0]] == [(2, 255)]
    onnx = OnnxSpectrumModel(make_session(onnx_bytes(model), ["CPUExecutionProvider"], nfft=256),
                             checkpoint_meta(model))
    edges = lambda p: [[(d["bin_start"], d["bin_stop"], d["family"]) for d in row] for row in p.detections]
    assert edges(onnx.predict(x)) == edges(got)
    # The plain decoding of the same grid, for contrast: whole tokens.
    prob = np.zeros((1, 32, cfg.n_families), np.float32)
    prob[..., 1] = 1.0
    assert [(d["bin_start"], d["bin_stop"]) for d in grid_to_detections(prob, np.zeros((1, 32)), 8, labels.FAMILIES)[0]] \
        == [(0, 256)]
