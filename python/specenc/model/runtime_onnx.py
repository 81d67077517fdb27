"""The onnxruntime runtime: a SpectrumModel whose forward pass runs in an onnxruntime session.

`load_onnx_model(path, ...)` accepts an exported `.onnx` (from `specenc export`; the checkpoint's JSON
travels inside it as the `specenc` metadata entry) or a safetensors checkpoint (None = the shipped
default), which is exported in memory first. Everything around the forward pass (input checks, band
lookup, decoding logits into labels, scores and detections) is SpectrumModel's own code, so both
runtimes give the same Prediction for the same network.
"""

import copy
import io
import json
import logging
import os
import time
import warnings

import numpy as np
import torch

from .. import labels
from . import runtime_select
from .checkpoint import check_fields
from .config import ModelConfig
from .encoder import InferenceGraph, SpectrumEncoder, outputs_for
from .spectrum_model import SpectrumModel, _names, decode_outputs

log = logging.getLogger(__name__)

INPUTS = ("spectra", "band")  # (B, nfft) float32 dB, (B,) int64 band index
OPSET = 17
META_KEY = "specenc"  # ONNX metadata_props key holding the checkpoint JSON
EXPORT_AS_SDPA = ("gqa", "flash")  # kernels the exporter cannot trace, exported through plain SDPA maths
TRT_MAX_BATCH = 1024  # TensorRT optimisation profile: batch 1..this (predict's MAX_BATCH)


def checkpoint_meta(model):
    """The JSON that describes a SpectrumModel (as in its checkpoint), for ONNX metadata_props."""
    return {"config": model.config.to_dict(), "threshold": model.threshold, "trained": model.trained,
            "metadata": model.metadata}


def onnx_bytes(model, opset=OPSET):
    """SpectrumModel -> serialized ONNX (fp32, dynamic batch, checkpoint JSON in metadata_props)."""
    import onnx

    net = model.net.to("cpu")
    cfg = model.config
    if cfg.dropout_mode == "fixed":
        raise ValueError("dropout_mode 'fixed' cannot be exported to ONNX (its stable sorts have no ONNX "
                         "conversion); use a 'gumbel' or 'none' model, or runtime 'torch'")
    if cfg.backend in EXPORT_AS_SDPA:
        # Same weights and maths; the ONNX graph carries SDPA's decomposition (K/V heads repeated).
        log.info("attention backend %s is exported as sdpa (same weights)", cfg.backend)
        net = copy.deepcopy(net)
        net.set_backend("sdpa")
    x = torch.zeros(2, model.nfft)  # example input; the batch axis is dynamic
    band = torch.zeros(2, dtype=torch.int64)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # TorchScript exporter: 0.3 s and a plain opset-17 graph (the dynamo one takes ~7 s here).
        warnings.simplefilter("ignore")
        torch.onnx.export(InferenceGraph(net).eval(), (x, band), buf, input_names=list(INPUTS),
                          output_names=list(outputs_for(cfg)), opset_version=opset, dynamo=False,
                          dynamic_axes={name: {0: "batch"} for name in INPUTS + outputs_for(cfg)})
    proto = onnx.load_from_string(buf.getvalue())
    set_meta(proto, checkpoint_meta(model))
    return proto.SerializeToString()


def set_meta(proto, meta):
    """Store the checkpoint JSON in an onnx.ModelProto (replacing an earlier entry)."""
    for i in reversed(range(len(proto.metadata_props))):
        if proto.metadata_props[i].key == META_KEY:
            del proto.metadata_props[i]
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta, sort_keys=True)


def check_save_path(model, out_path):
    """ValueError naming the problem when save_with_threshold cannot write `model` to `out_path`."""
    if not str(out_path).endswith(".onnx"):
        raise ValueError(f"{out_path}: an ONNX model ({model.path}) is written as a .onnx file")
    if model.path is None or not str(model.path).endswith(".onnx"):
        raise ValueError("this onnxruntime model was exported in memory: calibrate its .safetensors checkpoint")


def save_with_threshold(model, out_path, threshold, metadata):
    """Copy of an exported model's .onnx file (fp32, int8 or fp16: the graph and weights as they are) with a new
    threshold and metadata in its checkpoint JSON -> out_path."""
    import onnx

    check_save_path(model, out_path)
    os.makedirs(os.path.dirname(os.path.abspath(str(out_path))), exist_ok=True)
    proto = onnx.load(model.path)
    set_meta(proto, {**checkpoint_meta(model), "threshold": float(threshold), "metadata": metadata})
    onnx.save(proto, str(out_path))
    return str(out_path)


def provider_options(providers, nfft, cache_dir=None):
    """Options per provider: TensorRT caches its engine and is built for batches 1..TRT_MAX_BATCH."""
    cache = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "specenc", "tensorrt")

    def shapes(b):
        return f"spectra:{b}x{nfft},band:{b}"

    trt = {"trt_engine_cache_enable": "True", "trt_engine_cache_path": cache, "trt_profile_min_shapes": shapes(1),
           "trt_profile_opt_shapes": shapes(64), "trt_profile_max_shapes": shapes(TRT_MAX_BATCH)}
    return [trt if p == runtime_select.TRT_EP else {} for p in providers]


