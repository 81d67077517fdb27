"""`specenc export --format onnx|torch-export [--int8] [--fp16] [--model M] --out DIR`.

onnx: `<name>.onnx` (fp32, opset >= 17, dynamic batch, the checkpoint JSON inside as metadata), checked
against PyTorch on held-out synthetic spectra (max abs difference per output, must be <= 1e-4).
--int8: `<name>.int8.onnx`, onnxruntime dynamic quantisation (int8 weights per output channel,
activations quantised per call at run time) of the encoder blocks' weight GEMMs; prints the throughput
of torch, onnxruntime fp32 and int8 on this machine, and the accuracy of fp32 and int8 on the held-out
synthetic scenes of `specenc eval` (same test stream and metrics).
--fp16: `<name>.fp16.onnx` for CUDA/TensorRT: fp16 weights and maths, with the tokenizer's median
normalisation, token selection, RoPE angles and every norm kept in fp32 (and fp32 inputs/outputs).
It is written on any machine and runs on onnxruntime's CPU provider too (slowly: few fp16 CPU kernels),
which is how it is tested here; its speed-up needs a GPU.
torch-export: `<name>.pt2` (torch.export program, dynamic batch), for AOTInductor/ExecuTorch tool chains.
torch.export.load unpickles, so load only .pt2 files you made; nothing in this package loads them.
The .onnx files load with `load_model(path)` (always on onnxruntime) and run in the flowgraph with
`specenc run ... --model <file>.onnx`.
"""
import json
import logging
import math
import os
import pathlib
import time

import numpy as np

from .. import json_out
from ..cli import UsageError
from ..folders import make_folder

FORMATS = ("onnx", "torch-export")
PARITY_TOL = 1e-4  # fp32 ONNX vs PyTorch, max abs difference per output
FP32_ISLANDS = ("/net/tokenizer/", "/net/dropout/", "/net/rope/", "norm")  # node-name parts kept in fp32
THREADS = 2  # the edge baseline: 2 CPU cores
INT8_SCOPE = "/net/blocks."  # node-name prefix of the GEMMs quantised to int8 (the encoder blocks)


def add_arguments(parser):
    parser.add_argument("--format", default="onnx", choices=FORMATS, help="export format (default onnx)")
    parser.add_argument("--int8", action="store_true", help="also write a dynamically quantised int8 ONNX model")
    parser.add_argument("--fp16", action="store_true", help="also write an fp16 ONNX model for CUDA/TensorRT")
    parser.add_argument("--model", default="", help="model checkpoint (.safetensors; default: the shipped model)")
    parser.add_argument("--backend", default="", help="attention backend to export (default: the model's)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17; default 17)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--check-rows", type=int, default=256,
                        help="held-out synthetic spectra for the parity check (default 256)")
    parser.add_argument("--eval-scenes", type=int, default=2048,
                        help="held-out synthetic scenes for the int8 accuracy cost (0 = skip; default 2048)")
    parser.add_argument("--bench-seconds", type=float, default=3.0,
                        help="seconds per runtime and measurement in the int8 speed comparison "
                             "(0 = skip; default 3)")


def check_args(args):
    import onnx

    if not 17 <= args.opset <= onnx.defs.onnx_opset_version():
        raise UsageError(f"--opset={args.opset} must be in 17..{onnx.defs.onnx_opset_version()} (the graph uses "
                         "opset-17 ops; the installed onnx knows no later opset)")
    if args.format == "torch-export" and (args.int8 or args.fp16):
        raise UsageError("--int8/--fp16 apply to --format onnx (onnxruntime quantisation / CUDA fp16)")
    for name in ("check_rows", "eval_scenes"):
        if getattr(args, name) < 0 or (name == "check_rows" and args.check_rows < 1):
            raise UsageError(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= "
                             f"{1 if name == 'check_rows' else 0}")
    if args.bench_seconds < 0:
        raise UsageError(f"--bench-seconds={args.bench_seconds} must be >= 0")
    if args.model and args.model.endswith(".onnx"):
        raise UsageError(f"--model {args.model}: export starts from a .safetensors checkpoint, not an ONNX file")


def held_out(nfft, rows, seed=2026):
    """`rows` held-out synthetic scenes (the `specenc eval` test stream, half with anomalies) as a dict."""
    from ..training import datasets

    return datasets.TestSets(seed, nfft).scenes(rows)


