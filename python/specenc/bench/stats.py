"""Summary statistics for benchmark samples: percentiles of timings, mean ± sd over seeds or cells."""

import math
import time

import numpy as np


def percentiles(samples_ms):
    """Timings (ms) -> {"p50", "p95", "mean", "min", "n"} (NumPy's linear-interpolated percentiles)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no timing samples")
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "mean": float(a.mean()),
            "min": float(a.min()), "n": int(a.size)}


def mean_sd(values):
    """Values -> {"mean", "sd" (sample, ddof=1; 0 for one value), "n"}; NaNs are left out."""
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size)}


def time_ms(fn, warmup, iters):
    """Call fn() `warmup` times untimed, then `iters` times; returns the per-call wall times in ms."""
    if warmup < 0 or iters < 1:
        raise ValueError(f"warmup={warmup} must be >= 0 and iters={iters} >= 1")
    for _ in range(warmup):
        fn()
    out = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t0) * 1e3
    return out


def fmt_ms(stats):
    """'p50 / p95' in ms with sensible precision."""
    return f"{_num(stats['p50'])} / {_num(stats['p95'])}"


def _num(x):
    if not math.isfinite(x):
        return str(x)
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def fmt_mean_sd(ms, scale=1.0, unit=""):
    if ms["n"] == 0:
        return "n/a"
    if ms["n"] == 1:
        return f"{scale * ms['mean']:.1f}{unit}"
    return f"{scale * ms['mean']:.1f} ± {scale * ms['sd']:.1f}{unit} (n={ms['n']})"


def round_robin_ms(fns, warmup, iters, chunks=10):
    """Time several zero-argument calls side by side: each warmed up, then timed in turns of iters/chunks
    calls, so that a change of machine load touches all of them alike. -> list of per-call ms arrays."""
    step = max(1, iters // chunks)
    samples = [list(time_ms(fn, warmup, min(step, iters))) for fn in fns]
    while len(samples[0]) < iters:
        for fn, acc in zip(fns, samples):
            acc.extend(time_ms(fn, 0, min(step, iters - len(acc))))
    return [np.asarray(a) for a in samples]
