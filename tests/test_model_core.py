"""SpectrumEncoder library: shapes across variants, backend agreement, token dropout, RoPE."""

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

from gnuradio.specenc import bands
from gnuradio.specenc.model import ModelConfig, SpectrumEncoder, attn, available_backends
from gnuradio.specenc.model import rope as rope_mod
from gnuradio.specenc.model.rope import RotaryEmbedding
from gnuradio.specenc.model.token_dropout import TokenDropout
from gnuradio.specenc.model.tokenizer import normalise

SMALL = dict(nfft=128, pool_stride=4, d_model=16, n_layers=1, n_heads=4, n_kv_heads=2, n_latents=4)
CPU_BACKENDS = [b for b in available_backends() if b != "flash"]


def _spectra(b=3, n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = -100 + 3 * torch.randn(b, n, generator=g)
    x[:, 40:52] += 30.0
    return x


@pytest.mark.parametrize("backend,rope,dropout,norm",
                         list(itertools.product(CPU_BACKENDS, ("none", "static", "dynamic"),
                                                ("none", "fixed", "gumbel"), ("rmsnorm", "layernorm"))))
def test_every_variant_has_the_contract_shapes(backend, rope, dropout, norm):
    cfg = ModelConfig(**SMALL, backend=backend, rope=rope, dropout_mode=dropout, norm=norm, drop_ratio=0.25)
    torch.manual_seed(0)
    net = SpectrumEncoder(cfg).eval()
    out = net(_spectra(), torch.tensor([0, 1, 4]))
    k = cfg.n_tokens if dropout == "none" else 24  # round(0.75 * 32)
    assert out["kept"].shape == (3, k)
    assert out["token_logits"].shape == (3, k, cfg.n_families)
    assert out["family_logits"].shape == (3, cfg.n_families)
    assert out["kind_logits"].shape == (3, cfg.n_kinds)
    assert out["anomaly_logit"].shape == (3,)
    assert out["recon"].shape == out["windows"].shape == (3, k, 4)
    assert out["embedding"].shape == (3, 16)
    assert torch.all(out["kept"][:, 1:] > out["kept"][:, :-1])  # ascending true positions
    assert all(torch.isfinite(v.float()).all() for v in out.values())


def _qkv(b=2, h=4, hkv=2, t=10, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, t, d, generator=g), torch.randn(b, hkv, t, d, generator=g),
            torch.randn(b, hkv, t, d, generator=g))


@pytest.mark.parametrize("backend", ["sdpa", "gqa"])
def test_backends_agree_with_reference_maths(backend):
    q, k, v = _qkv()
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[0, 7:] = False
    rope = RotaryEmbedding(ModelConfig(**{**SMALL, "d_model": 32, "rope": "dynamic"}))(
        torch.arange(10.0).expand(2, 10) * 3, torch.tensor([0, 2]))
    for m in (None, mask):
        ref = attn(q, k, v, mask=m, rope=rope, backend="mha")
        torch.testing.assert_close(attn(q, k, v, mask=m, rope=rope, backend=backend), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_masked_keys_do_not_change_the_output(backend):
    q, k, v = _qkv(seed=1)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[:, 6:] = False
    lat = torch.randn(4, 3, 8) if backend == "latent" else None
    a = attn(q, k, v, mask=mask, backend=backend, latents=lat)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 6:] += 5.0
    v2[:, :, 6:] -= 7.0
    torch.testing.assert_close(attn(q, k2, v2, mask=mask, backend=backend, latents=lat), a)


def test_whole_networks_agree_across_backends_on_the_same_weights():
    cfg = ModelConfig(**SMALL, backend="mha")
    torch.manual_seed(0)
    net = SpectrumEncoder(cfg).eval()
    x, band = _spectra(), torch.tensor([0, 1, 2])
    ref = net(x, band)["family_logits"]
    for name in ("sdpa", "gqa"):
        net.set_backend(name)
        torch.testing.assert_close(net(x, band)["family_logits"], ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="latent"):
        net.set_backend("latent")


def test_unknown_backend_lists_the_available_ones():
    with pytest.raises(ValueError, match="available: mha, sdpa, flash, gqa, latent"):
        ModelConfig(backend="fast").validate()
    with pytest.raises(ValueError, match="available"):
        attn(*_qkv(), backend="nope")


def test_flash_without_package_or_cuda_names_the_fallback():
    with pytest.raises(ValueError, match="'sdpa'"):
        attn(*_qkv(), backend="flash")