def parity(model, onnx_model, data):
    """Max abs difference per network output, PyTorch vs onnxruntime, on the same rows."""
    import torch

    from .spectrum_model import bands_for

    x = np.ascontiguousarray(data["spectra"], np.float32)
    band = bands_for(data["center_freq"], len(x))
    with torch.inference_mode():
        ref = model.net(torch.from_numpy(x), torch.from_numpy(band))
    names = onnx_model.outputs  # every output of the graph, bin_logits included for a bin_edges model
    got = dict(zip(names, onnx_model.session.run(list(names), {"spectra": x, "band": band})))
    return {k: float(np.abs(ref[k].numpy().astype(np.float64) - got[k]).max()) for k in names}


def _worst(diffs):
    """The largest difference, NaN (an output that is no number) counted as infinite: max() and > let it pass."""
    return max(float("inf") if math.isnan(v) else v for v in diffs.values())


def agreement(a, b, threshold):
    """How often two Predictions agree: spectrum label, alert (score > threshold), max score difference."""
    return {"label": float(np.mean(a.label_index == b.label_index)),
            "alert": float(np.mean((a.anomaly_score > threshold) == (b.anomaly_score > threshold))),
            "max_score_diff": float(np.abs(a.anomaly_score - b.anomaly_score).max())}


def accuracy(model, data):
    """Family accuracy and anomaly AUROC / F1 at the model's threshold (specenc eval's metrics)."""
    from ..training import metrics
    from ..training.evaluate import predict_all

    p = predict_all(model, data["spectra"], data["center_freq"], data["sample_rate"])
    y = data["anomaly"] > 0.5
    return {"family_accuracy": metrics.accuracy(data["family"], p["label_index"]),
            "anomaly_auroc": metrics.auroc(y, p["anomaly_score"]),
            "anomaly_f1": metrics.f1_at(y, p["anomaly_score"], model.threshold)["f1"]}


def call_times(calls, seconds, rounds=5):
    """{key: fn} -> {key: median seconds per call}. Calls run round robin in `rounds` slices and the
    median ignores the stalls other processes cause on a shared machine."""
    for fn in calls.values():
        fn()  # warm-up
    times = {key: [] for key in calls}
    for _ in range(rounds):
        for key, fn in calls.items():
            end = time.perf_counter() + seconds / rounds
            t1 = 0.0
            while t1 < end:
                t0 = time.perf_counter()
                fn()
                t1 = time.perf_counter()
                times[key].append(t1 - t0)
    return {key: float(np.median(t)) for key, t in times.items()}


def runtime_calls(variants, spectra, rx_freq, batch=64):
    """For each (name, model): the network alone ('graph') and the whole predict() ('predict') on `batch`
    rows, and predict() on one row ('latency'); -> ({(name, kind): fn}, {kind: rows per call})."""
    import torch

    from .spectrum_model import bands_for

    x, freq = np.ascontiguousarray(spectra[:batch], np.float32), np.asarray(rx_freq)[:batch]
    band = bands_for(freq, len(x))
    calls = {}
    for name, m in variants:
        if hasattr(m, "session"):
            graph = (lambda s, names: lambda: s.run(list(names), {"spectra": x, "band": band}))(m.session, m.outputs)
        else:
            def graph(net=m.net):
                with torch.inference_mode():
                    net(torch.from_numpy(x), torch.from_numpy(band), training_outputs=False)
        calls[(name, "graph")] = graph
        calls[(name, "predict")] = (lambda mm: lambda: mm.predict(x, freq))(m)
        calls[(name, "latency")] = (lambda mm: lambda: mm.predict(x[:1], freq[:1]))(m)
    return calls, {"graph": len(x), "predict": len(x), "latency": 1}


def quantize_int8(src, dst):
    """onnxruntime dynamic quantisation of the encoder blocks' weight GEMMs (int8, per output channel).

    The tokenizer embedding, the token scorer (it decides which tokens are kept) and the heads stay
    fp32: together a few % of the FLOPs, and on the trained default quantising them too lowered the
    label agreement with fp32 from 99.9 % to 99.1 % at the same speed (1024 held-out spectra)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .runtime_onnx import META_KEY, set_meta

    proto = onnx.load(src)
    meta = {e.key: e.value for e in proto.metadata_props}
    blocks = [n.name for n in proto.graph.node if n.op_type in ("MatMul", "Gemm") and n.name.startswith(INT8_SCOPE)]
    root, level, quiet = logging.getLogger(), logging.getLogger().level, logging.NullHandler()
    # The quantiser logs advice to pre-process the graph on the root logger (tried: no gain here); a handler
    # on root also keeps that call from installing logging.basicConfig for the rest of the command.
    root.addHandler(quiet)
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul", "Gemm"], nodes_to_quantize=blocks,
                         per_channel=True, weight_type=QuantType.QInt8)
    finally:
        root.removeHandler(quiet)
        root.setLevel(level)
    proto = onnx.load(dst)
    set_meta(proto, json.loads(meta[META_KEY]))  # keep the checkpoint JSON whatever the quantiser copies
    onnx.save(proto, dst)


def convert_fp16(src, dst):
    """fp16 graph with fp32 islands (FP32_ISLANDS) and fp32 inputs/outputs; returns (fp16, fp32) node counts."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    proto = onnx.load(src)
    keep = [n.name for n in proto.graph.node if any(part in n.name for part in FP32_ISLANDS)]
    # Identity: the exporter shares equal weights (e.g. untrained norm scales) through Identity nodes;
    # an fp16 Identity would pull a norm's weight into fp16.
    half = convert_float_to_float16(proto, keep_io_types=True, node_block_list=keep,
                                    op_block_list=list(DEFAULT_OP_BLOCK_LIST) + ["Identity"])
    onnx.save(half, dst)
    return len(proto.graph.node) - len(keep), len(keep)


