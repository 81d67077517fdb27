"""`specenc bench paper`: the paper's experiments on our data and this machine -> JSON, PNG plots, REPORT.md.

Sections (all by default, or a subset with --sections):
  latency      batch-1 forward latency vs kept tokens (64..256) per backend, default model beside the
               seed-size reference (d_model 512, 6 layers, 8 heads)
  compression  accuracy and anomaly F1 for r in {0, 0.25, 0.5} x {fixed, gumbel}   (training cells)
  rope         RoPE none / static / dynamic: accuracy overall and per band            (training cells)
  factorial    RoPE x dropout x backend, 3x3x3, with main effects                    (training cells)
  norm         RMSNorm vs LayerNorm: accuracy and latency                            (training cells)
  throughput   spectra/s vs batch size per backend
  memory       peak memory (measured) and K/V bytes (analytic) vs sequence length up to 16k tokens
  energy       joules per spectrum from RAPL/NVML, or "not measurable here"
  selector     the most accurate measured configuration within a latency budget (default 30 ms)
Every comparison in a section is measured side by side in one run. --quick runs every section at a
tiny size (a smoke test of the suite, figures meaningless); the full run takes ~20 min on 2 cores.
"""

import json
import logging
import math
import os
import shlex
import time

# The product's OpenMP wait policy (see spectrum_encoder): spinning threads on a shared 2-core machine
# slowed the model ~8x. Read when torch loads OpenMP, so set before torch is imported; the user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from tqdm import tqdm

from . import cells, energy, machine, memory, selector, stats

log = logging.getLogger(__name__)

SECTIONS = ("latency", "compression", "rope", "factorial", "norm", "throughput", "memory", "energy", "selector")
CELL_SECTIONS = ("compression", "rope", "factorial", "norm")
BACKENDS = ("mha", "sdpa", "gqa", "latent")
FLASH_NOTE = "not run: the flash backend needs CUDA and the flash-attn package"
REFERENCE_NAME = "reference d512/6L/8H"

# Sizes of the full run and of --quick (every section, all backends, tiny budgets).
FULL = dict(tokens=(64, 128, 192, 256), warmup=100, iters=1000, ref_warmup=10, ref_iters=50, steps=300, seeds=3,
            train_batches=100, batch=32, n_val=512, n_test=2048, tput_batches=(1, 4, 16, 64, 256), tput_iters=20,
            mem_tokens=(256, 1024, 2048, 4096, 8192, 16384), energy_calls=200, sel_warmup=20, sel_iters=200)
QUICK = dict(tokens=(64, 128, 192, 256), warmup=2, iters=10, ref_warmup=1, ref_iters=2, steps=3, seeds=1,
             train_batches=2, batch=16, n_val=64, n_test=128, tput_batches=(1, 8), tput_iters=2,
             mem_tokens=(256, 1024), energy_calls=5, sel_warmup=1, sel_iters=5)
CELL_MODEL = {**cells.TINY, "pool_stride": 16}  # T = 64 tokens: keeps 30+ cells within ~10 min on 2 cores


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true",
                        help="every section at a tiny size (smoke test, < 1 min; figures meaningless)")
    parser.add_argument("--sections", default="all",
                        help=f"comma-separated subset of: {', '.join(SECTIONS)} (default all)")
    parser.add_argument("--out", default=None,
                        help="output folder for REPORT.md, *.png and results/*.json (default bench, "
                             "or out/bench_quick with --quick)")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite REPORT.md and the plots from OUT/results/paper.json")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                        help="inference device (default cpu)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--budget-ms", type=float, default=selector.DEFAULT_BUDGET_MS,
                        help="latency budget for the selector, ms (default 30)")
    parser.add_argument("--mem-cap-gib", type=float, default=8.0,
                        help="memory cap: a configuration predicted above it is reported as exceeding it, "
                             "not run (default 8)")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations per latency point "
                        "(default 1000; quick 10)")
    parser.add_argument("--ref-iters", type=int, default=None,
                        help="timed iterations per latency point of the reference model (default 50; quick 2)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per cell (default 300; quick 3)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per cell of the compression/rope/norm tables (default 3; quick 1)")


