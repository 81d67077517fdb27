"""Resumable training checkpoints: safetensors for tensors (weights, optimizer moments, torch RNG, the batch
pool) and JSON for everything else (step, schedule, NumPy generator state, history). No pickle anywhere.

The tensor files are named by step (`checkpoint-STEP.safetensors`, ...) and checkpoint.json names the set it
belongs to: replacing the JSON commits a checkpoint, so a run killed while one is written resumes from the
previous one, whole, instead of from weights of one epoch and optimizer moments of another.
"""

import json
import os
import re

import torch
from safetensors.torch import load_file, save_file

from ..model.checkpoint import VERSION as WEIGHTS_VERSION

STATE = "checkpoint.json"
KINDS = {"weights": "checkpoint", "optimizer": "optimizer", "pool": "pool"}
# Checkpoints written before the files were named by step.
UNNUMBERED = {kind: f"{stem}.safetensors" for kind, stem in KINDS.items()}
_TENSOR_FILE = re.compile(rf"({'|'.join(KINDS.values())})(-\d+)?\.safetensors(\.tmp)?")  # .tmp: cut short by a kill


def _flatten_optimizer(opt):
    sd = opt.state_dict()
    tensors = {}
    scalars = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            name = f"state.{idx}.{key}"
            if torch.is_tensor(value):
                tensors[name] = value.detach().contiguous().clone()
            else:
                scalars[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors, meta):
    state = {}
    for name, value in list(tensors.items()) + list(meta["scalars"].items()):
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save(out_dir, net, opt, state, save_pool=None):
    """Write the checkpoint of state["step"]: its tensor files, then the JSON that names them (the commit), then
    remove the files of earlier checkpoints. save_pool(path), if given, writes the batch pool to path."""
    os.makedirs(out_dir, exist_ok=True)
    files = {kind: f"{stem}-{int(state['step'])}.safetensors" for kind, stem in KINDS.items()}
    weights = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    save_tensors(weights, os.path.join(out_dir, files["weights"]))
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    opt_tensors["torch_rng"] = torch.get_rng_state()
    save_tensors(opt_tensors, os.path.join(out_dir, files["optimizer"]))
    if save_pool is not None:
        save_pool(os.path.join(out_dir, files["pool"]))
    _write_state(out_dir, {**state, "files": files, "optimizer": opt_meta, "weights_version": WEIGHTS_VERSION})
    for name in os.listdir(out_dir):
        if _TENSOR_FILE.fullmatch(name) and name not in files.values():
            os.remove(os.path.join(out_dir, name))


def mark_stopped(out_dir, stopped):
    """Record in the saved checkpoint that its run has finished (why: `stopped`), leaving its tensors as they are."""
    state = saved_state(out_dir)
    _write_state(out_dir, {**state, "stopped": stopped})


def _write_state(out_dir, state):
    tmp = os.path.join(out_dir, STATE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)  # Python's JSON: resume reads back inf and NaN as saved
    os.replace(tmp, os.path.join(out_dir, STATE))


def file_path(out_dir, kind):
    """Path of the saved checkpoint's tensor file of `kind` (weights, optimizer, pool); the pool may not exist."""
    names = saved_state(out_dir).get("files", UNNUMBERED)
    return os.path.join(out_dir, names[kind])


def save_tensors(tensors, path):
    """safetensors file written whole or not at all (a kill mid-write would leave a truncated one to resume from)."""
    save_file(tensors, path + ".tmp")
    os.replace(path + ".tmp", path)


def exists(out_dir):
    return os.path.exists(os.path.join(out_dir, STATE))


def saved_state(out_dir):
    """The JSON state of the checkpoint in out_dir (epoch, config, ...), without loading any tensor."""
    with open(os.path.join(out_dir, STATE)) as f:
        return json.load(f)


def load(out_dir, net, opt):
    """Restore weights, optimizer and torch RNG in place; returns the JSON state."""
    path = os.path.join(out_dir, STATE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint to resume in {out_dir} (expected {STATE})")
    with open(path) as f:
        state = json.load(f)
    if state.pop("weights_version", 1) != WEIGHTS_VERSION:
        # The model file loader reorders old weights, but not the optimizer moments that go with them.
        raise ValueError(f"{path} was written by an older gr-specenc whose weights pair RoPE features differently "
                         "(model file version 1); it cannot be resumed: start the run again in a new --out")
    names = state.pop("files", UNNUMBERED)
    net.load_state_dict(load_file(os.path.join(out_dir, names["weights"])))
    tensors = load_file(os.path.join(out_dir, names["optimizer"]))
    torch.set_rng_state(tensors.pop("torch_rng"))
    opt.load_state_dict(_unflatten_optimizer(tensors, state.pop("optimizer")))
    return state
