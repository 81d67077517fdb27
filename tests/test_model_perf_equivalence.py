"""The inference fast paths (RoPE as a complex multiply, q and k rotated together in token layout, no recon
outputs, the TorchScript trace predict runs on CPU, vectorised detections) give the reference maths'
results to <= 1e-5."""

import numpy as np
import pytest
import torch

from gnuradio.specenc.model import ModelConfig, SpectrumModel, spectrum_model
from gnuradio.specenc.model.attention import attn
from gnuradio.specenc.model.encoder import SpectrumEncoder
from gnuradio.specenc.model.detections import VALLEY_DB, grid_to_detections
from gnuradio.specenc.model.spectrum_model import DEFAULT_WEIGHTS, load_model

TOL = 1e-5


def _spectra(b, nfft=1024, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(-100, 3, (b, nfft)).astype(np.float32)
    x[: b // 2, 300:360] += 30  # an emission in half the rows
    x[1::3, 700:720] += 12
    return torch.from_numpy(x), torch.from_numpy(rng.integers(0, 5, b))


def _reference_attention(mod, x, rope):
    """SelfAttention as first written: split, per-tensor head views, RoPE inside the adapter in (B, H, K, hd)."""
    b, k, d = x.shape
    q, kk, v = mod.qkv(x).split([mod.n_heads * mod.hd, mod.n_kv * mod.hd, mod.n_kv * mod.hd], dim=-1)
    q = q.view(b, k, mod.n_heads, mod.hd).transpose(1, 2)
    kk = kk.view(b, k, mod.n_kv, mod.hd).transpose(1, 2)
    v = v.view(b, k, mod.n_kv, mod.hd).transpose(1, 2)
    y = attn(q, kk, v, rope=rope, backend=mod.backend, latents=mod.latents)
    return mod.proj(y.transpose(1, 2).reshape(b, k, d))


def _random_net(cfg, seed=0):
    torch.manual_seed(seed)
    net = SpectrumEncoder(cfg).eval()
    with torch.no_grad():  # non-trivial thetas, scorer and norm weights (their init is flat)
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


@pytest.mark.parametrize("changes", [
    {},  # the default: RMSNorm, dynamic RoPE, gumbel, sdpa
    dict(rope="static", backend="mha", n_kv_heads=2),
    dict(rope="none", norm="layernorm", dropout_mode="fixed"),
    dict(backend="gqa", n_kv_heads=1, dropout_mode="none"),
    dict(backend="latent", n_latents=8),
])
def test_fast_attention_equals_reference_maths(changes):
    cfg = ModelConfig(**changes)
    net = _random_net(cfg)
    x = torch.randn(3, cfg.n_kept, cfg.d_model)
    positions = torch.sort(torch.randperm(cfg.n_tokens)[:cfg.n_kept]).values.float().expand(3, -1)
    band = torch.tensor([0, 2, 4])
    mod = net.blocks[0].attn
    with torch.no_grad():
        rope = net.rope(positions, band)
        want = _reference_attention(mod, x, rope)
    with torch.inference_mode():
        got = mod(x, net.rope(positions, band))
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= TOL


@pytest.mark.parametrize("changes", [{}, dict(rope="static", backend="mha"), dict(dropout_mode="fixed")])
def test_inference_forward_equals_training_graph_forward(changes):
    """inference_mode (fast RoPE, no recon) against autograd mode (the written-out maths), same weights."""
    net = _random_net(ModelConfig(**changes), seed=1)
    x, band = _spectra(8)
    want = net(x, band)  # grad-enabled: the reference formulas
    with torch.inference_mode():
        got = net(x, band, training_outputs=False)
    assert "recon" not in got and "windows" not in got and {"recon", "windows"} <= set(want)
    for k, v in got.items():
        assert torch.equal(v, want[k]) if k == "kept" else (v - want[k].detach()).abs().max().item() <= TOL, k


def _reference_runs(prob, level, stride, names, valley_db=VALLEY_DB):
    """One row, token by token: runs of occupied tokens (P(no emission) < 0.5), valley tokens removed,
    family of highest summed probability, its mean probability as confidence."""
    occ = list(prob[:, 0] < 0.5)
    t = len(occ)
    runs, i = [], 0
    while i < t:
        if occ[i]:
            j = i
            while j < t and occ[j]:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    out = []
    for s, e in runs:
        keep = [k for k in range(s, e) if not (level[k] <= max(level[s:k + 1]) - valley_db
                                                and level[k] <= max(level[k:e]) - valley_db)]
        pieces = []
        for k in keep:
            if pieces and pieces[-1][1] == k:
                pieces[-1][1] = k + 1
            else:
                pieces.append([k, k + 1])
        for a, b in pieces:
            sums = prob[a:b, 1:].sum(0)
            f = int(sums.argmax())
            out.append({"bin_start": a * stride, "bin_stop": b * stride, "family": names[f + 1],
                        "confidence": float(sums[f] / (b - a))})
    return out


@pytest.mark.parametrize("changes", [
    {},  # gumbel, sdpa, dynamic RoPE, RMSNorm
    dict(dropout_mode="fixed", backend="mha", rope="static"),
    dict(dropout_mode="none", backend="gqa", n_kv_heads=1, norm="layernorm"),
    dict(backend="latent", n_latents=8, rope="none"),
])
def test_cpu_trace_equals_the_eager_network_at_any_batch_and_follows_changes(changes):
    """predict on CPU runs a TorchScript trace made on 8 rows; any batch and band gives the eager outputs,
    and set_tokens_kept / set_backend trace again."""
    from gnuradio.specenc.model.spectrum_model import decode_outputs

    m = SpectrumModel(_random_net(ModelConfig(**changes), seed=2))

    def eager(x, band):
        with torch.inference_mode():
            out = m.net(x, band, training_outputs=False)
        return {k: v.numpy() for k, v in decode_outputs(out).items()}

    def check():
        for rows in (1, 5, 13):
            x, band = _spectra(rows, seed=rows)
            got, want = m.forward_numpy(x.numpy(), band.numpy()), eager(x, band)
            assert set(got) == set(want)
            for k in want:
                assert np.allclose(got[k], want[k], atol=TOL), k
        assert m._cpu_graph() is not None  # the trace ran, not the eager fallback

    check()
    first = m._cpu_graph()
    m.set_tokens_kept(0.5)
    assert m._cpu_graph() is not first
    check()  # half the tokens: the new trace, not the first one
    if m.config.backend in ("sdpa", "mha"):
        m.set_backend("mha" if m.config.backend == "sdpa" else "sdpa")
        check()


def test_vectorised_detections_equal_per_row_runs():
    rng = np.random.default_rng(3)
    names = [f"f{i}" for i in range(4)]
    prob = rng.dirichlet(np.ones(4), (40, 64)).astype(np.float32)
    prob[:, :, 0] = np.repeat(rng.random((40, 22)), 3, axis=1)[:, :64]  # occupancy in runs of tokens
    prob[:, :, 1:] *= ((1 - prob[:, :, 0]) / prob[:, :, 1:].sum(-1))[..., None]
    level = rng.normal(-80, 8, (40, 64)).astype(np.float32)  # valleys of every depth
    prob[0, :, 0] = 1.0  # nothing
    prob[1, :, 0] = 0.1  # occupied everywhere: valleys alone split it
    prob[2, -1, 0] = prob[3, 0, 0] = 0.0  # runs touching the row ends (must not join across rows)
    got = grid_to_detections(prob, level, 4, names)
    assert len(got) == 40 and got[0] == [] and len(got[1]) >= 1
    for row in range(40):
        want = _reference_runs(prob[row], level[row], 4, names)
        assert [(d["bin_start"], d["bin_stop"], d["family"]) for d in got[row]] == \
               [(d["bin_start"], d["bin_stop"], d["family"]) for d in want]
        assert all(type(d["bin_start"]) is int and type(d["confidence"]) is float for d in got[row])
        np.testing.assert_allclose([d["confidence"] for d in got[row]], [d["confidence"] for d in want],
                                   rtol=0, atol=TOL)


def test_predict_equals_reference_decoding(monkeypatch):
    """predict (fast forward, vectorised decoding) against the network's reference outputs decoded by hand; the
    faint-detection filter after the decoding is left out (test_model_faint_detections checks it)."""
    monkeypatch.setattr(spectrum_model, "drop_faint", lambda dets, level: dets)
    model = SpectrumModel.from_config(seed=2)
    model.net = _random_net(model.config, seed=2)
    x, _ = _spectra(12, seed=4)
    freq = np.array([2.44e9, 900e6, 1.575e9, 1.09e9, 5e6, np.nan] * 2)
    pred = model.predict(x.numpy(), rx_freq=freq)
    from gnuradio.specenc.model.spectrum_model import bands_for
    out = model.net(x, torch.from_numpy(bands_for(freq, 12)))
    fam = torch.softmax(out["family_logits"], -1).detach()
    np.testing.assert_array_equal(pred.label_index, fam.argmax(-1).numpy())
    np.testing.assert_allclose(pred.confidence, fam.max(-1).values.numpy(), atol=TOL)
    np.testing.assert_allclose(pred.anomaly_score, torch.sigmoid(out["anomaly_logit"]).detach().numpy(), atol=TOL)
    np.testing.assert_allclose(pred.embedding, out["embedding"].detach().numpy(), atol=TOL)
    tok = torch.softmax(out["token_logits"], -1).detach().numpy()
    stride = model.config.pool_stride
    for row in range(12):
        grid = np.zeros((model.config.n_tokens, tok.shape[-1]), np.float32)
        grid[:, 0] = 1.0  # dropped tokens: no emission
        grid[out["kept"][row].numpy()] = tok[row]
        level = x[row].numpy().reshape(-1, stride).max(-1)
        want = _reference_runs(grid, level, stride, model.family_names)
        assert [(d["bin_start"], d["bin_stop"], d["family"]) for d in pred.detections[row]] == \
               [(d["bin_start"], d["bin_stop"], d["family"]) for d in want]


def test_shipped_checkpoint_fast_path_equals_reference():
    if not DEFAULT_WEIGHTS.exists():
        pytest.skip(f"SKIPPED LOUDLY: shipped weights {DEFAULT_WEIGHTS} are missing; cannot check them")
    model = load_model()
    x, band = _spectra(16, seed=5)
    want = model.net(x, band)
    with torch.inference_mode():
        got = model.net(x, band, training_outputs=False)
    for k, v in got.items():
        assert torch.equal(v, want[k]) if k == "kept" else (v - want[k].detach()).abs().max().item() <= TOL, k


def test_predict_in_cpu_passes_equals_one_row_at_a_time():
    """predict cuts big batches into CPU_PASS_ROWS passes dealt out to two workers (passes 0 and 2 to one,
    1 to the other); rows across pass boundaries keep their place and results."""
    from gnuradio.specenc.model.spectrum_model import CPU_PASS_ROWS
    model = SpectrumModel.from_config(seed=3)
    x, _ = _spectra(2 * CPU_PASS_ROWS + 5, seed=6)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        whole = model.predict(x.numpy(), rx_freq=2.44e9)
    finally:
        torch.set_num_threads(before)
    for row in (0, CPU_PASS_ROWS - 1, CPU_PASS_ROWS, 2 * CPU_PASS_ROWS + 4):
        one = model.predict(x[row].numpy(), rx_freq=2.44e9)
        np.testing.assert_allclose(one.embedding[0], whole.embedding[row], rtol=0, atol=TOL)
        np.testing.assert_allclose(one.anomaly_score[0], whole.anomaly_score[row], rtol=0, atol=TOL)
        assert one.labels[0] == whole.labels[row]
        assert [(d["bin_start"], d["bin_stop"]) for d in one.detections[0]] == \
               [(d["bin_start"], d["bin_stop"]) for d in whole.detections[row]]