def _settings(args):
    s = dict(QUICK if args.quick else FULL)
    for key in ("iters", "ref_iters", "steps", "seeds"):
        v = getattr(args, key, None)
        if v is not None:
            if v < 1:
                raise ValueError(f"--{key.replace('_', '-')}={v} must be >= 1")
            s[key] = v
    if not 1 <= args.threads <= 64:
        raise ValueError(f"--threads={args.threads} must be in 1..64")
    if not 0 < args.mem_cap_gib < math.inf:
        raise ValueError(f"--mem-cap-gib={args.mem_cap_gib} must be a finite number > 0")
    if not args.budget_ms > 0:  # used by the last section: checked before the others train
        raise ValueError(f"--budget-ms={args.budget_ms} must be > 0")
    if args.sections == "all":
        s["sections"] = SECTIONS
    else:
        chosen = tuple(x.strip() for x in args.sections.split(",") if x.strip())
        bad = [x for x in chosen if x not in SECTIONS]
        if bad or not chosen:
            raise ValueError(f"--sections {args.sections!r}: unknown {bad}; choose from {', '.join(SECTIONS)}")
        s["sections"] = tuple(x for x in SECTIONS if x in chosen)
    return s


def command_line(args):
    """The command that reproduces this run, quoted to be run again as it is."""
    parts = ["specenc", "bench", "paper"]
    if args.quick:
        parts.append("--quick")
    if args.sections != "all":
        parts += ["--sections", args.sections]
    for key in ("iters", "ref_iters", "steps", "seeds"):
        if getattr(args, key, None) is not None:
            parts += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if args.device != "cpu":
        parts += ["--device", args.device]
    if args.threads != 2:
        parts += ["--threads", str(args.threads)]
    if args.budget_ms != selector.DEFAULT_BUDGET_MS:
        parts += ["--budget-ms", f"{args.budget_ms:g}"]
    if args.mem_cap_gib != 8.0:
        parts += ["--mem-cap-gib", f"{args.mem_cap_gib:g}"]
    return shlex.join(parts + ["--out", args.out])


# ---------------------------------------------------------------------------------------------- models


def default_config():
    """The shipped default model's config (its JSON), or the library default when none is shipped."""
    from ..model import DEFAULT_WEIGHTS, ModelConfig
    from ..model.checkpoint import read_info

    if DEFAULT_WEIGHTS.exists():
        return read_info(DEFAULT_WEIGHTS)["config"]
    return ModelConfig()


def arch_config(base, backend, **changes):
    """base config with a backend (gqa: n_kv_heads = n_heads / cells.GQA_GROUP) and other field changes."""
    fields = cells.backend_fields(backend, base.n_heads)
    if backend != "gqa":
        fields["n_kv_heads"] = base.n_heads
    return base.replace(**fields, **changes)


def tokens_config(base, backend, tokens):
    """base with a backend and `tokens` tokens into the backbone: the widest power-of-two pool stride that
    still gives >= tokens, then token dropout down to it (the base's mode; gumbel when it has none)."""
    if not 1 <= tokens <= base.nfft:
        raise ValueError(f"token count {tokens} must be in 1..{base.nfft} (one token per bin at most)")
    stride = 1
    while base.nfft % (2 * stride) == 0 and base.nfft // (2 * stride) >= tokens:
        stride *= 2
    total = base.nfft // stride
    if total == tokens:
        cfg = arch_config(base, backend, pool_stride=stride, dropout_mode="none", drop_ratio=0.0)
    else:
        mode = "gumbel" if base.dropout_mode == "none" else base.dropout_mode
        cfg = arch_config(base, backend, pool_stride=stride, dropout_mode=mode, drop_ratio=1.0 - tokens / total)
    assert cfg.n_kept == tokens, (cfg.n_kept, tokens)
    return cfg


