"""Rotary position embedding over frequency: positions are the kept tokens' true token indices.

none: no rotation. static: theta = rope_theta (10000). dynamic: one learned theta per band
(ism, cellular, gnss, aero, other), log-parameterised so it stays positive, initialised to rope_theta;
each spectrum uses its band's theta, so the model can learn a band-specific frequency resolution.
"""

import math

import torch
from torch import nn


class Rotary:
    """cos/sin tables for one forward pass; `apply` rotates (B, H, K, hd), `apply_tokens` rotates
    (B, K, H, hd) (heads after tokens, as the fused qkv projection lays them out)."""

    def __init__(self, cos, sin):
        self.cos, self.sin = cos, sin  # (B, 1, K, hd/2)

    def apply(self, x):  # (B, H, K, hd)
        return rotate(x, self.cos, self.sin)

    def apply_tokens(self, x):  # (B, K, H, hd)
        return rotate(x, self.cos.transpose(1, 2), self.sin.transpose(1, 2))


def rotate(x, cos, sin):
    """[x1, x2] -> [x1 cos - x2 sin, x1 sin + x2 cos] over the last axis (halves of hd)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    if not torch.is_inference_mode_enabled():  # autograd and export: out= and in-place ops are not traced
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    # Same maths, written straight into the output halves: no temporaries, no cat.
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    o1, o2 = out[..., :half], out[..., half:]
    torch.mul(x1, cos, out=o1).addcmul_(x2, sin, value=-1.0)
    torch.mul(x1, sin, out=o2).addcmul_(x2, cos)
    return out


class RotaryEmbedding(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.mode = cfg.rope
        self.half = cfg.head_dim // 2
        # exponent 2i/hd for i in [0, hd/2): inv_freq_i = theta^(-2i/hd)
        self.register_buffer("exponent", torch.arange(self.half, dtype=torch.float32) * 2.0 / cfg.head_dim,
                             persistent=False)
        if self.mode == "dynamic":
            self.log_theta = nn.Parameter(torch.full((cfg.n_bands,), math.log(cfg.rope_theta)))
        else:
            self.log_theta_static = math.log(cfg.rope_theta)

    def thetas(self):
        """Per-band theta (dynamic) or the scalar theta (static), for inspection and tests."""
        return self.log_theta.exp() if self.mode == "dynamic" else torch.tensor(math.exp(self.log_theta_static))

    def forward(self, positions, band):
        """positions: (B, K) float token indices; band: (B,) long -> Rotary or None."""
        if self.mode == "none":
            return None
        if self.mode == "dynamic":
            log_theta = self.log_theta[band].unsqueeze(-1)  # (B, 1)
        else:
            log_theta = torch.full((positions.shape[0], 1), self.log_theta_static, device=positions.device)
        inv_freq = torch.exp(-log_theta * self.exponent)  # (B, hd/2)
        angles = positions.unsqueeze(-1) * inv_freq.unsqueeze(1)  # (B, K, hd/2)
        return Rotary(angles.cos().unsqueeze(1), angles.sin().unsqueeze(1))
