"""Rotary position embedding over frequency: positions are the kept tokens' true token indices.

none: no rotation. static: theta = rope_theta (10000). dynamic: one learned theta per band
(ism, cellular, gnss, aero, other), log-parameterised so it stays positive, initialised to rope_theta;
each spectrum uses its band's theta, so the model can learn a band-specific frequency resolution.

Each head's features are rotated in neighbouring pairs (2i, 2i+1) by angle position * theta^(-2i/hd).
Checkpoint version 1 paired feature i with i + hd/2; checkpoint.py reorders such files on load.
"""

import math

import torch
from torch import nn


class Rotary:
    """cos/sin tables for one forward pass; `apply` rotates (B, H, K, hd), `apply_tokens` rotates
    (B, K, H, hd) (heads after tokens, as the fused qkv projection lays them out)."""

    def __init__(self, cos, sin):
        self.cos, self.sin = cos, sin  # (B, 1, K, hd/2)
        self._turn = None  # cos + i sin, made on the first call and kept for every layer of this pass

    def apply(self, x):  # (B, H, K, hd)
        return self._rotate(x, lambda t: t)

    def apply_tokens(self, x):  # (B, K, H, hd)
        return self._rotate(x, lambda t: t.transpose(1, 2))

    def _rotate(self, x, layout):
        if x.dtype in (torch.float32, torch.float64) and not _tracing():
            if self._turn is None:
                self._turn = torch.complex(self.cos, self.sin)
            return rotate_complex(x, layout(self._turn))
        return rotate(x, layout(self.cos), layout(self.sin))


def _tracing():
    """ONNX export, torch.export and torch.compile trace the network; they take no complex ops."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling() or torch.compiler.is_exporting()


def rotate(x, cos, sin):
    """Rotate each pair of neighbouring features (x[2i], x[2i+1]) of the last axis by angle i:
    [a, b] -> [a cos - b sin, a sin + b cos], in real ops (for tracers and half precision)."""
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


def rotate_complex(x, turn):
    """The same rotation as one complex multiply, (a + ib)(cos + i sin): the pairs are neighbours in memory,
    so the input is viewed as complex without a copy. On the shipped model's q and k (strided slices of the
    qkv projection), 170 us instead of 882 (one thread, 32 spectra); a training step 120 ms instead of 136."""
    if x.stride(-1) != 1 or x.storage_offset() % 2 or any(s % 2 for s in x.stride()[:-1]):
        x = x.clone(memory_format=torch.contiguous_format)
    z = torch.view_as_complex(x.unflatten(-1, (-1, 2)))
    return torch.view_as_real(z * turn).flatten(-2)


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
