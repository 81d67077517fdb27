"""Training loop: AdamW, warm-up + cosine learning rate, Gumbel temperature annealing, joint loss,
per-epoch validation on a fixed seeded set, early stopping, resumable checkpoints, CSV/JSON metrics,
and a final threshold calibration on clean scenes.

Output directory layout:
  checkpoint.json + checkpoint-/optimizer-/pool-STEP.safetensors    resumable state (last epoch; the JSON names its files)
  best.safetensors                                                  weights of the best validation epoch (no config)
  model.safetensors + model.json                                    the trained, calibrated model
  metrics.csv / metrics.json                                        one row per epoch
"""

import collections
import contextlib
import csv
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from safetensors.torch import load_file
from tqdm import tqdm

from .. import bands, json_out
from ..folders import make_folder
from ..model.attention import check_backend
from ..model.spectrum_model import resolve_device
from . import calibrate, checkpoint, datasets, metrics, modelio

log = logging.getLogger(__name__)


def progress(cfg, step, elapsed_s=0.0):
    """Fraction of the schedule done: by steps, or by wall clock when that runs ahead under a time
    budget (a shared or slow CPU still ends the run annealed, with the learning rate decayed)."""
    frac = step / max(1, cfg.total_steps)
    if cfg.max_minutes > 0:
        frac = max(frac, elapsed_s / (60.0 * cfg.max_minutes))
    return min(1.0, frac)


def lr_at(cfg, step, frac=None):
    """Linear warm-up over warmup_steps, then cosine decay to min_lr_ratio * lr at frac = 1."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if frac is None:
        frac = progress(cfg, step)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def tau_at(cfg, frac):
    """Gumbel temperature annealed exponentially from tau_start (frac 0) to tau_end (frac 1)."""
    return cfg.tau_start * (cfg.tau_end / cfg.tau_start) ** min(1.0, frac)


def training_batch(cfg, index):
    """Fresh training batch number `index`: its own seed stream, so batches do not depend on which
    process made them or in what order (workers, resume). `unknown_band` of its rows are given band
    "other", as predict() does when the tuning is unknown, so the model also works without it."""
    rng = datasets.stream(cfg.seed, datasets.TRAIN_STREAM, index + 1)  # part 0: the pool's slot choices
    batch = datasets.as_dict(modelio.make_batch(rng, cfg))
    if cfg.unknown_band > 0:
        batch["band"][rng.random(len(batch["band"])) < cfg.unknown_band] = bands.BAND_INDEX["other"]
    return batch


@contextlib.contextmanager
def _ctrl_c_held():
    """Ctrl-C held back meanwhile and raised after: a batch worker started inside keeps SIGINT blocked for life, so
    Ctrl-C, sent to the terminal's whole process group, is the training process's to handle (it ends the workers; a
    worker's own KeyboardInterrupt, even during its imports, printed a long traceback over the interruption's one
    line), and the handler only notes it (the mask alone does not hold it: another thread of the process takes it,
    and Python raised it here, in the middle of starting a worker)."""
    main = threading.current_thread() is threading.main_thread()  # only its handler can be swapped
    came = []
    handler = signal.signal(signal.SIGINT, lambda *_: came.append(True)) if main else None
    held = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if main:
            signal.signal(signal.SIGINT, handler)
    if came:  # to whatever handles it now: KeyboardInterrupt, the default's end of the process, or nothing
        signal.raise_signal(signal.SIGINT)


class BatchSource:
    """Training batches from the generator, optionally through a pool so that generation cost is
    shared by several steps: each step adds `pool_refresh` (may be fractional, e.g. 0.5 = one fresh
    batch every second step) to a credit, replaces one random slot per whole credit, then draws a
    random slot. With cfg.workers > 0, fresh batches are made ahead in worker processes (on cores
    the training step leaves free) and taken in index order, so the data are the same either way."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.rng = datasets.stream(cfg.seed, datasets.TRAIN_STREAM, 0)  # pool slot choices only
        self.pool = []
        self.credit = 0.0
        self.made = 0  # fresh batches taken so far (the next one's index)
        self._pending = collections.deque()  # futures of batches made + 0, 1, ... in order
        self._workers = None
        if cfg.workers > 0:
            # spawn: a forked child would inherit torch's OpenMP state, which is not fork-safe.
            self._workers = ProcessPoolExecutor(cfg.workers, mp_context=multiprocessing.get_context("spawn"))

    def _fresh(self):
        index = self.made
        self.made += 1
        if self._workers is None:
            return training_batch(self.cfg, index)
        while len(self._pending) < 2 * self.cfg.workers:
            with _ctrl_c_held():  # submit() starts the workers (spawn: one per submit until all run)
                self._pending.append(self._workers.submit(training_batch, self.cfg, index + len(self._pending)))
        return self._pending.popleft().result()

    def next(self):
        cfg = self.cfg
        if cfg.pool_batches <= 0:
            return self._fresh()
        while len(self.pool) < cfg.pool_batches:
            self.pool.append(self._fresh())
        self.credit += cfg.pool_refresh
        while self.credit >= 1.0:
            self.credit -= 1.0
            self.pool[int(self.rng.integers(len(self.pool)))] = self._fresh()
        return self.pool[int(self.rng.integers(len(self.pool)))]

    def close(self):
        if self._workers is not None:
            self._workers.shutdown(cancel_futures=True)
            self._workers, self._pending = None, collections.deque()

    def state(self):
        return {"rng": self.rng.bit_generator.state, "credit": self.credit, "made": self.made}

    def save_pool(self, path):
        if self.pool:
            checkpoint.save_tensors({f"{i}.{k}": torch.from_numpy(np.ascontiguousarray(v))
                                     for i, b in enumerate(self.pool) for k, v in b.items()}, path)

    def restore(self, state, pool_path):
        self.rng.bit_generator.state = state["rng"]
        self.credit = state["credit"]
        self.made = state.get("made", 0)  # checkpoints before worker generation did not count batches
        self.pool = []
        if os.path.exists(pool_path):
            t = load_file(pool_path)
            n = 1 + max(int(k.split(".", 1)[0]) for k in t)
            self.pool = [{k.split(".", 1)[1]: v.numpy() for k, v in t.items() if k.split(".", 1)[0] == str(i)}
                         for i in range(n)]


