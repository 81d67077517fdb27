"""Small-budget training cells for the accuracy experiments (compression, RoPE, factorial, normalisation).

Every cell trains the same tiny network (TINY, with one or more fields changed) for the same number
of steps, on the same pre-generated batches in the same order, with the training library's loss,
learning-rate and Gumbel-temperature schedules (training.modelio / training.train), and is scored on
one shared held-out set. So cells compare variants under equal, small compute: they are not
converged figures (the shipped default model is, and is scored on the same set beside them).
"""

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import bands
from ..training import datasets, metrics, modelio, train
from ..training.config import TrainConfig

log = logging.getLogger(__name__)

# The cells' network: a quarter-width default (d_model 32, 2 layers, 4 heads of 8), T = 256 tokens.
TINY = dict(d_model=32, n_layers=2, n_heads=4, n_kv_heads=4, n_latents=16, anomaly_hidden=32)
# The base variant every table changes one field of: r = 0.25 Gumbel, dynamic RoPE, RMSNorm, SDPA.
BASE = dict(rope="dynamic", dropout_mode="gumbel", drop_ratio=0.25, backend="sdpa", norm="rmsnorm")
DROPOUTS = {"none": dict(dropout_mode="none", drop_ratio=0.0), "fixed": dict(dropout_mode="fixed", drop_ratio=0.25),
            "gumbel": dict(dropout_mode="gumbel", drop_ratio=0.25)}
ROPES = ("none", "static", "dynamic")
FACTORIAL_BACKENDS = ("sdpa", "gqa", "latent")  # mha computes the same function as sdpa, so it is left out


GQA_GROUP = 4  # query heads per K/V head with gqa, as `specenc bench model` uses (4 -> 1, 8 -> 2)


def backend_fields(backend, n_heads):
    """Model fields for an attention backend: gqa shares each K/V head between GQA_GROUP query heads."""
    if backend == "gqa":
        return dict(backend="gqa", n_kv_heads=max(1, n_heads // GQA_GROUP))
    return dict(backend=backend)


def cell_name(v):
    drop = "none" if v["dropout_mode"] == "none" else f"{v['dropout_mode']}@{v['drop_ratio']:g}"
    return f"rope={v['rope']} drop={drop} attn={v['backend']} norm={v['norm']}"


def variant(**changes):
    v = {**BASE, **changes}
    return {**v, "name": cell_name(v)}


@dataclass
class Data:
    train: list  # of batch dicts (datasets.BATCH_FIELDS)
    val: dict  # mixed scenes: the anomaly threshold is chosen here
    test: dict  # mixed scenes: every figure is measured here
    description: str


def make_data(seed, n_train_batches, batch_size, n_val, n_test, nfft=1024):
    """Shared data: training batches (train stream), validation (val stream), test (test stream)."""
    rng = datasets.stream(seed, datasets.TRAIN_STREAM)
    tcfg = TrainConfig(seed=seed, nfft=nfft, batch_size=batch_size)
    train_batches = [datasets.as_dict(modelio.make_batch(rng, tcfg)) for _ in range(n_train_batches)]
    val = datasets.make_set(datasets.stream(seed, datasets.VAL_STREAM), n_val, nfft, 0.5, batch_size)
    test = datasets.TestSets(seed, nfft, batch_size).scenes(n_test)
    desc = (f"synthetic scenes (specenc.synth, nfft {nfft}, half with ghost anomalies): {n_train_batches} training "
            f"batches of {batch_size} reused in order by every cell, {n_val} validation and {n_test} test spectra "
            f"(seed {seed}; train/val/test streams disjoint)")
    return Data(train_batches, val, test, desc)


@torch.no_grad()
def _scores(net, data, cfg):
    net.eval()
    fam, score = [], []
    for i in range(0, len(data["spectra"]), 256):
        part = {k: v[i:i + 256] for k, v in data.items()}
        _, _, out = modelio.forward_loss(net, part, cfg, cfg.tau_end, "cpu")
        fam.append(modelio.family_pred(out))
        score.append(modelio.anomaly_score(out))
    return np.concatenate(fam), np.concatenate(score)


def score_predictions(fam_pred, score, test, threshold):
    """Accuracy overall and per band, anomaly F1 at `threshold` (score >= threshold alerts), oracle F1, AUROC."""
    y = test["anomaly"] > 0.5
    alert_thr = np.nextafter(threshold, -np.inf)  # metrics.f1_at alerts on score > thr
    return {
        "accuracy": metrics.accuracy(test["family"], fam_pred),
        "accuracy_by_band": metrics.accuracy_by_group(test["family"], fam_pred, test["band"], bands.BANDS),
        "anomaly_f1": metrics.f1_at(y, score, alert_thr)["f1"],
        "anomaly_threshold": float(threshold),
        "anomaly_best_f1": metrics.best_f1(y, score)["f1"],
        "anomaly_auroc": metrics.auroc(y, score),
    }


def val_threshold(val, score):
    """The threshold with the best F1 on the validation set (applied unchanged to the test set)."""
    return metrics.best_f1(val["anomaly"] > 0.5, score)["threshold_ge"]


def train_cell(v, data, steps, seed, model_base=TINY, lr=1e-3, threads=1):
    """Train variant `v` for `steps` steps -> (result dict, trained network in eval mode)."""
    fields = {k: v[k] for k in BASE if k != "backend"}
    model = {**model_base, **fields, **backend_fields(v["backend"], model_base.get("n_heads", 4))}
    batch_size = len(data.train[0]["spectra"])
    cfg = TrainConfig(model=model, seed=seed, nfft=data.train[0]["spectra"].shape[1], batch_size=batch_size, lr=lr,
                      warmup_steps=max(1, steps // 10), steps_per_epoch=steps, max_epochs=1, threads=threads).validate()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = modelio.build_network(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    order = np.random.default_rng(seed).permutation(len(data.train))
    net.train()
    t0 = time.monotonic()
    loss = float("nan")
    for step in range(steps):
        frac = step / steps
        for g in opt.param_groups:
            g["lr"] = train.lr_at(cfg, step, frac)
        out_loss, terms, _ = modelio.forward_loss(net, data.train[order[step % len(order)]], cfg,
                                                  train.tau_at(cfg, frac), "cpu")
        opt.zero_grad(set_to_none=True)
        out_loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        loss = terms["loss"]
    train_s = time.monotonic() - t0
    _, val_score = _scores(net, data.val, cfg)
    fam, score = _scores(net, data.test, cfg)
    res = score_predictions(fam, score, data.test, val_threshold(data.val, val_score))
    res.update(name=v["name"], variant={k: v[k] for k in BASE}, seed=seed, steps=steps, train_s=round(train_s, 2),
               final_loss=loss, params=int(sum(p.numel() for p in net.parameters())), model=model,
               rope_theta_by_band=theta_by_band(net))
    return res, net


def theta_by_band(net):
    """{band: learned RoPE theta} of a dynamic-RoPE network, None otherwise."""
    if net.rope.mode != "dynamic":
        return None
    return {name: float(t) for name, t in zip(bands.BANDS, net.rope.log_theta.detach().exp().tolist())}
