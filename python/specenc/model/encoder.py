"""The SpectrumEncoder network: tokenizer -> band embedding -> token dropout -> pre-norm blocks -> heads.

Forward maps (spectra (B, N) dB, band (B,) long) to a dict of tensors (see heads.Heads.forward);
InferenceGraph gives the inference outputs as a tuple, for ONNX export and TorchScript tracing.
"""

import torch
from torch import nn

from .attention import attn, get_backend
from .heads import Heads
from .norms import make_norm
from .rope import RotaryEmbedding
from .token_dropout import TokenDropout
from .tokenizer import Tokenizer


class SelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.backend = cfg.backend
        # One fused projection for q, k, v: a single GEMM instead of three.
        self.qkv = nn.Linear(cfg.d_model, (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.latents = (nn.Parameter(torch.randn(cfg.n_heads, cfg.n_latents, cfg.head_dim) * cfg.head_dim ** -0.5)
                        if get_backend(cfg.backend).needs_latents else None)

    def forward(self, x, rope, mask=None):  # x (B, K, D)
        b, k, d = x.shape
        n_qk = self.n_heads + self.n_kv
        qkv = self.qkv(x).view(b, k, n_qk + self.n_kv, self.hd)  # (B, K, H + 2 Hkv, hd): q heads, k heads, v heads
        qk = qkv[:, :, :n_qk]
        if rope is not None:
            qk = rope.apply_tokens(qk)  # q and k rotated together, before the head transpose
        q = qk[:, :, :self.n_heads].transpose(1, 2)  # (B, H, K, hd)
        kk = qk[:, :, self.n_heads:].transpose(1, 2)  # (B, Hkv, K, hd)
        v = qkv[:, :, n_qk:].transpose(1, 2)
        y = attn(q, kk, v, mask=mask, backend=self.backend, latents=self.latents)  # (B, H, K, hd)
        return self.proj(y.transpose(1, 2).reshape(b, k, d))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden = int(cfg.d_model * cfg.mlp_ratio)
        self.fc = nn.Linear(cfg.d_model, hidden)
        self.out = nn.Linear(hidden, cfg.d_model)

    def forward(self, x):
        return self.out(nn.functional.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1, self.attn = make_norm(cfg.norm, cfg.d_model), SelfAttention(cfg)
        self.norm2, self.mlp = make_norm(cfg.norm, cfg.d_model), MLP(cfg)

    def forward(self, x, rope, mask=None):
        x = x + self.attn(self.norm1(x), rope, mask)
        return x + self.mlp(self.norm2(x))


class SpectrumEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        cfg.validate()
        self.config = cfg
        self._built_dropout = cfg.dropout_mode  # what set_tokens_kept(1.0) goes back to
        self.tokenizer = Tokenizer(cfg)
        # Anomalies are defined against a band plan, so every token knows its band (also with rope="none").
        self.band_embed = nn.Embedding(cfg.n_bands, cfg.d_model)
        nn.init.normal_(self.band_embed.weight, std=0.02)
        self.dropout = TokenDropout(cfg)
        self.rope = RotaryEmbedding(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = make_norm(cfg.norm, cfg.d_model)
        self.heads = Heads(cfg)

    def set_temperature(self, tau):
        """Gumbel-softmax temperature for token dropout (the trainer anneals it 1.0 -> 0.1)."""
        if not tau > 0:
            raise ValueError(f"Gumbel temperature tau={tau!r} must be > 0")
        self.dropout.tau = float(tau)

    def set_tokens_kept(self, fraction):
        """Keep this fraction of the tokens from now on (see SpectrumModel.set_tokens_kept)."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"tokens kept={fraction!r} must be a fraction in (0, 1]")
        cfg = self.config
        # Without a trained dropper the parameter-free energy ranking (`fixed`) chooses the tokens; keeping all of
        # them again restores the network as built (a model saved then exports like the trained one).
        mode = self._built_dropout
        if mode == "none" and fraction < 1.0:
            mode = "fixed"
        self.config = cfg.replace(dropout_mode=mode, drop_ratio=1.0 - fraction)
        self.dropout.mode = mode
        self.dropout.n_keep = self.config.n_tokens if mode == "none" else self.config.n_kept

    def set_backend(self, name):
        """Switch the attention backend (same weights); latent needs latent weights built in."""
        b = get_backend(name)
        has_latents = self.blocks[0].attn.latents is not None if len(self.blocks) else b.needs_latents
        if b.needs_latents != has_latents:
            raise ValueError(f"backend {name!r} cannot run a network built for backend {self.config.backend!r}: "
                             "'latent' has its own weights, so it is chosen when the network is built")
        for blk in self.blocks:
            blk.attn.backend = name
        self.config = self.config.replace(backend=name)

    def forward(self, spectra, band, training_outputs=True):
        """spectra (B, N) dB float32, band (B,) long -> dict of outputs (heads.Heads.forward).

        training_outputs=False leaves out what only the loss reads (recon and its target windows)."""
        windows, energy, tokens = self.tokenizer(spectra)  # (B, T, s), (B, T), (B, T, D)
        tokens = tokens + self.band_embed(band).unsqueeze(1)
        x, kept = self.dropout(tokens, energy, windows)  # (B, K, D), (B, K)
        rope = self.rope(kept.to(x.dtype), band)
        for blk in self.blocks:
            x = blk(x, rope)
        x = self.norm(x)
        out = self.heads(x, recon=training_outputs)
        out["kept"] = kept
        if training_outputs:
            out["windows"] = windows.gather(1, kept.unsqueeze(-1).expand(-1, -1, windows.shape[-1]))  # recon target
        return out


OUTPUTS = ("family_logits", "token_logits", "anomaly_logit", "kind_logits", "token_anomaly_logit", "embedding", "kept")


def outputs_for(cfg):
    """The inference outputs of a network built from cfg: OUTPUTS, then bin_logits with the per-bin head."""
    return OUTPUTS + ("bin_logits",) if cfg.bin_edges else OUTPUTS


class InferenceGraph(nn.Module):
    """The network with the inference outputs as a tuple in outputs_for(config) order (exporters and
    tracers want positional outputs)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.names = outputs_for(net.config)

    def forward(self, spectra, band):  # (B, N) float32, (B,) int64
        out = self.net(spectra, band, training_outputs=False)
        return tuple(out[k] for k in self.names)
