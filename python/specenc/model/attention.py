"""Attention behind one adapter, `attn(q, k, v, mask=None, rope=None)`, with backends registered by name.

q: (B, H, T, hd); k, v: (B, Hkv, T, hd) with H % Hkv == 0 (query head h reads K/V head h // (H/Hkv),
the SDPA `enable_gqa` convention); mask: (B, T) bool, True = key may be attended; rope: a
`rope.Rotary` (cos/sin tables) applied to q and k inside the adapter. Returns (B, H, T, hd).

Backends: mha (reference maths), sdpa (torch scaled_dot_product_attention), flash (flash-attn
package, CUDA only), gqa (SDPA with enable_gqa, K/V not repeated), latent (m learned latents,
linear in T; it owns weights, so the network is built with it).
"""

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backend:
    name: str
    fn: object  # fn(q, k, v, mask, latents) -> (B, H, T, hd)
    kernel: str  # what runs, for the load-time log line
    supports_mask: bool = True
    devices: tuple = ("cpu", "cuda")
    dtypes: tuple = (torch.float32, torch.float16, torch.bfloat16)
    needs_latents: bool = False


_REGISTRY = {}


def register(backend):
    _REGISTRY[backend.name] = backend
    return backend


def available_backends():
    return tuple(_REGISTRY)


def get_backend(name):
    """The registered backend `name`; ValueError listing the available ones otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown attention backend {name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def check_backend(name, device="cpu", dtype=torch.float32):
    """Validate `name` for a device/dtype and log which kernel, dtype and workspace are in use."""
    b = get_backend(name)
    dev = torch.device(device).type
    if b.name == "flash":
        _flash_func(dev)  # raises with the fallback named
    if dev not in b.devices:
        raise ValueError(f"attention backend {name!r} does not run on {dev!r} (supports {b.devices})")
    if dtype not in b.dtypes:
        raise ValueError(f"attention backend {name!r} does not support {dtype} (supports {b.dtypes})")
    workspace = "O(B*H*T*m)" if b.needs_latents else ("O(B*H*T^2) scores" if b.name == "mha" else "fused, O(B*H*T)")
    log.info("attention backend %s: kernel %s, dtype %s, device %s, workspace %s",
             b.name, b.kernel, str(dtype).replace("torch.", ""), dev, workspace)
    return b


def _repeat_kv(k, n_rep):
    """(B, Hkv, T, hd) -> (B, Hkv*n_rep, T, hd), each K/V head repeated for its group of query heads."""
    return k if n_rep == 1 else k.repeat_interleave(n_rep, dim=1)


def _sdpa_mask(mask):
    return None if mask is None else mask[:, None, None, :]  # (B, 1, 1, T) broadcast over heads and queries


def _mha(q, k, v, mask, latents):
    n_rep = q.shape[1] // k.shape[1]
    k, v = _repeat_kv(k, n_rep), _repeat_kv(v, n_rep)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, T, T)
    if mask is not None:
        att = att.masked_fill(~mask[:, None, None, :], float("-inf"))
    return torch.softmax(att, dim=-1) @ v  # (B, H, T, hd)


def _sdpa(q, k, v, mask, latents):
    n_rep = q.shape[1] // k.shape[1]
    return F.scaled_dot_product_attention(q, _repeat_kv(k, n_rep), _repeat_kv(v, n_rep), attn_mask=_sdpa_mask(mask))


def _gqa(q, k, v, mask, latents):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=_sdpa_mask(mask), enable_gqa=True)


def _flash_func(device_type):
    try:
        from flash_attn import flash_attn_func
    except ImportError as exc:
        raise ValueError("attention backend 'flash' needs the flash-attn package, which is not installed; "
                         "use backend 'sdpa' (torch's SDPA picks the Flash kernel on CUDA)") from exc
    if device_type != "cuda" or not torch.cuda.is_available():
        raise ValueError("attention backend 'flash' runs only on CUDA; use backend 'sdpa' on this device")
    return flash_attn_func


def _flash(q, k, v, mask, latents):  # attn() refuses a mask: supports_mask=False
    fn = _flash_func(q.device.type)
    # flash-attn wants (B, T, H, hd) in fp16/bf16 and handles Hkv < H itself.
    dt = q.dtype if q.dtype in (torch.float16, torch.bfloat16) else torch.bfloat16
    out = fn(*(t.transpose(1, 2).to(dt) for t in (q, k, v)))
    return out.transpose(1, 2).to(q.dtype)


def _latent(q, k, v, mask, latents):
    """Two-stage attention through m learned latents (per head): O(T*m), not O(T^2).

    Latents read the sequence (latent queries over all keys), then every token reads the latents.
    latents: (H, m, hd).
    """
    if latents is None:
        raise ValueError("attention backend 'latent' needs the latent weights: build the network with backend='latent'")
    n_rep = q.shape[1] // k.shape[1]
    k, v = _repeat_kv(k, n_rep), _repeat_kv(v, n_rep)
    lat = latents.unsqueeze(0)  # (1, H, m, hd)
    summary = F.scaled_dot_product_attention(lat.expand(q.shape[0], -1, -1, -1), k, v,
                                             attn_mask=_sdpa_mask(mask))  # (B, H, m, hd)
    return F.scaled_dot_product_attention(q, lat.expand_as(summary), summary)  # (B, H, T, hd)


register(Backend("mha", _mha, "explicit softmax(QK^T/sqrt(d))V (reference maths)"))
register(Backend("sdpa", _sdpa, "torch.nn.functional.scaled_dot_product_attention"))
register(Backend("flash", _flash, "flash_attn.flash_attn_func", supports_mask=False, devices=("cuda",),
                 dtypes=(torch.float16, torch.bfloat16, torch.float32)))
register(Backend("gqa", _gqa, "scaled_dot_product_attention(enable_gqa=True)"))
register(Backend("latent", _latent, "two-stage SDPA through learned latents", needs_latents=True))


def attn(q, k, v, mask=None, rope=None, backend="sdpa", latents=None):
    """The adapter: apply RoPE to q and k, then run the named backend. Shapes in the module docstring."""
    b = get_backend(backend)
    if mask is not None and not b.supports_mask:
        raise ValueError(f"attention backend {backend!r} does not support a key mask; use backend 'sdpa'")
    if rope is not None:
        q, k = rope.apply(q), rope.apply(k)
    return b.fn(q, k, v, mask, latents)
