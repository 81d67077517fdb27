"""Resumable training checkpoints: safetensors for tensors (weights, optimizer moments, torch RNG) and
JSON for everything else (step, schedule, NumPy generator state, history). No pickle anywhere.
"""

import json
import os

import torch
from safetensors.torch import load_file, save_file

from ..model.checkpoint import VERSION as WEIGHTS_VERSION

WEIGHTS, OPTIMIZER, STATE = "checkpoint.safetensors", "optimizer.safetensors", "checkpoint.json"


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


def save(out_dir, net, opt, state):
    """Write the checkpoint atomically enough for a killed run: tensors first, the JSON last."""
    os.makedirs(out_dir, exist_ok=True)
    weights = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    save_tensors(weights, os.path.join(out_dir, WEIGHTS))
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    opt_tensors["torch_rng"] = torch.get_rng_state()
    save_tensors(opt_tensors, os.path.join(out_dir, OPTIMIZER))
    tmp = os.path.join(out_dir, STATE + ".tmp")
    with open(tmp, "w") as f:
        json.dump({**state, "optimizer": opt_meta, "weights_version": WEIGHTS_VERSION}, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, STATE))


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
    net.load_state_dict(load_file(os.path.join(out_dir, WEIGHTS)))
    tensors = load_file(os.path.join(out_dir, OPTIMIZER))
    torch.set_rng_state(tensors.pop("torch_rng"))
    opt.load_state_dict(_unflatten_optimizer(tensors, state.pop("optimizer")))
    return state
