"""Checkpoints: weights in safetensors, everything else (config, threshold, metadata) in a JSON beside
them (`x.safetensors` + `x.json`). Never pickle.

JSON: {"format": "specenc-model", "version": 2, "config": {...ModelConfig...}, "threshold": float,
"trained": bool, "metadata": {...}}.

Version 2 rotates RoPE pairs of neighbouring features (2i, 2i+1) of each query/key head; version 1 paired
feature i with i + hd/2. A version-1 file is read by reordering those features (the q and k rows of every
qkv projection and the latents' last axis) into the version-2 order: q.k products and so every output are
unchanged.
"""

import json
import logging
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .. import json_out
from ..training.calibrate import MAX_INTEGRATE
from .config import ModelConfig

log = logging.getLogger(__name__)

FORMAT, VERSION = "specenc-model", 2
READABLE_VERSIONS = (1, 2)


def json_path_for(weights_path):
    """`x.safetensors` -> `x.json` (any other name gets `.json` appended)."""
    root, ext = os.path.splitext(str(weights_path))
    return (root if ext == ".safetensors" else str(weights_path)) + ".json"


def save_checkpoint(net, path, threshold=0.5, trained=False, metadata=None):
    """Write `path` (safetensors) and its JSON; returns (weights path, json path)."""
    path = str(path)
    if not path.endswith(".safetensors"):
        raise ValueError(f"model path {path!r} must end in .safetensors (the JSON goes beside it)")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    # The config travels in the weights' header too: a JSON swapped for another model's that fits the tensors'
    # shapes (other heads, rope_theta, nfft) would otherwise load and give other outputs without a word.
    save_file(tensors, path, metadata={"format": FORMAT, "config": json.dumps(net.config.to_dict(), sort_keys=True)})
    info = {"format": FORMAT, "version": VERSION, "config": net.config.to_dict(), "threshold": float(threshold),
            "trained": bool(trained), "metadata": metadata or {}}
    with open(json_path_for(path), "w") as f:
        json_out.dump(info, f, indent=1, sort_keys=True)
    # safetensors writes its file 0600; given the JSON's mode (the umask's), a model trained by one user loads in a
    # flowgraph running as another
    os.chmod(path, os.stat(json_path_for(path)).st_mode & 0o777)
    return path, json_path_for(path)


