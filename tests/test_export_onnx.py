"""`specenc export`: ONNX parity with PyTorch (<= 1e-4), dynamic batch, int8 and fp16 variants that load and
agree with fp32, torch.export, --help and one-line errors. Small seeded models keep it fast."""

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime not installed: `specenc export` and its checks need it")
onnx = pytest.importorskip("onnx", reason="onnx not installed: `specenc export` needs it")

from gnuradio.specenc import cli  # noqa: E402
from gnuradio.specenc.model import ModelConfig, SpectrumModel  # noqa: E402
from gnuradio.specenc.model import export_cli  # noqa: E402
from gnuradio.specenc.model.export import OUTPUTS  # noqa: E402
from gnuradio.specenc.model.runtime_onnx import (OnnxSpectrumModel, checkpoint_meta, load_onnx_model,  # noqa: E402
                                                 make_session, onnx_bytes)

SMALL = dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, anomaly_hidden=16)


def small_model(seed=0, **changes):
    return SpectrumModel.from_config(ModelConfig(**{**SMALL, **changes}), seed=seed, threshold=0.5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export of a small 2-layer model with --int8 --fp16 (no timing, no eval: those are benchmarks)."""
    folder = tmp_path_factory.mktemp("export")
    weights, _ = small_model(seed=3, n_layers=2).save(str(folder / "small.safetensors"))
    out = folder / "out"
    code = cli.main(["export", "--model", weights, "--out", str(out), "--int8", "--fp16", "--check-rows", "128",
                     "--bench-seconds", "0", "--eval-scenes", "0"])
    assert code == 0
    return weights, out


@pytest.fixture(scope="module")
def held_out():
    return export_cli.held_out(1024, 128, seed=11)


def test_export_writes_every_file_and_prints_parity_within_1e_4(exported, capsys):
    _, out = exported
    report = json.loads((out / "export.json").read_text())
    files = report["files"]
    assert {k: v["kind"] for k, v in files.items()} == {"small.onnx": "fp32", "small.int8.onnx": "int8",
                                                         "small.fp16.onnx": "fp16"}
    assert all(v["model"].endswith("small.safetensors") and v["trained"] is False for v in files.values())
    diffs = files["small.onnx"]["parity_max_abs_diff"]
    assert set(diffs) == set(OUTPUTS) and max(diffs.values()) <= export_cli.PARITY_TOL
    proto = onnx.load(str(out / "small.onnx"))
    assert proto.opset_import[0].version >= 17
    # dynamic batch on both inputs
    for inp in proto.graph.input:
        assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("changes", [
    {},  # the default architecture: sdpa, rmsnorm, dynamic RoPE, gumbel token selection
    dict(backend="mha"),
    dict(backend="gqa", n_heads=4, n_kv_heads=2),  # exported through SDPA maths, same weights
    dict(backend="latent", n_latents=8),
    dict(norm="layernorm", rope="static", dropout_mode="none"),
    dict(pool_stride=8, dropout_mode="none", drop_ratio=0.0, bin_edges=True),  # the shipped per-bin head
])
def test_parity_with_pytorch_for_each_architecture(changes, held_out):
    model = small_model(seed=5, **changes)
    onnx_model = load_onnx_model_from(model)
    diffs = export_cli.parity(model, onnx_model, held_out)
    assert max(diffs.values()) <= export_cli.PARITY_TOL, diffs
    assert diffs["kept"] == 0  # the same tokens are selected
    assert ("bin_logits" in diffs) == model.config.bin_edges  # every output of the graph is compared


def load_onnx_model_from(model):
    """In memory: SpectrumModel -> OnnxSpectrumModel of the same network."""
    return OnnxSpectrumModel(make_session(onnx_bytes(model), ["CPUExecutionProvider"]), checkpoint_meta(model))


@pytest.mark.parametrize("batch", [1, 3, 300])
def test_dynamic_batch(exported, batch):
    _, out = exported
    m = load_onnx_model(str(out / "small.onnx"))
    x = export_cli.held_out(1024, batch, seed=batch)["spectra"]
    p = m.predict(x)
    assert len(p.labels) == batch and p.embedding.shape == (batch, SMALL["d_model"])


def test_int8_loads_and_agrees_with_fp32(exported, held_out):
    _, out = exported
    fp32, int8 = load_onnx_model(str(out / "small.onnx")), load_onnx_model(str(out / "small.int8.onnx"))
    proto = onnx.load(str(out / "small.int8.onnx"))
    int8_weights = [i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.INT8
                    and i.name.endswith("_quantized")]
    assert len(int8_weights) == 2 * 4  # per encoder layer: qkv, proj, fc, out (tokenizer, scorer, heads stay fp32)
    assert all(len(i.dims) == 2 for i in int8_weights)
    assert any(n.op_type == "DynamicQuantizeLinear" for n in proto.graph.node)
    a = fp32.predict(held_out["spectra"], held_out["center_freq"])
    b = int8.predict(held_out["spectra"], held_out["center_freq"])
    agree = export_cli.agreement(a, b, fp32.threshold)
    # measured on this seeded model and data: label 100 %, alert 100 %, max score difference ~1e-3
    assert agree["label"] >= 0.95 and agree["alert"] >= 0.95, agree
    assert 0 < agree["max_score_diff"] < 0.05  # quantised (differs), but close
    assert int8.threshold == fp32.threshold and int8.config == fp32.config  # metadata survives quantisation


def test_fp16_keeps_norms_rope_and_tokenizer_in_fp32(exported, held_out):
    _, out = exported
    proto = onnx.load(str(out / "small.fp16.onnx"))
    dtype = {i.name: i.data_type for i in proto.graph.initializer}
    f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    norm_weights = [k for k in dtype if "norm" in k]
    assert norm_weights and all(dtype[k] == f32 for k in norm_weights)
    assert dtype["net.rope.log_theta"] == f32
    assert dtype["net.heads.family.weight"] == f16
    assert proto.graph.input[0].type.tensor_type.elem_type == f32  # fp32 in and out
    assert proto.graph.output[0].type.tensor_type.elem_type == f32
    # It runs on the CPU provider too (slowly), so agreement with fp32 is checked here, not only on a GPU.
    fp32, fp16 = load_onnx_model(str(out / "small.onnx")), load_onnx_model(str(out / "small.fp16.onnx"))
    a = fp32.predict(held_out["spectra"], held_out["center_freq"])
    b = fp16.predict(held_out["spectra"], held_out["center_freq"])
    assert export_cli.agreement(a, b, fp32.threshold)["label"] >= 0.95
    assert np.abs(a.anomaly_score - b.anomaly_score).max() < 0.01


def test_torch_export(tmp_path, capsys):
    weights, _ = small_model(seed=2).save(str(tmp_path / "m.safetensors"))
    code = cli.main(["export", "--format", "torch-export", "--model", weights, "--out", str(tmp_path / "o"),
                     "--check-rows", "16"])
    assert code == 0
    assert (tmp_path / "o" / "m.pt2").is_file()
    (tmp_path / "o" / "export.json").write_text(json.dumps({"files": {"x.onnx": {"kind": "fp32", "model": "x"}}}))
    other, _ = small_model(seed=3).save(str(tmp_path / "n.safetensors"))
    assert cli.main(["export", "--format", "torch-export", "--model", other, "--out", str(tmp_path / "o"),
                     "--check-rows", "16"]) == 0
    files = json.loads((tmp_path / "o" / "export.json").read_text())["files"]
    assert set(files) == {"x.onnx", "n.pt2"}  # an earlier export's entry keeps its own model
    assert files["n.pt2"]["kind"] == "torch-export" and files["n.pt2"]["model"] == other
    assert max(files["n.pt2"]["parity_max_abs_diff"].values()) <= export_cli.PARITY_TOL
    (tmp_path / "o" / "export.json").write_text("{not json")
    assert cli.main(["export", "--format", "torch-export", "--model", other, "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert "parity vs PyTorch eager" in captured.out and "export.json: not an export report" in captured.err


def test_help_lists_the_options(capsys):
    assert cli.main(["export", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--format", "--int8", "--fp16", "--model", "--out", "onnx", "torch-export"):
        assert flag in text


@pytest.mark.parametrize("extra, message", [
    (["--opset", "13"], "--opset=13 must be in 17.."),
    (["--opset", "99"], "--opset=99 must be in 17.."),
    (["--format", "torch-export", "--int8"], "--int8/--fp16 apply to --format onnx"),
    (["--model", "/nonexistent/m.safetensors"], "not found"),
    (["--model", "x.onnx"], "starts from a .safetensors checkpoint"),
    (["--check-rows", "0"], "--check-rows=0 must be >= 1"),
    (["--backend", "warp9"], "unknown attention backend 'warp9'"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, extra, message):
    code = cli.main(["export", "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("specenc export: error:") and message in err and err.count("\n") == 1


def test_bad_format_is_rejected_by_argparse(tmp_path, capsys):
    assert cli.main(["export", "--format", "tflite", "--out", str(tmp_path)]) == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


def test_unexportable_token_selection_is_a_clear_error():
    with pytest.raises(ValueError, match="dropout_mode 'fixed' cannot be exported to ONNX"):
        onnx_bytes(small_model(dropout_mode="fixed"))