@pytest.mark.parametrize("r,expected", [(0.0, 32), (0.25, 24), (0.5, 16), (0.3, 22)])
def test_fixed_dropout_keeps_exactly_the_highest_energy_tokens(r, expected):
    cfg = ModelConfig(**SMALL, dropout_mode="fixed", drop_ratio=r)
    drop = TokenDropout(cfg)
    g = torch.Generator().manual_seed(3)
    energy = torch.randn(2, 32, generator=g)
    windows = torch.randn(2, 32, 4, generator=g)
    tokens = torch.randn(2, 32, 16, generator=g)
    x, kept = drop(tokens, energy, windows)
    assert kept.shape == (2, expected) and x.shape == (2, expected, 16)
    for row in range(2):
        want = set(torch.argsort(energy[row], descending=True)[:expected].tolist())
        assert set(kept[row].tolist()) == want
        torch.testing.assert_close(x[row], tokens[row, kept[row]])


def test_fixed_dropout_breaks_energy_ties_by_lower_entropy():
    cfg = ModelConfig(**SMALL, dropout_mode="fixed", drop_ratio=0.5)
    drop = TokenDropout(cfg)
    energy = torch.zeros(1, 32)  # all tied
    windows = torch.zeros(1, 32, 4)
    windows[0, 1::2, 1:] = -3.0  # odd tokens: one peak bin, low entropy -> kept
    _, kept = drop(torch.randn(1, 32, 16), energy, windows)
    assert kept[0].tolist() == list(range(1, 32, 2))


def test_gumbel_dropout_gradients_reach_the_scorer_and_eval_is_deterministic():
    cfg = ModelConfig(**SMALL, dropout_mode="gumbel", drop_ratio=0.5)
    torch.manual_seed(0)
    net = SpectrumEncoder(cfg).train()
    net.set_temperature(0.5)
    out = net(_spectra(), torch.tensor([0, 1, 2]))
    (out["family_logits"].sum() + out["anomaly_logit"].sum()).backward()
    grad = net.dropout.scorer.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    net.eval()
    a, b = net(_spectra(), torch.tensor([0, 1, 2]))["kept"], net(_spectra(), torch.tensor([0, 1, 2]))["kept"]
    assert torch.equal(a, b) and a.shape == (3, 16)
    with pytest.raises(ValueError, match="tau"):
        net.set_temperature(0.0)


def test_gumbel_dropout_in_eval_keeps_the_top_tokens_of_energy_plus_the_learned_score():
    """audit 61: eval ranking by energy alone (the learned scorer ignored, unlike in training) passed. Energy = token
    index, the scorer adds 20 to even tokens: the top 16 of the sum are the even tokens 6..30 and the odd 27, 29, 31
    (energy alone: 16..31; the scorer alone: the even ones)."""
    cfg = ModelConfig(**SMALL, dropout_mode="gumbel", drop_ratio=0.5)
    drop = TokenDropout(cfg).eval()
    with torch.no_grad():
        drop.scorer.weight.zero_()
        drop.scorer.weight[0, 0] = 20.0
        drop.scorer.bias.zero_()
    tokens = torch.zeros(1, 32, 16)
    tokens[0, 0::2, 0] = 1.0
    x, kept = drop(tokens, torch.arange(32.0)[None], torch.zeros(1, 32, 4))
    assert kept[0].tolist() == [6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 27, 28, 29, 30, 31]
    torch.testing.assert_close(x[0], tokens[0, kept[0]])


def test_dynamic_theta_is_per_band_and_learnable():
    cfg = ModelConfig(**{**SMALL, "rope": "dynamic"})
    rope = RotaryEmbedding(cfg)
    assert rope.log_theta.shape == (len(bands.BANDS),) and rope.log_theta.requires_grad
    pos = torch.arange(8.0).expand(2, 8)
    r = rope(pos, torch.tensor([0, 1]))
    (r.cos.sum() + r.sin.sum()).backward()
    assert rope.log_theta.grad[0] != 0 and rope.log_theta.grad[1] != 0 and rope.log_theta.grad[2] == 0
    with torch.no_grad():
        rope.log_theta[1] += 1.0
    r = rope(pos, torch.tensor([0, 1]))
    assert not torch.allclose(r.cos[0], r.cos[1])  # different band -> different rotation
    assert torch.allclose(r.cos[:, :, 0], torch.ones(2, 1, 1))  # position 0 is never rotated