@torch.no_grad()
def validate(net, val, cfg, tau, device):
    """Validation loss terms, family accuracy and anomaly AUROC on the fixed validation set."""
    net.eval()
    sums, n = {}, 0
    fam_pred, scores = [], []
    for i in range(0, len(val["spectra"]), cfg.batch_size):
        part = {k: v[i:i + cfg.batch_size] for k, v in val.items()}
        loss, terms, out = modelio.forward_loss(net, part, cfg, tau, device)
        b = len(part["spectra"])
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + v * b
        n += b
        fam_pred.append(modelio.family_pred(out))
        scores.append(modelio.anomaly_score(out))
    net.train()
    fam_pred, scores = np.concatenate(fam_pred), np.concatenate(scores)
    out = {f"val_{k}": v / n for k, v in sums.items()}
    out["val_family_acc"] = metrics.accuracy(val["family"], fam_pred)
    out["val_anomaly_auroc"] = metrics.auroc(val["anomaly"] > 0.5, scores)
    return out


def _write_metrics(out_dir, history):
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json_out.dump(history, f, indent=1)
    keys = list(dict.fromkeys(k for row in history for k in row))
    with open(os.path.join(out_dir, "metrics.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)


# What a resumed run may change: how long it goes on, and where its batches are made. Anything else would mix two
# recipes in one model (and a new seed a new validation set, against which the saved best loss means nothing).
RESUMABLE_CHANGES = ("max_minutes", "max_epochs", "patience", "workers")


def _check_resumable(out_dir, cfg, resume):
    """ValueError unless the checkpoint in out_dir is resumed (resume=True) with the config it was made with."""
    saved = checkpoint.saved_state(out_dir)
    if not resume:
        raise ValueError(f"{out_dir} holds the checkpoint of an earlier run (epoch {saved.get('epoch')}): "
                         "--resume it, or give another --out")
    now = cfg.to_dict()
    changed = sorted(k for k in set(now) | set(saved.get("config", {}))
                     if k not in RESUMABLE_CHANGES and now.get(k) != saved.get("config", {}).get(k))
    if changed:
        raise ValueError(f"--resume: the config differs from the one {out_dir} was trained with in "
                         f"{', '.join(changed)}; only {', '.join(RESUMABLE_CHANGES)} may change")


def _diverged(step, what, lr):
    return ValueError(f"training diverged at step {step} ({what}) at lr {lr:.3g}: train again with a lower lr, or a "
                      "grad_clip > 0, into another --out (a resume repeats this run)")


def train(cfg, out_dir, device="cpu", resume=False, show_progress=True, calibrate_model=True, stop_after=None):
    """Train per `cfg` into `out_dir`; returns a summary dict (and writes model.safetensors/.json).

    stop_after: leave after this many epochs of this call (as if interrupted), keeping the schedule
    of the full config, so that a later `resume=True` call continues exactly."""
    cfg.validate()
    device = resolve_device(device)
    if checkpoint.exists(out_dir):
        _check_resumable(out_dir, cfg, resume)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    net = modelio.build_network(cfg).to(device)  # checks the model's config before anything is written
    check_backend(net.config.backend, device)  # flash without flash-attn failed only at the first step
    make_folder(out_dir)  # a file of that name: said so, not "[Errno 17] File exists"
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    source = BatchSource(cfg)
    val = datasets.make_set(datasets.stream(cfg.seed, datasets.VAL_STREAM), cfg.val_spectra, cfg.nfft,
                            cfg.anomaly_fraction, cfg.batch_size, cfg.bands)
    best_path = os.path.join(out_dir, "best.safetensors")
    state = {"step": 0, "epoch": 0, "best_val": float("inf"), "best_epoch": -1, "bad_epochs": 0,
             "elapsed_s": 0.0, "history": [], "stopped": ""}
    if resume and checkpoint.exists(out_dir):
        state = checkpoint.load(out_dir, net, opt)
        source.restore(state.pop("data_rng"), checkpoint.file_path(out_dir, "pool"))
        log.info("resumed at epoch %d step %d", state["epoch"], state["step"])
        if state["stopped"]:
            log.warning("%s: that run had finished (%s); nothing more to train, only calibration is redone (a longer "
                        "run needs another --out)", out_dir, state["stopped"])
    elif resume:
        log.warning("--resume: no checkpoint in %s, starting fresh", out_dir)

    try:
        net.train()
        started = time.monotonic() - state["elapsed_s"]
        first_epoch = state["epoch"]
        while state["epoch"] < cfg.max_epochs and not state["stopped"]:
            if stop_after is not None and state["epoch"] - first_epoch >= stop_after:
                return {"epochs": state["epoch"], "steps": state["step"], "stopped": "interrupted (stop_after)"}
            sums, done = {}, 0
            bar = tqdm(range(cfg.steps_per_epoch), desc=f"epoch {state['epoch'] + 1}/{cfg.max_epochs}",
                       unit="step", disable=not show_progress, leave=False)
            for _ in bar:
                step = state["step"]
                frac = progress(cfg, step, time.monotonic() - started)
                if frac >= 1.0 and step > 0:
                    state["stopped"] = "schedule complete" + (f" (time budget {cfg.max_minutes} min)"
                                                              if step < cfg.total_steps else "")
                    break
                lr, tau = lr_at(cfg, step, frac), tau_at(cfg, frac)
                for g in opt.param_groups:
                    g["lr"] = lr
                loss, terms, _ = modelio.forward_loss(net, source.next(), cfg, tau, device)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                # The norm is measured either way (an infinite max_norm clips nothing): a non-finite loss or update
                # stops here, not an epoch later in validation on NaN scores, unexplained.
                norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip or math.inf)
                if not (torch.isfinite(loss) and torch.isfinite(norm)):
                    raise _diverged(step, f"loss {loss.item():.4g}, gradient norm {norm.item():.4g}", lr)
                opt.step()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                state["step"], done = step + 1, done + 1
                bar.set_postfix(loss=f"{terms['loss']:.3f}", tau=f"{tau:.2f}")
            bar.close()
            if done == 0:  # the budget ran out before this epoch's first step: the saved checkpoint is the last
                checkpoint.mark_stopped(out_dir, state["stopped"])
                break
            if not all(torch.isfinite(p).all() for p in net.parameters()):  # a finite step can still overflow them
                raise _diverged(state["step"] - 1, "weights no longer finite", lr)
            state["epoch"] += 1
            state["elapsed_s"] = time.monotonic() - started
            row = {"epoch": state["epoch"], "step": state["step"], "lr": lr, "tau": tau,
                   "elapsed_s": round(state["elapsed_s"], 1)}
            row.update({f"train_{k}": v / done for k, v in sums.items()})
            row.update(validate(net, val, cfg, tau, device))
            state["history"].append(row)
            # Every figure (also in metrics.csv); with the progress bar, its short line below is what one reads.
            (log.debug if show_progress else log.info)("epoch %d: %s", state["epoch"], ", ".join(
                f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)))
            if show_progress:
                tqdm.write(f"epoch {state['epoch']}: loss {row['train_loss']:.4f} val_loss {row['val_loss']:.4f} "
                           f"val_acc {row['val_family_acc']:.3f} val_auroc {row['val_anomaly_auroc']:.3f} "
                           f"lr {lr:.2e} tau {tau:.2f} ({row['elapsed_s']:.0f} s)")
            if row["val_loss"] < state["best_val"]:
                state.update(best_val=row["val_loss"], best_epoch=state["epoch"], bad_epochs=0)
                checkpoint.save_tensors({k: v.detach().contiguous().clone() for k, v in net.state_dict().items()},
                                        best_path)
            else:
                state["bad_epochs"] += 1
                if state["bad_epochs"] >= cfg.patience:
                    state["stopped"] = f"early stop: no val_loss improvement for {cfg.patience} epochs"
            _write_metrics(out_dir, state["history"])
            checkpoint.save(out_dir, net, opt, {**state, "data_rng": source.state(), "config": cfg.to_dict()},
                            source.save_pool)
    finally:
        source.close()  # worker processes end with the loop, also on Ctrl-C or an error

    summary = {"epochs": state["epoch"], "steps": state["step"], "best_epoch": state["best_epoch"],
               "best_val_loss": state["best_val"], "elapsed_s": round(state["elapsed_s"], 1),
               "stopped": state["stopped"] or "max_epochs reached", "config": cfg.to_dict()}
    if os.path.exists(best_path):
        net.load_state_dict(load_file(best_path))
    if state["history"]:
        best = state["history"][state["best_epoch"] - 1]
        summary.update({k: v for k, v in best.items() if k.startswith("val_")})
    threshold, calib = 0.5, {}
    if calibrate_model:
        threshold, calib = calibrate_network(net, cfg, device, show_progress)
    summary["calibration"] = calib
    modelio.save_model(net, os.path.join(out_dir, "model.safetensors"), threshold,
                       {"training": summary})
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json_out.dump(summary, f, indent=1)
    pool_path = checkpoint.file_path(out_dir, "pool") if checkpoint.exists(out_dir) else ""
    if state["stopped"] and os.path.exists(pool_path):  # a finished run resumes to nothing: its 70 MB pool can go
        os.remove(pool_path)
    return summary


@torch.no_grad()
def calibrate_network(net, cfg, device, show_progress=True):
    """Threshold for cfg.far on clean calibration scenes (their own seed stream)."""
    net.eval()
    clean = datasets.make_set(datasets.stream(cfg.seed, datasets.CALIB_STREAM), cfg.calib_spectra, cfg.nfft,
                              0.0, cfg.batch_size, cfg.bands, desc="clean scenes" if show_progress else None)
    scores = []
    for i in tqdm(range(0, len(clean["spectra"]), 256), desc="calibrating", disable=not show_progress, leave=False):
        part = {k: v[i:i + 256] for k, v in clean.items()}
        _, _, out = modelio.forward_loss(net, part, cfg, cfg.tau_end, device)
        scores.append(modelio.anomaly_score(out))
    scores = np.concatenate(scores)
    tau = calibrate.threshold_for_far(scores, cfg.far)
    return tau, calibrate.calibration_summary(scores, tau, cfg.far)
