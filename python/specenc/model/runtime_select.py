"""Pick the inference runtime, device and onnxruntime execution providers from what is installed.

`select(runtime, device)` is the one place that decides; it logs its choice in one line.
Preferences (fastest first, as measured on the deployment targets in docs/jetson.md):
  - device 'auto': a GPU when one is usable, else the CPU.
  - onnxruntime on a GPU: TensorRT EP (falls back to CUDA EP, then CPU, per op) > CUDA EP.
  - runtime 'auto': torch when torch sees CUDA (its SDPA kernels), else onnxruntime with a GPU EP, else
    torch on the CPU (its predict runs a TorchScript trace in row chunks on one-thread workers: ~1.5x
    onnxruntime's throughput on 2 idle x86 cores, about equal with one core busy; docs/jetson.md).
Availability is detected lazily (onnxruntime is optional); tests pass it in explicitly.
"""

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnxruntime", "auto")
DEVICES = ("cpu", "cuda", "auto")
TRT_EP, CUDA_EP, CPU_EP = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
GPU_EPS = (TRT_EP, CUDA_EP)  # preference order

ORT_MISSING = ("the onnxruntime runtime needs the onnxruntime package, which is not installed: "
               "`pip install onnxruntime` (CPU) or `onnxruntime-gpu` (CUDA/TensorRT; on Jetson the wheel from "
               "the Jetson Zoo, see docs/jetson.md), or use runtime 'torch'")


@dataclass(frozen=True)
class Selection:
    runtime: str  # 'torch' | 'onnxruntime'
    device: str  # 'cpu' | 'cuda'
    providers: tuple  # onnxruntime execution providers in priority order; () for torch
    reason: str  # why, for the log line

    def describe(self):
        eps = f" [{', '.join(p.replace('ExecutionProvider', '') for p in self.providers)}]" if self.providers else ""
        return f"runtime {self.runtime} on {self.device}{eps}: {self.reason}"


def import_onnxruntime():
    """The onnxruntime module; ImportError with install advice when it is absent."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(ORT_MISSING) from exc
    return onnxruntime


def detect_ort_providers():
    """onnxruntime's available execution providers, or None when onnxruntime is not installed."""
    try:
        return list(import_onnxruntime().get_available_providers())
    except ImportError:
        return None


def detect_torch_cuda():
    import torch

    return bool(torch.cuda.is_available())


def select(runtime="torch", device="cpu", ort_providers=..., torch_cuda=...):
    """-> Selection. ort_providers: list of onnxruntime EP names, None = onnxruntime not installed,
    ... = detect. torch_cuda: bool, ... = detect. ValueError/ImportError name what is missing."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    if device not in DEVICES:
        raise ValueError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    if (runtime == "onnxruntime" or runtime == "auto" and device != "cpu") and ort_providers is ...:
        ort_providers = detect_ort_providers()
    if runtime in ("torch", "auto") and device != "cpu" and torch_cuda is ...:
        torch_cuda = detect_torch_cuda()
    # ort_providers stays ... (not looked up) where only torch can be chosen
    gpu_eps = tuple(p for p in GPU_EPS if ort_providers not in (None, ...) and p in ort_providers)

    if runtime == "auto":
        if device != "cpu" and torch_cuda:
            return _chosen(Selection("torch", "cuda", (), "torch sees a CUDA device"))
        if device != "cpu" and gpu_eps:
            return _chosen(Selection("onnxruntime", "cuda", gpu_eps + (CPU_EP,),
                                     "torch has no CUDA; onnxruntime has GPU execution providers"))
        if device == "cuda":
            raise ValueError("device 'cuda' asked for but neither torch sees a CUDA device nor onnxruntime has the "
                             f"CUDA/TensorRT execution providers (onnxruntime: {_ort_state(ort_providers)}); "
                             "use device 'cpu' or 'auto'")
        return _chosen(Selection("torch", "cpu", (), "no GPU; torch has the higher CPU throughput"))

    if runtime == "torch":
        if device == "cpu":
            return _chosen(Selection("torch", "cpu", (), "asked for"))
        if torch_cuda:
            return _chosen(Selection("torch", "cuda", (), "torch sees a CUDA device"))
        if device == "cuda":
            raise ValueError("device 'cuda' asked for but torch sees no CUDA device (torch.cuda.is_available() "
                             "is False); use device 'cpu' or 'auto'")
        return _chosen(Selection("torch", "cpu", (), "device auto: torch sees no CUDA device"))

    if ort_providers is None:
        raise ImportError(ORT_MISSING)
    if device == "cpu":
        return _chosen(Selection("onnxruntime", "cpu", (CPU_EP,), "asked for"))
    if gpu_eps:
        return _chosen(Selection("onnxruntime", "cuda", gpu_eps + (CPU_EP,), "GPU execution providers installed"))
    if device == "cuda":
        raise ValueError("device 'cuda' asked for but onnxruntime has no CUDA/TensorRT execution provider "
                         f"(available: {', '.join(ort_providers)}); install onnxruntime-gpu or use device 'cpu'")
    return _chosen(Selection("onnxruntime", "cpu", (CPU_EP,), "device auto: no CUDA/TensorRT execution provider"))


def _ort_state(providers):
    return "not installed" if providers is None else ", ".join(providers)


def _chosen(selection):
    log.info("%s", selection.describe())
    return selection