def test_rope_uses_true_positions_not_compacted_order():
    cfg = ModelConfig(**{**SMALL, "rope": "static"})
    rope = RotaryEmbedding(cfg)
    a = rope(torch.tensor([[0.0, 5.0]]), torch.tensor([0]))
    b = rope(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))
    assert not torch.allclose(a.cos, b.cos)


def test_rope_turns_neighbouring_pairs_and_scores_depend_only_on_the_position_difference():
    cfg = ModelConfig(**{**SMALL, "rope": "static"})  # head_dim 4: pairs (0, 1) and (2, 3)
    rope = RotaryEmbedding(cfg)
    r = rope(torch.tensor([[3.0]]), torch.tensor([0]))
    x = torch.tensor([[[[1.0, 0.0, 0.0, 2.0]]]])  # (B, H, K, hd)
    c, s = r.cos[0, 0, 0], r.sin[0, 0, 0]  # angle 3 for pair 0, 3 * 10000^-0.5 for pair 1
    assert torch.allclose(r.apply(x)[0, 0, 0], torch.stack([c[0], s[0], -2 * s[1], 2 * c[1]]))
    q, k = torch.randn(1, 1, 1, 4).expand(1, 1, 2, 4), torch.randn(1, 1, 1, 4).expand(1, 1, 2, 4)
    a = rope(torch.tensor([[2.0, 7.0]]), torch.tensor([0]))
    b = rope(torch.tensor([[12.0, 17.0]]), torch.tensor([0]))
    qa, ka, qb, kb = a.apply(q), a.apply(k), b.apply(q), b.apply(k)
    score = lambda qr, kr: (qr[0, 0, 1] * kr[0, 0, 0]).sum()  # query at the second position, key at the first
    assert torch.allclose(score(qa, ka), score(qb, kb), atol=1e-5)  # both pairs 5 apart
    assert not torch.allclose(score(qa, ka), (q[0, 0, 1] * k[0, 0, 0]).sum(), atol=1e-3)  # and turned at all


@pytest.mark.parametrize("d_model,angles", [(16, [3.0, 0.03]), (32, [3.0, 0.3, 0.03, 0.003])])
def test_rope_angles_follow_theta_to_the_minus_2i_over_head_dim(d_model, angles):
    """audit 61: exponent i/hd instead of 2i/hd passed (the test above reads its angles back from the module).
    Position 3, theta 10000: pair i turns by 3 * 10000^(-2i/hd); head_dim 4 and 8."""
    cfg = ModelConfig(**{**SMALL, "d_model": d_model, "rope": "static"})
    r = RotaryEmbedding(cfg)(torch.tensor([[3.0]]), torch.tensor([0]))
    assert cfg.head_dim == 2 * len(angles) and cfg.rope_theta == 10000.0
    torch.testing.assert_close(torch.atan2(r.sin, r.cos).flatten(), torch.tensor(angles), rtol=1e-5, atol=0)
    dynamic = RotaryEmbedding(ModelConfig(**{**SMALL, "d_model": d_model, "rope": "dynamic"}))
    r = dynamic(torch.tensor([[3.0]]), torch.tensor([2]))  # initialised to the same theta in every band
    torch.testing.assert_close(torch.atan2(r.sin, r.cos).flatten(), torch.tensor(angles), rtol=1e-5, atol=0)


def test_rope_complex_multiply_equals_the_real_ops_in_values_and_gradients():
    cfg = ModelConfig(**{**SMALL, "rope": "dynamic"})
    emb = RotaryEmbedding(cfg)
    qkv = torch.randn(2, 8, 8, 4, requires_grad=True)  # (B, K, heads, hd) as the fused projection lays them out
    odd = torch.randn(2, 8, 6, 5)[..., 1:]  # odd storage offset and strides: cannot be viewed as complex
    positions, band = torch.rand(2, 8) * 30, torch.tensor([1, 3])
    for x in (qkv[:, :, :6], qkv[:, :, 1:7], odd):
        results = []
        for tracing in (False, True):  # complex multiply; real ops, as export and torch.compile trace them
            r = emb(positions, band)
            with pytest.MonkeyPatch.context() as m:
                m.setattr(rope_mod, "_tracing", lambda: tracing)
                y = r.apply_tokens(x)
            grads = torch.autograd.grad(y.square().sum(), [emb.log_theta] + ([qkv] if x is not odd else []))
            results.append((y, grads))
        (y1, g1), (y2, g2) = results
        assert torch.allclose(y1, y2, atol=1e-6)
        assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g1, g2)) and g1[0].abs().sum() > 0


