"""The training code's only contact with the model and generator libraries: build the network, run
the joint loss, read scores from its outputs, save and ship checkpoints."""

import os
import shutil

import torch

from .. import synth
from ..model import ModelConfig, SpectrumEncoder, batch_to_tensors, runtime_onnx, spectrum_loss
from ..model.checkpoint import json_path_for, save_checkpoint
from ..model.spectrum_model import DEFAULT_WEIGHTS


def model_config(cfg):
    """ModelConfig from the training config's `model` overrides (nfft from the training config)."""
    return ModelConfig.from_dict({**cfg.model, "nfft": cfg.nfft})


def build_network(cfg):
    return SpectrumEncoder(model_config(cfg))


def make_batch(rng, cfg):
    return synth.make_batch(rng, batch_size=cfg.batch_size, nfft=cfg.nfft, anomaly_fraction=cfg.anomaly_fraction,
                            bands=cfg.bands, band_weights=cfg.band_weights)


def forward_loss(net, batch, cfg, tau, device):
    """(loss tensor, dict of float terms, outputs dict) for one batch dict of numpy arrays."""
    net.set_temperature(tau)
    t = batch_to_tensors(batch, device)
    out = net(t["spectra"], t["band"])
    loss, terms = spectrum_loss(out, t, alpha=cfg.alpha)
    return loss, terms, out


def family_pred(out):
    return out["family_logits"].argmax(-1).cpu().numpy()


def anomaly_score(out):
    return torch.sigmoid(out["anomaly_logit"]).detach().cpu().numpy()


def save_model(net, path, threshold, metadata):
    return save_checkpoint(net, path, threshold=threshold, trained=True, metadata=metadata)


def check_out_path(model, out_path):
    """ValueError naming the problem when save_with_threshold cannot write `model` to `out_path` (callers check
    before scoring recordings for minutes)."""
    if isinstance(model, runtime_onnx.OnnxSpectrumModel):
        runtime_onnx.check_save_path(model, out_path)
    elif not str(out_path).endswith(".safetensors"):
        raise ValueError(f"{out_path}: a checkpoint is written as .safetensors (the JSON goes beside it); "
                         "`specenc export --model` it afterwards for .onnx")


def save_with_threshold(model, out_path, threshold, summary):
    """Copy of a loaded SpectrumModel with a new threshold; the calibration goes into its metadata. An exported
    ONNX model is copied as .onnx (its int8 or fp16 scores are the ones its threshold is for), a checkpoint as
    .safetensors."""
    check_out_path(model, out_path)
    meta = {**model.metadata, "calibration": summary}
    if isinstance(model, runtime_onnx.OnnxSpectrumModel):
        return runtime_onnx.save_with_threshold(model, out_path, threshold, meta)
    path, _ = save_checkpoint(model.net, out_path, threshold=threshold, trained=model.trained, metadata=meta)
    return path


def ship_default(model_path):
    """Copy a trained model (.safetensors + .json) over the package's default weights."""
    os.makedirs(DEFAULT_WEIGHTS.parent, exist_ok=True)
    shutil.copyfile(model_path, DEFAULT_WEIGHTS)
    shutil.copyfile(json_path_for(model_path), json_path_for(DEFAULT_WEIGHTS))
    return str(DEFAULT_WEIGHTS)