def make_session(model_bytes_or_path, providers, threads=None, nfft=1024):
    """An InferenceSession on `providers` (priority order). threads: intra-op threads (None = ORT default)."""
    ort = runtime_select.import_onnxruntime()
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    # No busy-waiting between calls: in a flowgraph the cores are shared with the PSD and the sinks.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_bytes_or_path, so, providers=list(providers),
                                provider_options=provider_options(providers, nfft))


class OnnxSpectrumModel(SpectrumModel):
    """SpectrumModel with the forward pass in onnxruntime (no torch network held)."""

    def __init__(self, session, meta, device="cpu", path=None):
        # Not super().__init__: that one moves a torch network to the device; here the session is the network.
        self.session = session
        self.device = device
        self.path = path
        self.runtime = "onnxruntime"
        self.providers = tuple(session.get_providers())
        self._config = ModelConfig.from_dict(meta["config"])  # meta: the checkpoint JSON (checkpoint_meta)
        self.threshold = float(meta["threshold"])
        self.trained = bool(meta["trained"])
        self.metadata = dict(meta.get("metadata") or {})
        self.family_names = _names(labels.FAMILIES, self._config.n_families, "family")
        self.kind_names = _names(labels.ANOMALY_KINDS, self._config.n_kinds, "kind")
        names = [o.name for o in session.get_outputs()]
        self.outputs = outputs_for(self._config)
        missing = [k for k in self.outputs if k not in names]
        if missing:
            raise ValueError(f"{path or 'ONNX model'} lacks output(s) {missing}; has {names}")
        self._check_inputs(path)
        spike = np.zeros((1, self.nfft), np.float32)  # a spike in the last bin: see _check_token_grid
        spike[0, -1] = 100.0
        try:
            out = dict(zip(self.outputs, session.run(list(self.outputs), {"spectra": spike,
                                                                          "band": np.zeros(1, np.int64)})))
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
            raise ValueError(f"{path or 'ONNX model'}: its graph fails on one spectrum ({type(exc).__name__}: "
                             f"{str(exc)[:300]})") from None
        self._check_token_grid(path, out)
        self._check_outputs(path, out)

    def _check_inputs(self, path):
        """`spectra` float (batch, nfft) and `band` int64 (batch,), as `specenc export` writes them: any batch (a graph
        fixed at one row failed every call of a flowgraph's batches, and the run reported nothing)."""
        inputs = {i.name: i for i in self.session.get_inputs()}
        spectra, band = inputs.get("spectra"), inputs.get("band")
        if set(inputs) != {"spectra", "band"} or spectra.type != "tensor(float)" or band.type != "tensor(int64)" \
                or len(spectra.shape) != 2 or spectra.shape[-1] != self.nfft or len(band.shape) != 1 \
                or isinstance(spectra.shape[0], int) or isinstance(band.shape[0], int):
            got = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs.values())
            raise ValueError(f"{path or 'ONNX model'}: its graph takes {got}; `specenc export` writes spectra "
                             f"tensor(float) [batch, {self.nfft}] (its metadata's nfft) and band tensor(int64) [batch], "
                             "any batch")

    def _check_outputs(self, path, out):
        """Each output's shape and type on one row against the network its metadata describes (built without
        memory): a family head cut to 3 classes named every spectrum from the wrong list (audit 86)."""
        cfg = self._config  # a flash or gqa model's graph is SDPA's maths (EXPORT_AS_SDPA), which runs anywhere
        with torch.device("meta"):
            net = InferenceGraph(SpectrumEncoder(cfg.replace(backend="sdpa") if cfg.backend in EXPORT_AS_SDPA
                                                 else cfg)).eval()
            want = net(torch.zeros(1, self.nfft), torch.zeros(1, dtype=torch.int64))
        for name, w in zip(net.names, want):
            got, kind = np.asarray(out[name]), "f" if w.dtype.is_floating_point else "i"  # forward_numpy casts
            if got.shape != tuple(w.shape) or got.dtype.kind != kind:
                raise ValueError(f"{path or 'ONNX model'}: output {name} is {got.dtype} {got.shape} for one spectrum, "
                                 f"but its metadata describes {'floats' if kind == 'f' else 'integers'} "
                                 f"{tuple(w.shape)}: the file does not come whole from `specenc export`")

    def _check_token_grid(self, path, out):
        """The token grid is built into the graph; a metadata config of another grid (same nfft) would decode its
        outputs at the wrong bins without a word. One row with a spike in the last bin shows the graph's: how many
        tokens it keeps, the index of the last (the spike makes it the grid's last token, kept by energy or by having
        no dropout), and (per-bin head) how many bins a token has."""
        cfg = self._config
        kept = out["kept"]
        # gumbel dropout keeps a learned choice: its last index is only bounded by the grid
        last_ok = kept.max() == cfg.n_tokens - 1 if cfg.dropout_mode in ("none", "fixed") else kept.max() < cfg.n_tokens
        stride = out["bin_logits"].shape[-1] if "bin_logits" in out else cfg.pool_stride
        if kept.shape[-1] != cfg.n_kept or not last_ok or stride != cfg.pool_stride:
            raise ValueError(f"{path or 'ONNX model'}: its graph keeps {kept.shape[-1]} tokens (largest index "
                             f"{kept.max()}{f', {stride} bins each' if 'bin_logits' in out else ''}), but its "
                             f"metadata describes {cfg.n_kept} of {cfg.n_tokens} tokens of {cfg.pool_stride} bins: "
                             "the file does not come whole from `specenc export`")

    @property
    def config(self):
        return self._config

    @property
    def nfft(self):
        return self._config.nfft

    @property
    def net(self):
        raise AttributeError("the onnxruntime runtime holds no torch network; load with runtime='torch' to train")

    def set_backend(self, name):
        raise ValueError(f"backend {name!r}: the attention backend is fixed in an exported ONNX graph; "
                         "use runtime 'torch' to switch backends")

    def set_tokens_kept(self, fraction):
        raise ValueError(f"tokens kept {fraction}: the token count is fixed in an exported ONNX graph; "
                         "use runtime 'torch' to change it (or leave it at 0)")

    def row_workers(self):
        return 1  # the session spreads each pass over its own intra-op threads

    def forward_numpy(self, x, band):
        """One batched pass: (B, N) float32, (B,) int64 -> dict of numpy arrays (as SpectrumModel's)."""
        out = dict(zip(self.outputs, self.session.run(list(self.outputs), {"spectra": x, "band": band})))
        out = {k: torch.from_numpy(np.asarray(v, np.int64 if k == "kept" else np.float32)) for k, v in out.items()}
        return {k: v.numpy() for k, v in decode_outputs(out).items()}


