"""The per-bin occupancy head (ModelConfig.bin_edges): its targets, its loss term, and detections whose
outer tokens are cut to the bins it calls occupied, the same in torch and onnxruntime."""

import numpy as np
import pytest
import torch

from gnuradio.specenc import bands, labels
from gnuradio.specenc.model import ModelConfig, SpectrumModel, batch_to_tensors, spectrum_loss
from gnuradio.specenc.model.detections import Detections, grid_to_detections, trim_to_bins
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