def build(cfg, device, seed=0):
    from ..model import SpectrumModel

    return SpectrumModel.from_config(cfg, seed=seed, device=device).net


def forward_fn(net, x, band, device):
    """A zero-argument batch forward pass under inference_mode (synchronised on CUDA)."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    bt = torch.from_numpy(np.asarray(band, dtype=np.int64)).to(device)

    def run():
        with torch.inference_mode():
            net(xt, bt)
        if device == "cuda":
            torch.cuda.synchronize()
    return run


def backends_for(device):
    out = list(BACKENDS)
    if device == "cuda":
        try:
            import flash_attn  # noqa: F401

            out.append("flash")
        except ImportError:
            pass
    return out


def sample_spectra(n, nfft, seed=0):
    """n synthetic spectra (dB) from the generator, tiled when nfft is larger than the generator's."""
    from .. import synth

    rng = np.random.default_rng(seed)
    rows = synth.make_batch(rng, batch_size=min(n, 64), nfft=min(nfft, 4096), anomaly_fraction=0.5).spectra
    rows = np.tile(rows, (-(-n // len(rows)), -(-nfft // rows.shape[1])))
    return np.ascontiguousarray(rows[:n, :nfft], dtype=np.float32)


# -------------------------------------------------------------------------------------------- sections


def run_latency(s, device, base):
    from ..model import REFERENCE

    x = sample_spectra(1, base.nfft)
    band = np.zeros(1, np.int64)
    archs = [("default", base, s["warmup"], s["iters"]),
             (REFERENCE_NAME, base.replace(**REFERENCE), s["ref_warmup"], s["ref_iters"])]
    rows = []
    backends = backends_for(device)
    for name, arch, warmup, iters in tqdm(archs, desc="latency", unit="model", leave=False):
        points = [(b, t, tokens_config(arch, b, t)) for b in backends for t in s["tokens"]]
        fns = [forward_fn(build(cfg, device), x, band, device) for _, _, cfg in points]
        samples = stats.round_robin_ms(fns, warmup, iters)
        for (backend, tokens, cfg), acc in zip(points, samples):
            rows.append({"model": name, "backend": backend, "tokens": tokens, "warmup": warmup, "iters": iters,
                         "d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
                         "n_kv_heads": cfg.n_kv_heads, **stats.percentiles(acc)})
        del fns
    notes = {} if "flash" in backends else {"flash": FLASH_NOTE}
    return {"rows": rows, "backends": backends, "notes": notes, "predict": predict_latency(s, device, x),
            "what": "network forward pass (tokenizer -> blocks -> heads), batch 1, torch eager, inference_mode, "
                    "random weights of each architecture (weights do not change the work done); all points of a "
                    "model timed round robin in chunks of iterations/10"}


def predict_latency(s, device, x):
    """The shipped model's whole `predict` (checks, forward, detections) at batch 1: what a block sees."""
    from ..model import DEFAULT_WEIGHTS, load_model

    if not DEFAULT_WEIGHTS.exists():
        return None
    model = load_model(device=device)
    t = stats.percentiles(stats.time_ms(lambda: model.predict(x, rx_freq=433.92e6), s["warmup"], s["iters"]))
    cfg = model.config
    return {"backend": cfg.backend, "tokens": cfg.n_kept, "trained": model.trained, "warmup": s["warmup"],
            "iters": s["iters"], **t}


def cell_variants(sections, seeds):
    """[(variant, seed)] needed by the chosen cell sections, each once."""
    want = []
    if "compression" in sections:
        want += [(v, sd) for v in compression_variants() for sd in range(seeds)]
    if "rope" in sections:
        want += [(cells.variant(rope=r), sd) for r in cells.ROPES for sd in range(seeds)]
    if "norm" in sections:
        want += [(cells.variant(norm=n), sd) for n in ("rmsnorm", "layernorm") for sd in range(seeds)]
    if "factorial" in sections:
        want += [(v, 0) for v in factorial_variants()]
    seen, out = set(), []
    for v, sd in want:
        if (v["name"], sd) not in seen:
            seen.add((v["name"], sd))
            out.append((v, sd))
    return out


def compression_variants():
    return [cells.variant(**cells.DROPOUTS["none"])] + [
        cells.variant(dropout_mode=m, drop_ratio=r) for r in (0.25, 0.5) for m in ("fixed", "gumbel")]


def factorial_variants():
    return [cells.variant(rope=r, backend=b, **cells.DROPOUTS[d])
            for r in cells.ROPES for d in cells.DROPOUTS for b in cells.FACTORIAL_BACKENDS]


def run_cells(s, sections):
    import torch

    data = cells.make_data(0, s["train_batches"], s["batch"], s["n_val"], s["n_test"])
    results, nets = [], {}
    for v, seed in tqdm(cell_variants(sections, s["seeds"]), desc="training cells", unit="cell", leave=False):
        res, net = cells.train_cell(v, data, s["steps"], seed, model_base=CELL_MODEL, threads=torch.get_num_threads())
        results.append(res)
        if seed == 0:
            nets[v["name"]] = net
    budget = {"steps": s["steps"], "batch": s["batch"], "seeds": s["seeds"], "model": CELL_MODEL, "lr": 1e-3,
              "data": data.description,
              "total_train_s": round(sum(r["train_s"] for r in results), 1)}
    return data, results, nets, budget


def _agg(results, name, keys=("accuracy", "anomaly_f1", "anomaly_best_f1", "anomaly_auroc")):
    rs = [r for r in results if r["name"] == name]
    out = {"name": name, "seeds": [r["seed"] for r in rs], "variant": rs[0]["variant"] if rs else None}
    for k in keys:
        out[k] = stats.mean_sd([r[k] for r in rs])
    if rs:
        band_names = rs[0]["accuracy_by_band"]
        out["accuracy_by_band"] = {b: stats.mean_sd([r["accuracy_by_band"][b]["accuracy"] for r in rs])
                                   for b in band_names}
        out["band_counts"] = {b: rs[0]["accuracy_by_band"][b]["count"] for b in band_names}
    return out


def shipped_default_scores(data, device):
    """The shipped default model on the cells' test set (None when no trained default is shipped)."""
    from ..model import DEFAULT_WEIGHTS, load_model
    from ..training import evaluate

    if not DEFAULT_WEIGHTS.exists():
        return {"trained": False, "note": "no shipped weights"}
    model = load_model(device=device)
    if not model.trained:
        return {"trained": False, "note": "shipped weights are the untrained placeholder: not scored"}
    pv = evaluate.predict_all(model, data.val["spectra"], data.val["center_freq"])
    pt = evaluate.predict_all(model, data.test["spectra"], data.test["center_freq"])
    res = cells.score_predictions(pt["label_index"], pt["anomaly_score"], data.test,
                                  cells.val_threshold(data.val, pv["anomaly_score"]))
    from ..training import metrics

    res["anomaly_f1_calibrated"] = metrics.f1_at(data.test["anomaly"] > 0.5, pt["anomaly_score"], model.threshold)["f1"]
    res["calibrated_threshold"] = model.threshold
    res.update(trained=True, config=model.config.to_dict(), rope_theta_by_band=cells.theta_by_band(model.net),
               training=model.metadata.get("training", {}).get("stopped"),
               training_steps=model.metadata.get("training", {}).get("steps"))
    return res


def main_effects(rows):
    """Factorial rows -> per factor, per level: mean ± sd of accuracy and anomaly F1 over the other cells."""
    factors = {"rope": lambda v: v["rope"], "dropout": lambda v: v["dropout_mode"], "backend": lambda v: v["backend"]}
    out = {}
    for factor, get in factors.items():
        levels = {}
        for r in rows:
            levels.setdefault(get(r["variant"]), []).append(r)
        out[factor] = {lvl: {"accuracy": stats.mean_sd([r["accuracy"] for r in rs]),
                             "anomaly_f1": stats.mean_sd([r["anomaly_f1"] for r in rs])} for lvl, rs in levels.items()}
        means = [v["accuracy"]["mean"] for v in out[factor].values()]
        out[factor]["_range_accuracy_pp"] = 100 * (max(means) - min(means))
    return out


def run_norm_latency(s, device, base):
    x = sample_spectra(1, base.nfft)
    cfgs = [arch_config(base, base.backend, norm=norm) for norm in ("rmsnorm", "layernorm")]
    fns = [forward_fn(build(cfg, device), x, np.zeros(1, np.int64), device) for cfg in cfgs]
    return [{"norm": cfg.norm, "backend": cfg.backend, "tokens": cfg.n_kept, "warmup": s["warmup"], "iters": s["iters"],
             **stats.percentiles(t)} for cfg, t in zip(cfgs, stats.round_robin_ms(fns, s["warmup"], s["iters"]))]


def run_throughput(s, device, base):
    rows = []
    xs = sample_spectra(max(s["tput_batches"]), base.nfft)
    backends = backends_for(device)
    nets = {b: build(arch_config(base, b), device) for b in backends}
    for b in tqdm(s["tput_batches"], desc="throughput", unit="batch size", leave=False):
        fns = [forward_fn(nets[backend], xs[:b], np.zeros(b, np.int64), device) for backend in backends]
        for backend, ms in zip(backends, stats.round_robin_ms(fns, 2, s["tput_iters"], chunks=2)):
            t = stats.percentiles(ms)
            rows.append({"backend": backend, "batch": b, "tokens": base.n_kept, "iters": s["tput_iters"],
                         "spectra_per_s_p50": 1e3 * b / t["p50"], "spectra_per_s_p95": 1e3 * b / t["p95"],
                         "call_ms": t})
    best = {}
    for r in rows:
        if r["spectra_per_s_p50"] > best.get(r["backend"], {}).get("spectra_per_s_p50", 0):
            best[r["backend"]] = {"batch": r["batch"], "spectra_per_s_p50": r["spectra_per_s_p50"]}
    return {"rows": rows, "best": best, "config": f"default architecture, {base.n_kept} kept tokens"}


def run_memory(s, device, base, cap_bytes):
    """Peak memory and one-call latency vs sequence length (no token dropout: T = nfft / pool_stride)."""
    from ..model import REFERENCE

    rows = []
    for backend in tqdm(backends_for(device), desc="memory", unit="backend", leave=False):
        over = False
        for i, t in enumerate(s["mem_tokens"]):
            cfg = arch_config(base, backend, nfft=t * base.pool_stride, dropout_mode="none", drop_ratio=0.0)
            row = {"backend": backend, "tokens": t, "kv_bytes": memory.kv_bytes(cfg, t),
                   "workspace_bytes": memory.workspace_bytes(cfg, t),
                   "predicted_peak_bytes": memory.predicted_peak_bytes(cfg, t)}
            if over or row["predicted_peak_bytes"] > cap_bytes:
                over = True
                row.update(status="exceeds cap", peak_bytes=None, latency_ms=None)
                rows.append(row)
                continue
            net = build(cfg, device)
            fn = forward_fn(net, sample_spectra(1, cfg.nfft), np.zeros(1, np.int64), device)
            if i == 0:
                fn()  # one warm call per backend: kernels, thread pool and allocator set up outside the measure
            peak, ms = memory.measure_peak_bytes(fn, device)
            row.update(status="ok", peak_bytes=peak, latency_ms=ms)
            if peak is not None and peak > cap_bytes:
                row["status"] = "exceeds cap"  # it ran, but above the cap; longer sequences are not tried
                over = True
            rows.append(row)
            del net, fn
    longest = max(s["mem_tokens"])
    kv = {}
    for name, arch in (("default", base), (REFERENCE_NAME, base.replace(**REFERENCE))):
        full, g = arch_config(arch, "sdpa"), arch_config(arch, "gqa")
        kv[name] = {"tokens": longest, "kv_bytes_mha": memory.kv_bytes(full, longest),
                    "kv_bytes_gqa": memory.kv_bytes(g, longest), "n_heads": full.n_heads,
                    "n_kv_heads_gqa": g.n_kv_heads,
                    "ratio": memory.kv_bytes(full, longest) / memory.kv_bytes(g, longest)}
    return {"rows": rows, "cap_bytes": cap_bytes, "kv_analytic": kv,
            "measure": "CPU: peak RSS added by one forward pass (VmHWM reset via /proc/self/clear_refs after "
                       "malloc_trim); CUDA: torch.cuda.max_memory_allocated",
            "config": "default architecture, batch 1, no token dropout (T = nfft / pool_stride)"}


def run_energy(s, device, base):
    cfg = arch_config(base, base.backend)
    fn = forward_fn(build(cfg, device), sample_spectra(1, base.nfft), np.zeros(1, np.int64), device)
    res = energy.measure(fn, 1, s["energy_calls"], device)
    res["config"] = f"default architecture, {cfg.backend}, batch 1, {cfg.n_kept} tokens, {s['energy_calls']} calls"
    return res


def run_selector(s, device, budget_ms, cell_results, nets, default_scores, latency):
    """Candidates: every trained cell (seed 0) timed here at batch 1, the shipped default, the reference."""
    from ..model import load_model

    x = sample_spectra(1, 1024)
    band = np.zeros(1, np.int64)
    cands = []
    acc = {r["name"]: r["accuracy"] for r in cell_results if r["seed"] == 0}
    for name, net in nets.items():
        net.to(device)  # cells train on the CPU
        t = stats.percentiles(stats.time_ms(forward_fn(net, x, band, device), s["sel_warmup"], s["sel_iters"]))
        cands.append({"name": f"cell: {name}", "accuracy": acc[name], "p50_ms": t["p50"], "p95_ms": t["p95"],
                      "evidence": f"small-budget cell ({s['steps']} steps); latency {s['sel_iters']} iters here"})
    if default_scores and default_scores.get("trained"):
        m = load_model(device=device)
        t = stats.percentiles(stats.time_ms(forward_fn(m.net, x, band, device), s["sel_warmup"], s["sel_iters"]))
        cands.append({"name": f"shipped default ({m.config.backend}, {m.config.n_kept} tokens)",
                      "accuracy": default_scores["accuracy"], "p50_ms": t["p50"], "p95_ms": t["p95"],
                      "evidence": "trained default model, scored on the cells' test set"})
    for r in (latency or {}).get("rows", []):
        if r["model"] == REFERENCE_NAME:
            cands.append({"name": f"{REFERENCE_NAME} {r['backend']} {r['tokens']} tokens", "accuracy": None,
                          "p50_ms": r["p50"], "p95_ms": r["p95"], "evidence": "untrained: no accuracy, latency only"})
    out = selector.select(cands, budget_ms)
    out["sweep"] = {f"{b:g}": (selector.select(cands, b)["choice"] or {}).get("name")
                    for b in sorted({0.5, 1.0, 2.0, 5.0, 30.0, budget_ms})}
    return out


# ------------------------------------------------------------------------------------------------ main


def main(args):
    import torch

    from . import plots

    if args.out is None:
        args.out = os.path.join("out", "bench_quick") if args.quick else "bench"
    if args.render_only:
        path = os.path.join(args.out, "results", "paper.json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"--render-only: {path} does not exist (run the suite into {args.out} first)")
        with open(path) as f:
            res = json.load(f)
        try:
            return write_outputs(res, args.out)
        except (KeyError, TypeError, AttributeError) as exc:  # valid JSON of another shape
            raise ValueError(f"--render-only: {path} is no complete results file of `specenc bench paper` "
                             f"({type(exc).__name__}: {exc})") from None
    s = _settings(args)
    from ..model.spectrum_model import resolve_device

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    os.makedirs(os.path.join(args.out, "results"), exist_ok=True)
    t_start = time.monotonic()
    info = machine.machine_info(device)
    from .model import gemm_gflops  # `specenc bench model`'s GEMM probe: a CPU figure to compare machines by

    info["gemm_gflops"] = gemm_gflops(reps=3 if args.quick else 30)
    base = default_config()
    res = {"command": command_line(args), "machine": info, "quick": bool(args.quick), "settings": s,
           "sections": list(s["sections"]), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    sec = s["sections"]
    bar = tqdm(total=len(sec), desc="bench paper", unit="section")

    section_t0 = [time.monotonic()]

    def done(name, value):
        res[name] = value
        res.setdefault("section_s", {})[name] = round(time.monotonic() - section_t0[0], 1)
        section_t0[0] = time.monotonic()
        with open(os.path.join(args.out, "results", f"{name}.json"), "w") as f:
            json.dump({"command": res["command"], "machine": info, name: value}, f, indent=1, default=_json)
        bar.update(1)

    if "latency" in sec:
        done("latency", run_latency(s, device, base))
    if any(x in sec for x in CELL_SECTIONS) or "selector" in sec:
        cell_secs = [x for x in CELL_SECTIONS if x in sec] or ["compression"]
        data, cell_results, nets, budget = run_cells(s, cell_secs)
        default_scores = shipped_default_scores(data, device)
        res["cells"] = {"budget": budget, "results": cell_results, "shipped_default": default_scores}
        if "compression" in sec:
            done("compression", {"rows": [_agg(cell_results, v["name"]) for v in compression_variants()],
                                 "shipped_default": default_scores, "budget": budget})
        if "rope" in sec:
            done("rope", {"rows": [_agg(cell_results, cells.variant(rope=r)["name"]) for r in cells.ROPES],
                          "shipped_default": default_scores, "budget": budget})
        if "factorial" in sec:
            names = {v["name"] for v in factorial_variants()}
            rows = [r for r in cell_results if r["seed"] == 0 and r["name"] in names]
            done("factorial", {"rows": rows, "main_effects": main_effects(rows), "budget": budget,
                               "levels": {"rope": list(cells.ROPES), "dropout": list(cells.DROPOUTS),
                                          "backend": list(cells.FACTORIAL_BACKENDS)}})
        if "norm" in sec:
            done("norm", {"rows": [_agg(cell_results, cells.variant(norm=n)["name"]) for n in ("rmsnorm", "layernorm")],
                          "latency": run_norm_latency(s, device, base), "budget": budget})
    else:
        nets, cell_results, default_scores = {}, [], None
    if "throughput" in sec:
        done("throughput", run_throughput(s, device, base))
    if "memory" in sec:
        done("memory", run_memory(s, device, base, int(args.mem_cap_gib * memory.GIB)))
    if "energy" in sec:
        done("energy", run_energy(s, device, base))
    if "selector" in sec:
        done("selector", run_selector(s, device, args.budget_ms, cell_results, nets, default_scores,
                                      res.get("latency")))
    bar.close()
    res["elapsed_s"] = round(time.monotonic() - t_start, 1)
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    res["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    res["uncommitted_package_files_end"] = machine.source_changes()
    res["plots"] = list(plots.FILES[k] for k in plots.FILES if k in res)
    with open(os.path.join(args.out, "results", "paper.json"), "w") as f:
        json.dump(res, f, indent=1, default=_json)
    return write_outputs(res, args.out)


def write_outputs(res, out):
    """Plots and REPORT.md from a results dict (a fresh run's, or results/paper.json with --render-only)."""
    from . import plots, report

    text = report.render(res)  # before anything is written: a results file of the wrong shape fails here
    plots.write_all(res, out)
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write(text)
    print(report.summary(res))
    print(f"wrote {os.path.join(out, 'REPORT.md')}, {len(res['plots'])} plot(s) and results/*.json "
          f"(run took {res['elapsed_s']:.0f} s)")
    return 0


def _json(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")
