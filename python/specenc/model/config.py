"""SpectrumEncoder hyper-parameters as one dataclass (saved as JSON beside the weights).

Structural fields (shapes of the weights) and runtime fields (attention backend) live together so
a checkpoint's JSON fully describes how to rebuild the network.
"""

import dataclasses
import math
from dataclasses import dataclass

from .. import bands, dsp, labels

NORMS = ("rmsnorm", "layernorm")
FAMILY_POOLS = ("mean", "attention")
ROPES = ("none", "static", "dynamic")
DROPOUT_MODES = ("none", "fixed", "gumbel")


def is_finite(value):
    """math.isfinite, False also for an integer too large for a float (JSON holds any)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@dataclass
class ModelConfig:
    nfft: int = 1024  # bins per input spectrum
    pool_stride: int = 4  # bins per token: T = nfft / pool_stride (256)
    token_context: int = 0  # c: a token's embedding also sees the c windows on each side of its own
    d_model: int = 64  # D, token width
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 4  # < n_heads only with the gqa backend (or mha/sdpa, which repeat K/V)
    mlp_ratio: float = 4.0
    norm: str = "rmsnorm"
    rope: str = "dynamic"
    rope_theta: float = 10000.0  # static theta, and the initial theta of every band when dynamic
    dropout_mode: str = "gumbel"
    drop_ratio: float = 0.25  # r: keep round((1 - r) * T) tokens
    backend: str = "sdpa"
    n_latents: int = 32  # m, latent backend only
    anomaly_hidden: int = 64
    family_pool: str = "mean"  # spectrum family head reads mean(x_enc) or an attention-weighted mean
    bin_edges: bool = False  # a per-bin occupancy head: detections' edges at bin resolution, not token
    n_families: int = len(labels.FAMILIES)
    n_kinds: int = len(labels.ANOMALY_KINDS)
    n_bands: int = len(bands.BANDS)
    norm_scale_db: float = 10.0  # tokenizer: (dB - median) / norm_scale_db

    @property
    def n_tokens(self):
        """T, tokens before dropout."""
        return self.nfft // self.pool_stride

    @property
    def n_kept(self):
        """K, tokens after dropout: round((1 - r) * T), at least 1 (round half up); all T without dropout."""
        if self.dropout_mode == "none":
            return self.n_tokens
        return max(1, int((1.0 - self.drop_ratio) * self.n_tokens + 0.5))

    @property
    def head_dim(self):
        return self.d_model // self.n_heads

    def validate(self):
        """Raise ValueError naming the first bad field and its allowed values."""
        def need(cond, msg):
            if not cond:
                raise ValueError(f"ModelConfig: {msg}")

        for name in ("nfft", "pool_stride", "d_model", "n_layers", "n_heads", "n_kv_heads", "n_latents",
                     "anomaly_hidden", "n_families", "n_kinds", "n_bands"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f"{name}={v!r} must be an integer >= 1")
        for name in ("mlp_ratio", "rope_theta", "drop_ratio", "norm_scale_db"):  # JSON may hold "2", null or 1e999
            v = getattr(self, name)
            need(isinstance(v, (int, float)) and not isinstance(v, bool) and is_finite(v),
                 f"{name}={v!r} must be a finite number")
        need(isinstance(self.token_context, int) and not isinstance(self.token_context, bool)
             and self.token_context >= 0, f"token_context={self.token_context!r} must be an integer >= 0")
        need(isinstance(self.bin_edges, bool), f"bin_edges={self.bin_edges!r} must be true or false")
        need(self.family_pool in FAMILY_POOLS, f"family_pool={self.family_pool!r} must be one of {FAMILY_POOLS}")
        need(self.nfft % self.pool_stride == 0,
             f"nfft={self.nfft} must be a multiple of pool_stride={self.pool_stride}")
        need(self.d_model % self.n_heads == 0,
             f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}")
        need(self.head_dim % 2 == 0 or self.rope == "none",
             f"head_dim={self.head_dim} (d_model/n_heads) must be even for rope={self.rope!r}")
        need(self.n_heads % self.n_kv_heads == 0,
             f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}")
        need(self.norm in NORMS, f"norm={self.norm!r} must be one of {NORMS}")
        need(self.rope in ROPES, f"rope={self.rope!r} must be one of {ROPES}")
        need(self.dropout_mode in DROPOUT_MODES, f"dropout_mode={self.dropout_mode!r} must be one of {DROPOUT_MODES}")
        need(0.0 <= self.drop_ratio < 1.0, f"drop_ratio={self.drop_ratio!r} must be in [0, 1)")
        width = int(self.d_model * self.mlp_ratio)
        need(width >= 1, f"mlp_ratio={self.mlp_ratio!r} with d_model={self.d_model} gives an MLP {width} wide; it must "
                         "be at least 1")
        # Other sizes than the label sets': fewer families failed in the loss and more named spectra "family39"; fewer
        # bands were indexed past the band embedding (audit 78).
        for name, size in (("n_families", len(labels.FAMILIES)), ("n_kinds", len(labels.ANOMALY_KINDS)),
                           ("n_bands", len(bands.BANDS))):
            need(getattr(self, name) == size, f"{name}={getattr(self, name)} must be {size}, the size of the label set")
        # A power of two, as the psd block makes them (no upper bound: bench paper's memory sweep builds 16384 tokens)
        need(self.nfft & (self.nfft - 1) == 0 and self.nfft >= dsp.MIN_NFFT,
             f"nfft={self.nfft} must be a power of two >= {dsp.MIN_NFFT} (the psd block's spectra)")
        need(self.rope_theta > 1.0, f"rope_theta={self.rope_theta!r} must be > 1")
        need(self.norm_scale_db > 0, f"norm_scale_db={self.norm_scale_db!r} must be > 0")
        from .attention import available_backends
        need(self.backend in available_backends(),
             f"backend={self.backend!r} is unknown; available: {', '.join(available_backends())}")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """Build from a JSON dict; unknown keys are an error (a newer or foreign file)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**d).validate()

    def replace(self, **changes):
        return dataclasses.replace(self, **changes).validate()


# The seed-size reference model the benchmarks compare against.
REFERENCE = dict(d_model=512, n_layers=6, n_heads=8, n_kv_heads=8)