def read_info(path):
    """The checkpoint's JSON as a dict, validated; FileNotFoundError/ValueError naming the file."""
    if str(path).endswith(".json"):
        raise ValueError(f"{path} is a model's JSON; give the .safetensors beside it")
    jpath = json_path_for(path)
    if str(path).endswith((".pt", ".pth", ".ckpt", ".bin", ".pkl")):
        raise ValueError(f"{path}: PyTorch pickle files are not loaded (unpickling runs code); give a .safetensors "
                         "with its .json, or an exported .onnx")
    if os.path.isdir(str(path)):
        raise ValueError(f"{path} is a folder; give the model's .safetensors (or .onnx) in it")
    if not os.path.exists(str(path)):
        raise FileNotFoundError(f"model weights not found: {path}")
    if not os.path.exists(jpath):
        raise FileNotFoundError(f"model config not found: {jpath} (expected beside {path})")
    try:
        with open(jpath) as f:
            info = json.load(f)
    except (json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ValueError(f"model config {jpath} is not valid JSON: {exc}") from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(f"model config {jpath} is not a {FORMAT!r} file (format={info.get('format')!r})"
                         if isinstance(info, dict) else f"model config {jpath} must hold a JSON object")
    if info.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"model config {jpath}: version {info.get('version')!r} unsupported "
                         f"(this library reads {', '.join(map(str, READABLE_VERSIONS))})")
    try:
        info["config"] = ModelConfig.from_dict(info.get("config") or {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model config {jpath}: {exc}") from exc
    info.setdefault("threshold", 0.5)
    info.setdefault("trained", False)
    info.setdefault("metadata", {})
    check_fields(info, f"model config {jpath}")
    return info


def check_fields(info, where):
    """ValueError (prefixed `where`) unless a model file's threshold, trained and metadata (the JSON beside the
    weights, or an exported ONNX model's metadata) are a score in 0..1, a bool and an object."""
    threshold = info["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"{where}: threshold={threshold!r} must be a score in 0..1")
    if not isinstance(info["trained"], bool):
        raise ValueError(f"{where}: trained={info['trained']!r} must be true or false")
    meta = info.get("metadata", {})
    if not isinstance(meta, dict) or not isinstance(meta.get("training", {}), dict):
        raise ValueError(f"{where}: metadata (and its training record) must be a JSON object")
    # The calibration record sets how many scores the detector averages, and what run warns of: a crafted
    # integrate of 1e30 killed the encoder's thread and hung the flowgraph (audit 86).
    for record in (meta.get("calibration", {}), meta.get("training", {}).get("calibration", {})):
        if not isinstance(record, dict):  # null included
            raise ValueError(f"{where}: a calibration record must be a JSON object")
        for key, most in (("integrate", MAX_INTEGRATE), ("average", 2 ** 24)):  # frames: one spectrum's samples at most
            value = record.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise ValueError(f"{where}: calibration {key}={value!r} must be a whole number in 1..{most}")


# Config fields that choose how the same weights are computed (load_model(backend=...) overrides them).
KERNEL_FIELDS = ("backend",)


def _pairs_from_halves(hd):
    """Feature order that turns version-1 RoPE pairs (i, i + hd/2) into version-2 neighbours (2i, 2i+1)."""
    half = hd // 2
    return torch.stack((torch.arange(half), torch.arange(half) + half), dim=1).flatten()


def _upgrade_v1(tensors, cfg):
    """Version-1 tensors in version-2 feature order (see the module docstring)."""
    if cfg.rope == "none":
        return tensors
    hd, n_qk = cfg.head_dim, cfg.n_heads + cfg.n_kv_heads
    order = _pairs_from_halves(hd)
    rows = torch.cat([h * hd + order for h in range(n_qk)] + [torch.arange(n_qk * hd, (n_qk + cfg.n_kv_heads) * hd)])
    out = dict(tensors)
    for name, t in tensors.items():
        if name.endswith(".attn.qkv.weight") or name.endswith(".attn.qkv.bias"):
            out[name] = t[rows]
        elif name.endswith(".attn.latents"):
            out[name] = t[..., order]
    return out


def _saved_config(header, path):
    """The config a weights file's header records ({} for files written before it was)."""
    try:
        saved = json.loads(header.get("config", "{}"))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"model weights {path}: the config in its header is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(saved, dict):
        raise ValueError(f"model weights {path}: the config in its header must be a JSON object")
    return saved


def load_weights(cfg, path, version=VERSION):
    """A SpectrumEncoder of `cfg` holding the weights of safetensors `path` (written as checkpoint `version`), checked
    strictly: every tensor present with the expected shape and dtype. The file's header and shapes are checked against
    the config before the network is made, so a config of absurd sizes allocates nothing (audit 86)."""
    from .encoder import SpectrumEncoder

    with torch.device("meta"):  # shapes only, no memory
        expected = SpectrumEncoder(cfg).state_dict()
    try:
        with safe_open(str(path), "pt") as f:
            header = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"model weights {path} could not be read as safetensors: {exc}") from exc
    saved, now = _saved_config(header, path), cfg.to_dict()
    differ = sorted(k for k, v in saved.items() if k not in KERNEL_FIELDS and now.get(k) != v)
    if differ:
        raise ValueError(f"model weights {path} were saved with another config than {json_path_for(path)} "
                         f"describes (differs in {', '.join(differ)}): the pair does not belong together")
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise ValueError(f"model weights {path} do not match the config: missing tensors {missing[:5]}, "
                         f"unexpected tensors {unexpected[:5]}")
    for name, shape in shapes.items():
        if shape != tuple(expected[name].shape):
            raise ValueError(f"model weights {path}: tensor {name!r} has shape {shape}, "
                             f"the config needs {tuple(expected[name].shape)}")
    try:
        with safe_open(str(path), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ValueError(f"model weights {path} could not be read as safetensors: {exc}") from exc
    for name, t in tensors.items():
        if t.dtype != expected[name].dtype:
            raise ValueError(f"model weights {path}: tensor {name!r} has dtype {t.dtype}, expected {expected[name].dtype}")
        if t.is_floating_point() and not torch.isfinite(t).all():  # it ran, named every spectrum noise, alerted never
            raise ValueError(f"model weights {path}: tensor {name!r} holds NaN or inf (a diverged training run or a "
                             "corrupt file)")
    net = SpectrumEncoder(cfg)
    if version == 1:
        tensors = _upgrade_v1(tensors, net.config)
    with torch.no_grad():
        net.load_state_dict(tensors, strict=True)
    return net
