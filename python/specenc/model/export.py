"""Export a SpectrumModel: ONNX (opset >= 17, dynamic batch) and torch.export.

Graph inputs: spectra (B, nfft) float32 dB, band (B,) int64; outputs encoder.outputs_for(config). The
onnxruntime-backed SpectrumModel (runtime_onnx) and `specenc export` build on these.
"""

import torch

from .encoder import OUTPUTS, InferenceGraph
from .runtime_onnx import onnx_bytes


def export_onnx(model, path, opset=17):
    """Write `model` (SpectrumModel) as ONNX to `path`; returns path."""
    if opset < 17:
        raise ValueError(f"opset={opset} must be >= 17 (LayerNormalization and the attention pattern need it)")
    data = onnx_bytes(model, opset=opset)
    with open(path, "wb") as f:
        f.write(data)
    return path


def export_program(model, batch=2):
    """torch.export.ExportedProgram of the network with a dynamic batch axis (outputs as outputs_for(config))."""
    net = InferenceGraph(model.net.to("cpu").eval())
    x = torch.zeros(batch, model.nfft)
    band = torch.zeros(batch, dtype=torch.int64)
    b = torch.export.Dim("batch", min=1, max=4096)
    return torch.export.export(net, (x, band), dynamic_shapes=({0: b}, {0: b}))


__all__ = ["OUTPUTS", "export_onnx", "export_program"]
