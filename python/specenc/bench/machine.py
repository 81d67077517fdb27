"""Machine description printed at the top of every benchmark table: CPU, cores, threads, versions, device."""

import os
import platform
import subprocess


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def source_changes():
    """Package files that differ from the commit (a benchmark of uncommitted code says so), None outside git."""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=pkg, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return [line[3:] for line in out.stdout.splitlines()] if out.returncode == 0 else None


def machine_info(device="cpu"):
    """dict: cpu, cores (logical, usable), torch threads, versions, device (with GPU name on CUDA), load."""
    import numpy as np
    import torch

    info = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "device": device,
        "git_commit": _git_commit(),
        "uncommitted_package_files": source_changes(),
    }
    info["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "(unset)")
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def describe(info):
    """One line for the top of a table."""
    gpu = f", GPU {info['gpu']}" if info.get("gpu") else ""
    load = f", load avg {info['load_average'][0]:.2f}" if info.get("load_average") else ""
    gemm = f", fp32 GEMM {info['gemm_gflops']:.0f} GFLOP/s" if info.get("gemm_gflops") else ""
    return (f"{info['cpu']} ({info['usable_cores']} cores usable{gemm}), torch {info['torch']} with "
            f"{info['torch_threads']} thread(s), OMP_WAIT_POLICY {info.get('omp_wait_policy')}, device "
            f"{info['device']}{gpu}{load}, commit {info.get('git_commit')}")