def main(args):
    check_args(args)
    import torch

    from . import load_model
    from .export import export_onnx
    from .runtime_onnx import load_onnx_model

    torch.set_num_threads(THREADS)
    model = load_model(args.model or None, backend=args.backend or None)
    out = pathlib.Path(args.out)
    make_folder(out)  # a file of that name: said so, not "[Errno 17] File exists"
    earlier = _earlier_files(out)
    name = pathlib.Path(args.model).stem if args.model else "default"
    data = held_out(model.nfft, args.check_rows)
    report = {"model": args.model or "shipped default", "trained": model.trained, "files": {}}

    if args.format == "torch-export":
        return _torch_export(model, out / f"{name}.pt2", data, report, out, earlier)

    fp32 = out / f"{name}.onnx"
    export_onnx(model, str(fp32), opset=args.opset)
    onnx32 = load_onnx_model(str(fp32), threads=THREADS)
    diffs = parity(model, onnx32, data)
    worst = _worst(diffs)
    print(f"wrote {fp32} (opset {args.opset}, dynamic batch, {fp32.stat().st_size / 1e6:.2f} MB)")
    print(f"parity vs PyTorch on {len(data['spectra'])} held-out spectra (max abs diff, tolerance {PARITY_TOL:g}):")
    for k, v in diffs.items():
        print(f"  {k:<14} {v:.3g}")
    report["files"]["fp32"] = {"path": str(fp32), "parity_max_abs_diff": diffs}
    if worst > PARITY_TOL:
        raise ValueError(f"exported ONNX differs from PyTorch by {worst:.3g} > {PARITY_TOL:g}; "
                         f"not usable (see {fp32}); please report this model/backend")

    if args.int8:
        report["files"]["int8"] = _int8(args, model, onnx32, fp32, out / f"{name}.int8.onnx", data)
    if args.fp16:
        dst = out / f"{name}.fp16.onnx"
        n16, n32 = convert_fp16(str(fp32), str(dst))
        print(f"wrote {dst} (fp16 for CUDA/TensorRT: {n16} nodes fp16, {n32} kept fp32 — tokenizer, token "
              "selection, RoPE, norms; its speed-up needs a GPU execution provider)")
        report["files"]["fp16"] = {"path": str(dst), "fp16_nodes": n16, "fp32_nodes": n32}
    _write_report(out, report, earlier)
    return 0


