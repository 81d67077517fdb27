"""Energy per spectrum from hardware counters, or the plain statement that it cannot be measured here.

CPU: Intel/AMD RAPL package counters under /sys/class/powercap (intel-rapl:N/energy_uj, readable by
root only on most systems). CUDA: NVML total-energy counter (pynvml). Nothing is ever estimated:
without a counter the result says "not measurable here" and why.
"""

import glob
import os
import time

NOT_MEASURABLE = "not measurable here"
POWERCAP = "/sys/class/powercap"


def _rapl_domains():
    """[(name, energy_uj path, max range uj)] for the package-level RAPL domains that can be read."""
    out = []
    for d in sorted(glob.glob(os.path.join(POWERCAP, "intel-rapl:[0-9]*"))):
        if os.path.basename(d).count(":") != 1:  # sub-domains (core, uncore) are inside the package figure
            continue
        path = os.path.join(d, "energy_uj")
        try:
            with open(path) as f:
                int(f.read())
            with open(os.path.join(d, "max_energy_range_uj")) as f:
                rng = int(f.read())
            with open(os.path.join(d, "name")) as f:
                name = f.read().strip()
        except (OSError, ValueError):
            continue
        out.append((name, path, rng))
    return out


def _read_uj(path):
    with open(path) as f:
        return int(f.read())


def _nvml_handle():
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:  # pynvml absent, no driver, or no energy counter: all mean "no NVML here"
        return None, None


def probe(device="cpu"):
    """-> (source name or None, reason). Cheap; says which counter `measure` would use."""
    if device == "cuda":
        nv, h = _nvml_handle()
        if h is None:
            return None, "NVML (pynvml) is not available"
        return "nvml", "NVML total energy counter of GPU 0"
    if not os.path.isdir(POWERCAP):
        return None, f"{POWERCAP} does not exist (no RAPL exposed, e.g. inside a VM)"
    if not _rapl_domains():
        return None, f"RAPL energy_uj under {POWERCAP} is not readable (needs root or is absent)"
    return "rapl", "RAPL package energy counters (whole package: other processes' load is included)"


WARMUP_CALLS = 3  # the first call (allocations, one-off setup) cost 17x the median: off the counters


def measure(fn, spectra_per_call, calls, device="cpu"):
    """Joules per spectrum over `calls` calls of fn() after WARMUP_CALLS unmeasured ones, or {"value":
    NOT_MEASURABLE, "reason": ...}."""
    source, reason = probe(device)
    if source is None:
        return {"value": NOT_MEASURABLE, "reason": reason, "source": None}
    for _ in range(WARMUP_CALLS):
        fn()
    if source == "nvml":
        nv, h = _nvml_handle()
        import torch

        torch.cuda.synchronize()
        e0, t0 = nv.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter()  # mJ
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        joules = (nv.nvmlDeviceGetTotalEnergyConsumption(h) - e0) / 1e3
    else:
        domains = _rapl_domains()
        e0, t0 = [_read_uj(p) for _, p, _ in domains], time.perf_counter()
        for _ in range(calls):
            fn()
        joules = sum(((_read_uj(p) - a) % rng) / 1e6 for (_, p, rng), a in zip(domains, e0))
    seconds = time.perf_counter() - t0
    n = spectra_per_call * calls
    return {"value": joules / n, "unit": "J/spectrum", "source": source, "reason": reason,
            "joules": joules, "seconds": seconds, "spectra": n, "mean_power_w": joules / seconds}
