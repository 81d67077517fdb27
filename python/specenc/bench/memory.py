"""Peak memory of one forward pass, measured, with analytic K/V and attention-workspace bytes beside it.

CPU: the process's peak resident set (VmHWM) is reset through /proc/self/clear_refs ("5") after
returning freed heap pages to the OS (malloc_trim), so peak - current RSS is what the call added at
its high-water mark: activations, K/V, attention scores and allocator slack. CUDA:
torch.cuda.max_memory_allocated over the call. Elsewhere: None ("not measurable here").
"""

import ctypes
import gc
import re
import time

GIB = 1 << 30
MIB = 1 << 20


def _status_kib(field):
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) if m else None


def _trim():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_peak_supported():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kib("VmHWM") is not None
    except OSError:
        return False


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - t0)


def measure_peak_bytes(fn, device="cpu"):
    """(bytes that fn() added at its peak, or None where that cannot be measured; ms fn() took)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        ms = _timed(fn)  # fn synchronises
        return int(torch.cuda.max_memory_allocated() - base), ms
    if not rss_peak_supported():
        return None, _timed(fn)
    gc.collect()
    _trim()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    base = _status_kib("VmRSS")
    ms = _timed(fn)
    return max(0, (_status_kib("VmHWM") - base) * 1024), ms


def kv_bytes(cfg, tokens, batch=1, dtype_bytes=4):
    """Analytic K and V bytes over all layers: n_layers * 2 * B * n_kv_heads * T * head_dim * bytes."""
    return cfg.n_layers * 2 * batch * cfg.n_kv_heads * tokens * cfg.head_dim * dtype_bytes


def workspace_bytes(cfg, tokens, batch=1, dtype_bytes=4):
    """Analytic attention workspace of one layer (inference frees it before the next layer).

    mha materialises the (B, H, T, T) scores about three times at once (QK^T, the scaled copy, the
    softmax); sdpa/gqa on CPU run a blocked (flash-style) kernel, O(B*H*T*block); latent holds
    (B, H, T, m) scores."""
    h, t = cfg.n_heads, tokens
    if cfg.backend == "mha":
        return 3 * batch * h * t * t * dtype_bytes
    if cfg.backend == "latent":
        return 2 * batch * h * t * cfg.n_latents * dtype_bytes
    return batch * h * t * min(t, 512) * dtype_bytes


def activation_bytes(cfg, tokens, batch=1, dtype_bytes=4):
    """Rough live activations of one layer: x, norm, qkv, attention out, MLP hidden and GELU (~12 D per token)."""
    hidden = int(cfg.d_model * cfg.mlp_ratio)
    per_token = 4 * cfg.d_model + (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim + 2 * hidden
    return batch * tokens * per_token * dtype_bytes


def predicted_peak_bytes(cfg, tokens, batch=1, dtype_bytes=4):
    """What a forward pass should need at its peak: the cap check runs this before measuring."""
    return (kv_bytes(cfg, tokens, batch, dtype_bytes) + workspace_bytes(cfg, tokens, batch, dtype_bytes)
            + activation_bytes(cfg, tokens, batch, dtype_bytes))


def fmt_bytes(n):
    if n is None:
        return "not measurable here"
    if n >= GIB:
        return f"{n / GIB:.2f} GiB"
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / 1024:.0f} KiB"