def _checked_meta(text, path):
    """The `specenc` metadata JSON of an ONNX file, with the keys the runtime needs; ValueError naming the file."""
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ValueError(f"{path}: its {META_KEY!r} metadata is not valid JSON ({exc})") from None
    missing = [k for k in ("config", "threshold", "trained") if k not in meta]
    if missing or not isinstance(meta.get("config"), dict) or "nfft" not in meta["config"]:
        raise ValueError(f"{path}: its {META_KEY!r} metadata lacks {', '.join(missing) or 'config.nfft'} "
                         "(not written by `specenc export`?)")
    check_fields(meta, f"{path}: its {META_KEY!r} metadata")
    return meta


def load_onnx_model(path=None, backend=None, device="cpu", threads=None):
    """An exported `.onnx`, or a safetensors checkpoint (None = shipped default) exported in memory
    -> OnnxSpectrumModel on the execution providers runtime_select picks for `device`."""
    import onnx

    selection = runtime_select.select("onnxruntime", device)
    t0 = time.perf_counter()
    if path is not None and str(path).endswith(".onnx"):
        if backend:
            raise ValueError(f"backend {backend!r}: the attention backend is fixed in an exported ONNX graph "
                             f"({path}); drop the backend or load the safetensors checkpoint")
        if not os.path.exists(str(path)):
            raise FileNotFoundError(f"ONNX model not found: {path}")
        source = str(path)
        try:
            proto = onnx.load(source)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends: not an ONNX file
            raise ValueError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    else:
        from .checkpoint import read_info
        from .spectrum_model import DEFAULT_WEIGHTS, load_model

        # A flash model loads on CUDA alone; its export is SDPA's maths either way (EXPORT_AS_SDPA)
        built = read_info(path or DEFAULT_WEIGHTS)["config"].backend
        source = onnx_bytes(load_model(path, backend=backend or ("sdpa" if built == "flash" else None), device="cpu"))
        proto = onnx.load_from_string(source)
    meta = {e.key: e.value for e in proto.metadata_props}
    if META_KEY not in meta:
        raise ValueError(f"{path} has no {META_KEY!r} metadata (not written by `specenc export`)")
    meta = _checked_meta(meta[META_KEY], path)
    if not meta["trained"] and str(path).endswith(".onnx"):
        log.warning("model %s is NOT trained (random weights, placeholder): its predictions are meaningless", path)
    try:
        session = make_session(source, selection.providers, threads, meta["config"]["nfft"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's InvalidGraph, NotImplemented (a newer opset), ...
        raise ValueError(f"{path}: onnxruntime cannot run this graph ({type(exc).__name__}: {exc})") from None
    model = OnnxSpectrumModel(session, meta, device=selection.device, path=str(path) if path else None)
    log.info("onnxruntime session for %s on %s in %.0f ms", path or "the shipped default", ", ".join(model.providers),
             1e3 * (time.perf_counter() - t0))
    return model
