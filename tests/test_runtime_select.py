"""device=auto / runtime selection with mocked availability (no GPU needed): which runtime, device and
onnxruntime execution providers are chosen, the one-line log, and the errors when something is missing."""

import logging
import sys

import pytest

from gnuradio.specenc.model import runtime_select as rs

CPU = ["CPUExecutionProvider"]
CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]
TRT = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
NO_ORT = None


@pytest.mark.parametrize("runtime, device, providers, torch_cuda, want", [
    # torch
    ("torch", "cpu", NO_ORT, True, ("torch", "cpu", ())),
    ("torch", "auto", NO_ORT, True, ("torch", "cuda", ())),
    ("torch", "auto", NO_ORT, False, ("torch", "cpu", ())),
    ("torch", "cuda", NO_ORT, True, ("torch", "cuda", ())),
    # onnxruntime: TensorRT first, then CUDA, then CPU (per-op fallback)
    ("onnxruntime", "cpu", TRT, True, ("onnxruntime", "cpu", ("CPUExecutionProvider",))),
    ("onnxruntime", "auto", CPU, True, ("onnxruntime", "cpu", ("CPUExecutionProvider",))),
    ("onnxruntime", "auto", CUDA, False, ("onnxruntime", "cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"))),
    ("onnxruntime", "auto", TRT, False, ("onnxruntime", "cuda", tuple(TRT))),
    ("onnxruntime", "cuda", TRT[::-1], False, ("onnxruntime", "cuda", tuple(TRT))),  # our order, not the listing's
    # auto: torch CUDA > onnxruntime GPU > torch CPU (the higher CPU throughput; onnxruntime CPU when asked for)
    ("auto", "auto", TRT, True, ("torch", "cuda", ())),
    ("auto", "auto", TRT, False, ("onnxruntime", "cuda", tuple(TRT))),
    ("auto", "auto", CUDA, False, ("onnxruntime", "cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"))),
    ("auto", "auto", CPU, False, ("torch", "cpu", ())),
    ("auto", "auto", NO_ORT, False, ("torch", "cpu", ())),
    ("auto", "cpu", TRT, True, ("torch", "cpu", ())),
    ("auto", "cuda", CUDA, False, ("onnxruntime", "cuda", ("CUDAExecutionProvider", "CPUExecutionProvider"))),
])
def test_selection(runtime, device, providers, torch_cuda, want):
    s = rs.select(runtime, device, ort_providers=providers, torch_cuda=torch_cuda)
    assert (s.runtime, s.device, s.providers) == want


def test_choice_is_logged_in_one_line(caplog):
    with caplog.at_level(logging.INFO, logger=rs.__name__):
        rs.select("onnxruntime", "auto", ort_providers=TRT, torch_cuda=False)
    lines = [r.getMessage() for r in caplog.records if r.name == rs.__name__]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("runtime onnxruntime on cuda [Tensorrt, CUDA, CPU]")


@pytest.mark.parametrize("runtime, providers, torch_cuda, message", [
    ("torch", NO_ORT, False, "torch sees no CUDA device"),
    ("onnxruntime", CPU, True, "no CUDA/TensorRT execution provider"),
    ("auto", CPU, False, "neither torch sees a CUDA device nor onnxruntime"),
    ("auto", NO_ORT, False, "onnxruntime: not installed"),
])
def test_cuda_asked_but_absent_is_a_clear_error(runtime, providers, torch_cuda, message):
    with pytest.raises(ValueError, match="device 'cuda' asked for") as err:
        rs.select(runtime, "cuda", ort_providers=providers, torch_cuda=torch_cuda)
    assert message in str(err.value)


@pytest.mark.parametrize("device", ["cpu", "auto", "cuda"])
def test_onnxruntime_missing_says_how_to_install(device):
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        rs.select("onnxruntime", device, ort_providers=NO_ORT, torch_cuda=False)


def test_onnxruntime_missing_is_detected(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    assert rs.detect_ort_providers() is None
    with pytest.raises(ImportError, match="onnxruntime-gpu"):
        rs.select("onnxruntime", "cpu")
    assert rs.select("auto", "auto").runtime == "torch"  # no GPU execution provider to look for


def test_detection_matches_this_machine():
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: detection of its providers untested")
    assert rs.detect_ort_providers() == ort.get_available_providers()
    s = rs.select("onnxruntime", "auto")
    assert s.providers[-1] == "CPUExecutionProvider"


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_torch_runtime_needs_no_onnxruntime_lookup(device):
    # the blocks call select('torch', device) with providers left undetected
    s = rs.select("torch", device, torch_cuda=False)
    assert (s.runtime, s.device, s.providers) == ("torch", "cpu", ())


@pytest.mark.parametrize("runtime, device, message", [
    ("tensorflow", "cpu", "runtime 'tensorflow' is not one of torch, onnxruntime, auto"),
    ("torch", "tpu", "device 'tpu' is not one of cpu, cuda, auto"),
])
def test_bad_names(runtime, device, message):
    with pytest.raises(ValueError, match=message):
        rs.select(runtime, device, ort_providers=CPU, torch_cuda=False)


def test_tensorrt_gets_an_engine_cache_and_our_batch_range(tmp_path):
    from gnuradio.specenc.model.runtime_onnx import TRT_MAX_BATCH, provider_options

    opts = provider_options(TRT, nfft=1024, cache_dir=str(tmp_path))
    assert opts[1:] == [{}, {}]  # CUDA and CPU: defaults
    trt = opts[0]
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_engine_cache_path"] == str(tmp_path)
    assert trt["trt_profile_min_shapes"] == "spectra:1x1024,band:1"
    assert trt["trt_profile_max_shapes"] == f"spectra:{TRT_MAX_BATCH}x1024,band:{TRT_MAX_BATCH}"