def _int8(args, model, onnx32, fp32, dst, data):
    from .runtime_onnx import load_onnx_model

    quantize_int8(str(fp32), str(dst))
    onnx8 = load_onnx_model(str(dst), threads=THREADS)
    print(f"wrote {dst} (dynamic int8: the encoder blocks' weight GEMMs, per channel; "
          f"{dst.stat().st_size / 1e6:.2f} MB)")
    a, b = onnx32.predict(data["spectra"], data["center_freq"]), onnx8.predict(data["spectra"], data["center_freq"])
    agree = agreement(a, b, model.threshold)
    print(f"int8 vs fp32 on {len(data['spectra'])} held-out spectra: label agreement {agree['label']:.1%}, "
          f"alert agreement {agree['alert']:.1%}, max anomaly-score difference {agree['max_score_diff']:.3g}")
    entry = {"path": str(dst), "agreement_vs_fp32": agree}
    if args.bench_seconds > 0:
        variants = (("torch fp32", model), ("onnxruntime fp32", onnx32), ("onnxruntime int8", onnx8))
        calls, rows = runtime_calls(variants, data["spectra"], data["center_freq"])
        # torch's OpenMP threads busy-wait after each call and would slow whatever runs next: time torch on
        # its own, then the onnxruntime variants round robin.
        times = {}
        for group in (["torch fp32"], ["onnxruntime fp32", "onnxruntime int8"]):
            times.update(call_times({k: fn for k, fn in calls.items() if k[0] in group}, args.bench_seconds))
        rates = {key: rows[key[1]] / t for key, t in times.items()}  # spectra/s at the median call time
        base = {kind: rates[("onnxruntime fp32", kind)] for kind in ("graph", "predict")}
        print(f"throughput at batch {rows['graph']} (spectra/s) and batch-1 predict() latency (p50), {THREADS} "
              "threads, this machine (graph = the network alone; predict = with input checks and decoding):")
        print(f"  {'runtime':<18} {'graph':>8} {'predict':>8} {'latency':>9}   vs onnxruntime fp32 (graph, predict)")
        for name, _ in variants:
            g, p, lat = rates[(name, "graph")], rates[(name, "predict")], 1e3 * times[(name, "latency")]
            print(f"  {name:<18} {g:8.0f} {p:8.0f} {lat:6.2f} ms   {g / base['graph']:.2f}x, {p / base['predict']:.2f}x")
        entry["throughput_spectra_per_s"] = {f"{name} {kind}": r for (name, kind), r in rates.items()
                                             if kind != "latency"}
        entry["latency_ms_batch1_p50"] = {name: 1e3 * times[(name, "latency")] for name, _ in variants}
    if args.eval_scenes:
        scenes = held_out(model.nfft, args.eval_scenes)
        acc = {"fp32": accuracy(onnx32, scenes), "int8": accuracy(onnx8, scenes)}
        print(f"accuracy on {args.eval_scenes} held-out synthetic scenes (specenc eval's test stream, seed 2026):")
        for k in acc["fp32"]:
            print(f"  {k:<16} fp32 {acc['fp32'][k]:.4f}  int8 {acc['int8'][k]:.4f}  "
                  f"cost {100 * (acc['fp32'][k] - acc['int8'][k]):+.2f} pp")
        entry["accuracy"] = acc
        if not model.trained:
            print("  (the model is an UNTRAINED placeholder: these accuracies only show agreement)")
    return entry


def _torch_export(model, path, data, report, out, earlier):
    import torch

    from .spectrum_model import bands_for

    from .encoder import outputs_for
    from .export import export_program

    program = export_program(model)
    torch.export.save(program, str(path))
    x = torch.from_numpy(np.ascontiguousarray(data["spectra"], np.float32))
    band = torch.from_numpy(bands_for(data["center_freq"], len(x)))
    with torch.inference_mode():
        ref = model.net(x, band)
        got = dict(zip(outputs_for(model.config), program.module()(x, band)))  # the saved program; never unpickled
    diffs = {k: float((ref[k].double() - got[k].double()).abs().max()) for k in got}
    print(f"wrote {path} (torch.export, dynamic batch, {os.path.getsize(path) / 1e6:.2f} MB)")
    print(f"parity vs PyTorch eager on {len(x)} held-out spectra (max abs diff): "
          + ", ".join(f"{k} {v:.3g}" for k, v in diffs.items()))
    report["files"]["torch-export"] = {"path": str(path), "parity_max_abs_diff": diffs}
    _write_report(out, report, earlier)
    if _worst(diffs) > PARITY_TOL:
        raise ValueError(f"torch.export program differs from eager PyTorch by {_worst(diffs):.3g}")
    return 0


def _earlier_files(out):
    """The file entries of out/export.json from earlier exports ({} without one), read before exporting: a
    file that is not a report stops the export before anything is written."""
    path = out / "export.json"
    if not path.exists():
        return {}
    try:
        with open(path) as f:
            files = json.load(f).get("files", {})
        if not isinstance(files, dict):
            raise AttributeError("its files are no object")
    except (ValueError, AttributeError, RecursionError) as exc:  # ValueError: JSON, UTF-8, a 5000-digit number
        raise ValueError(f"{path}: not an export report ({exc}); move it away to export to {out}") from None
    return {k: v for k, v in files.items() if isinstance(v, dict) and "kind" in v}  # an older layout went by kind


def _write_report(out, report, earlier):
    """export.json: what was written and measured. Entries go by file name, each with its kind and model, so the
    files of earlier exports to `out` (of this model or another) keep what is theirs."""
    path = out / "export.json"
    report["files"] = {**earlier, **{os.path.basename(e["path"]): {"kind": kind, "model": report["model"],
                                                                   "trained": report["trained"], **e}
                                     for kind, e in report["files"].items()}}
    with open(path, "w") as f:
        json_out.dump(report, f, indent=1)  # a NaN figure as null: json.dump wrote NaN, which is no JSON
    print(f"wrote {path}")
