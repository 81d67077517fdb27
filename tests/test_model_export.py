"""Export of the default-config model: ONNX in onnxruntime and torch.export match PyTorch to 1e-4."""

import numpy as np
import pytest
import torch

from gnuradio.specenc.model import ModelConfig, SpectrumModel
from gnuradio.specenc.model.export import OUTPUTS, export_onnx, export_program


def _inputs(b):
    x = np.random.default_rng(0).normal(-100, 3, (b, 1024)).astype(np.float32)
    x[:, 300:360] += 30
    return x, np.array([0, 1, 2, 3, 4, 0, 1][:b], np.int64)


def _torch_outputs(model, x, band):
    with torch.inference_mode():
        out = model.net(torch.from_numpy(x), torch.from_numpy(band))
    return [out[k].numpy() for k in OUTPUTS]


# The library default and the shipped architecture (8-bin tokens with neighbour context, attention-pooled family).
CONFIGS = [ModelConfig(), ModelConfig(pool_stride=8, dropout_mode="none", drop_ratio=0.0, n_heads=2, n_kv_heads=2,
                                      mlp_ratio=2.0, token_context=1, family_pool="attention")]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["library_default", "shipped_architecture"])
def test_onnx_matches_torch_with_dynamic_batch(tmp_path, cfg):
    ort = pytest.importorskip("onnxruntime", reason="SKIPPED: onnxruntime not installed")
    model = SpectrumModel.from_config(cfg, seed=2)
    path = export_onnx(model, str(tmp_path / "m.onnx"), opset=17)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for b in (1, 7):
        x, band = _inputs(b)
        got = sess.run(list(OUTPUTS), {"spectra": x, "band": band})
        for name, g, want in zip(OUTPUTS, got, _torch_outputs(model, x, band)):
            np.testing.assert_allclose(g, want, atol=1e-4, rtol=1e-4, err_msg=name)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, str(tmp_path / "x.onnx"), opset=13)


def test_torch_export_matches_eager():
    model = SpectrumModel.from_config(ModelConfig(), seed=2)
    prog = export_program(model)
    x, band = _inputs(3)
    got = prog.module()(torch.from_numpy(x), torch.from_numpy(band))
    for name, g, want in zip(OUTPUTS, got, _torch_outputs(model, x, band)):
        np.testing.assert_allclose(g.detach().numpy(), want, atol=1e-4, rtol=1e-4, err_msg=name)


def test_a_torch_export_program_given_as_a_model_is_refused_by_name(tmp_path):
    from gnuradio.specenc.model import load_model

    program = tmp_path / "default.pt2"
    torch.export.save(export_program(SpectrumModel.from_config(ModelConfig(), seed=2)), program)
    with pytest.raises(ValueError, match="default.pt2 is a torch.export program"):
        load_model(program)


def test_a_nan_parity_difference_fails_the_check():
    """max() over {..., nan} and nan > tolerance let a NaN output pass as parity (audit 53)."""
    from gnuradio.specenc.model import export_cli

    assert export_cli._worst({"family_logits": float("nan"), "anomaly_logit": 1e-7}) > export_cli.PARITY_TOL
    assert export_cli._worst({"family_logits": 1e-7, "anomaly_logit": float("nan")}) > export_cli.PARITY_TOL
    assert export_cli._worst({"family_logits": 2e-6, "anomaly_logit": 1e-7}) == 2e-6