def _rotate_v1(x, cos, sin):
    """Version-1 RoPE: feature i turned with feature i + hd/2."""
    a, b = x[..., :x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


@pytest.mark.parametrize("backend", ["sdpa", "latent"])
def test_version1_model_files_load_with_their_own_outputs(tmp_path, monkeypatch, backend):
    import json

    from gnuradio.specenc.model import load_model
    from gnuradio.specenc.model.checkpoint import json_path_for, save_checkpoint

    torch.manual_seed(0)
    net = SpectrumEncoder(ModelConfig(**{**SMALL, "rope": "dynamic", "backend": backend})).eval()
    x, band = _spectra(), torch.tensor([0, 2, 4])
    with torch.no_grad(), monkeypatch.context() as m:
        m.setattr(rope_mod, "_tracing", lambda: True)  # real ops ...
        m.setattr(rope_mod, "rotate", _rotate_v1)  # ... as version 1 ran these weights
        want = net(x, band, training_outputs=False)
    path = str(tmp_path / "v1.safetensors")
    save_checkpoint(net, path)
    info = json.loads(open(json_path_for(path)).read())
    open(json_path_for(path), "w").write(json.dumps({**info, "version": 1}))
    loaded = load_model(path).net
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            got = loaded(x, band, training_outputs=False)
        for key in ("family_logits", "anomaly_logit", "embedding"):
            assert torch.allclose(got[key], want[key], atol=1e-5), key


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="drop_ratio"):
        ModelConfig(drop_ratio=1.0).validate()
    with pytest.raises(ValueError, match="n_kv_heads"):
        ModelConfig(n_heads=4, n_kv_heads=3).validate()
    with pytest.raises(ValueError, match="rope"):
        ModelConfig(rope="yes").validate()
    for name, value in (("mlp_ratio", "2"), ("rope_theta", None), ("drop_ratio", "0.1"),  # as JSON may hold them
                        ("rope_theta", float("inf")), ("norm_scale_db", float("nan"))):
        with pytest.raises(ValueError, match=f"ModelConfig: {name}={value!r} must be a finite number"):
            ModelConfig(**{name: value}).validate()
    with pytest.raises(ValueError, match="ModelConfig: d_model=True must be an integer"):  # True read as 1
        ModelConfig(d_model=True).validate()


@pytest.mark.parametrize("n", [1024, 7])
def test_normalise_subtracts_the_lower_median_of_each_row(n):
    x = torch.randn(5, n) * 20 - 90
    x[1] = -100.0  # a flat row: every value is the median
    x[2, : n // 2 + 1] = -120.0  # ties at the median
    expected = (x - torch.median(x, dim=-1, keepdim=True).values) / 10.0  # torch.median: the lower middle value
    assert torch.equal(normalise(x, 10.0), expected)


def test_token_context_embeds_the_neighbouring_windows_and_no_further():
    cfg = ModelConfig(**SMALL, token_context=1)
    tok = SpectrumEncoder(cfg).tokenizer
    x = _spectra(1)
    _, _, base = tok(x)
    y = x.clone()
    y[0, 12 * 4 + 1] += 20.0  # one bin of window 12
    _, _, moved = tok(y)
    changed = (moved - base).abs().amax(-1)[0] > 1e-6
    assert changed.nonzero().flatten().tolist() == [11, 12, 13]
    with pytest.raises(ValueError, match="token_context"):
        ModelConfig(**SMALL, token_context=-1).validate()


def test_attention_family_pool_weights_tokens_and_uniform_scores_give_the_mean():
    torch.manual_seed(0)
    net = SpectrumEncoder(ModelConfig(**SMALL, family_pool="attention")).eval()
    heads, x = net.heads, torch.randn(2, 32, 16)
    with torch.no_grad():
        pooled = heads(x)["family_logits"]
        assert not torch.allclose(pooled, heads.family(x.mean(1)))
        heads.family_score.weight.zero_()  # equal scores: the attention pool is the mean
        torch.testing.assert_close(heads(x)["family_logits"], heads.family(x.mean(1)))
        heads.family_score.weight.copy_(10 * x[0, 5:6])  # a score that singles out token 5 of row 0
        torch.testing.assert_close(heads(x)["family_logits"][0], heads.family(x[0, 5]), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="family_pool"):
        ModelConfig(**SMALL, family_pool="max").validate()


def test_importing_the_model_pulls_in_no_gnuradio_runtime():
    code = ("import sys, gnuradio.specenc.model as m; m.SpectrumModel.from_config(); "
            "bad = [k for k in sys.modules if k.startswith('gnuradio.gr') or k == 'pmt']; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env=None)
