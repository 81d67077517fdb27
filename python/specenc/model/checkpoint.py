"""Checkpoints: weights in safetensors, everything else (config, threshold, metadata) in a JSON beside
them (`x.safetensors` + `x.json`). Never pickle.

JSON: {"format": "specenc-model", "version": 1, "config": {...ModelConfig...}, "threshold": float,
"trained": bool, "metadata": {...}}.
"""

import json
import logging
import os

import torch
from safetensors.torch import load_file, save_file

from .config import ModelConfig

log = logging.getLogger(__name__)

FORMAT, VERSION = "specenc-model", 1


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
    save_file(tensors, path, metadata={"format": FORMAT})
    info = {"format": FORMAT, "version": VERSION, "config": net.config.to_dict(), "threshold": float(threshold),
            "trained": bool(trained), "metadata": metadata or {}}
    with open(json_path_for(path), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
    return path, json_path_for(path)


def read_info(path):
    """The checkpoint's JSON as a dict, validated; FileNotFoundError/ValueError naming the file."""
    jpath = json_path_for(path)
    if not os.path.exists(str(path)):
        raise FileNotFoundError(f"model weights not found: {path}")
    if not os.path.exists(jpath):
        raise FileNotFoundError(f"model config not found: {jpath} (expected beside {path})")
    try:
        with open(jpath) as f:
            info = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"model config {jpath} is not valid JSON: {exc}") from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(f"model config {jpath} is not a {FORMAT!r} file (format={info.get('format')!r})"
                         if isinstance(info, dict) else f"model config {jpath} must hold a JSON object")
    if info.get("version") != VERSION:
        raise ValueError(f"model config {jpath}: version {info.get('version')!r} unsupported (this library reads {VERSION})")
    try:
        info["config"] = ModelConfig.from_dict(info.get("config") or {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model config {jpath}: {exc}") from exc
    info.setdefault("threshold", 0.5)
    info.setdefault("trained", False)
    info.setdefault("metadata", {})
    return info


def load_weights(net, path):
    """Load safetensors `path` into `net`, strictly: every tensor present with the expected shape."""
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"model weights {path} could not be read as safetensors: {exc}") from exc
    expected = net.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"model weights {path} do not match the config: missing tensors {missing[:5]}, "
                         f"unexpected tensors {unexpected[:5]}")
    for name, t in tensors.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise ValueError(f"model weights {path}: tensor {name!r} has shape {tuple(t.shape)}, "
                             f"the config needs {tuple(expected[name].shape)}")
        if t.dtype != expected[name].dtype:
            raise ValueError(f"model weights {path}: tensor {name!r} has dtype {t.dtype}, expected {expected[name].dtype}")
    with torch.no_grad():
        net.load_state_dict(tensors, strict=True)
    return net
