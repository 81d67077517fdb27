"""`specenc bench model`: SpectrumEncoder latency/throughput per backend and token count, default model
beside the seed-size reference (d_model 512, 6 layers, 8 heads), plus the backbone's share of the
machine's measured fp32 GEMM rate.

Latency: whole `predict` (tokenize -> heads -> NumPy results) at batch 1, p50/p95 over --iters after
--warmup calls (fewer for slow variants, capped by --budget-s; the count used is printed).
Throughput: spectra/s of `predict` at the best of --batches.
The seed-size reference costs ~130x the default per spectrum, so it runs with its own (smaller) warm-up,
iteration count and batches (--ref-*); the counts used are printed and saved.
"""

import json
import logging
import math
import os
import time

import numpy as np

from ..folders import make_parent

log = logging.getLogger(__name__)

# Spinning OpenMP workers on busy shared cores slow the model severalfold (as the encoder block and bench paper).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
TARGETS = {"p50_ms": 2.0, "throughput": 2000.0, "gemm_share": 0.5}  # issue 4, default model, 2 threads
PAIRED_ROUNDS = 9  # GEMM probe / backbone turns behind each variant's share
TOKENS, BATCHES = "64,128,192,256", "16,32,64,128,256"  # the full sweep


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true",
                        help="a check of about a minute, not the full sweep (~10 min on 2 cores): the shipped model's "
                             "128 tokens and batch 64 (unless --tokens/--batches say otherwise), no reference model, at "
                             "most 10 warm-up + 50 iterations and 0.5 s per variant")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up predict calls per variant (100)")
    parser.add_argument("--iters", type=int, default=1000, help="timed predict calls per variant (1000)")
    parser.add_argument("--budget-s", type=float, default=3.0, help="max seconds of timed calls per variant (3)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    parser.add_argument("--tokens", default=TOKENS,
                        help="token counts into the backbone to sweep: each the widest power-of-two tokens that give "
                             "at least that many, then token dropout down to it (256: 4-bin tokens; 192: 4-bin "
                             "tokens, a quarter dropped)")
    parser.add_argument("--backends", default="", help="comma list (default: every backend usable here)")
    parser.add_argument("--batches", default=BATCHES, help="batch sizes tried for throughput")
    parser.add_argument("--no-reference", action="store_true", help="skip the seed-size reference model")
    parser.add_argument("--ref-warmup", type=int, default=10, help="reference model: warm-up predict calls (10)")
    parser.add_argument("--ref-iters", type=int, default=50, help="reference model: timed predict calls (50)")
    parser.add_argument("--ref-batches", default="4", help="reference model: batch sizes for throughput (4)")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")


def gemm_gflops(n=512, reps=30, runs=3):
    """Measured fp32 torch.matmul rate (GFLOP/s) of an n x n x n product, best of `runs` runs."""
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(5):
        a @ b
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - t) / reps)
    return 2 * n ** 3 / best / 1e9


def backbone_flops(cfg):
    """Analytic FLOPs of the transformer blocks for one spectrum (K kept tokens)."""
    k, d, hd = cfg.n_kept, cfg.d_model, cfg.head_dim
    hidden = int(d * cfg.mlp_ratio)
    per_token = 2 * d * (cfg.n_heads + 2 * cfg.n_kv_heads) * hd + 2 * d * d + 4 * d * hidden
    attention = 4 * k * d if cfg.backend != "latent" else 8 * cfg.n_latents * d
    return cfg.n_layers * k * (per_token + attention)


def network_flops(cfg):
    """Analytic FLOPs of the whole forward pass for one spectrum: tokenizer embedding, dropout scorer,
    backbone and the heads predict reads (matmuls only; elementwise work and softmax exps not counted)."""
    t, k, d, s = cfg.n_tokens, cfg.n_kept, cfg.d_model, cfg.pool_stride
    h = cfg.anomaly_hidden
    width = (2 * cfg.token_context + 1) * s + 1  # a token's window, its neighbours' and its energy
    embed = t * 2 * width * d + (t * 2 * d if cfg.dropout_mode == "gumbel" else 0)  # + the dropout scorer
    per_token = cfg.n_families + 1 + (1 if cfg.family_pool == "attention" else 0) + (s if cfg.bin_edges else 0)
    heads = 2 * k * d * per_token + 2 * d * (cfg.n_families + cfg.n_kinds + h) + 2 * h * h + 2 * h
    return embed + backbone_flops(cfg) + heads


def _time(fn, warmup, iters, budget_s):
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    fn()
    n = max(5, min(iters, int(budget_s / max(time.perf_counter() - t, 1e-6))))
    out = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out


def bench_variant(cfg, args, batches, warmup, iters):
    import torch
    from ..model import SpectrumModel
    from ..model.spectrum_model import cpu_chunks, map_row_chunks, trace_frozen
    model = SpectrumModel.from_config(cfg, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(-100, 3, (max(batches), cfg.nfft)).astype(np.float32)
    x[:, 300:360] += 30
    lat = _time(lambda: model.predict(x[:1], rx_freq=2.44e9), warmup, iters, args.budget_s) * 1e3
    best_rate, best_batch = 0.0, 0
    for b in batches:
        t = _time(lambda: model.predict(x[:b], rx_freq=2.44e9), 2, 20, args.budget_s / len(batches))
        rate = b / np.median(t)
        if rate > best_rate:
            best_rate, best_batch = rate, b
    # backbone alone (blocks on already-embedded kept tokens, with the RoPE tables they need), at the best batch,
    # in the row chunks, on the row workers and as the TorchScript trace that predict uses
    workers, step = cpu_chunks(best_batch, args.threads)
    n_chunks = -(-best_batch // step)

    class Backbone(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, positions, band):
            rope = self.net.rope(positions, band)
            for blk in self.net.blocks:
                x = blk(x, rope)
            return x

    inputs = (torch.randn(step, cfg.n_kept, cfg.d_model),
              torch.arange(cfg.n_kept, dtype=torch.float32).expand(step, -1), torch.zeros(step, dtype=torch.long))
    backbone_graph = trace_frozen(Backbone(model.net), inputs)

    def blocks(_):
        with torch.inference_mode():
            backbone_graph(*inputs)

    # The GEMM rate of a shared machine drifts by tens of percent within seconds, so the probe and the backbone
    # are timed in turns and each round's share compares the two under the same load.
    rounds = []
    for _ in range(PAIRED_ROUNDS):
        g = gemm_gflops(reps=5, runs=1)
        tb = np.median(_time(lambda: map_row_chunks(blocks, range(n_chunks), workers), 1, 3, args.budget_s / 8))
        rounds.append((g, backbone_flops(cfg) * step * n_chunks / tb / 1e9))
    gemm, backbone = np.array(rounds).T
    band = np.zeros(best_batch, np.int64)
    tn = np.median(_time(lambda: model.forward_rows(x[:best_batch], band), 2, 20, args.budget_s / 2))
    return {"p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)), "iters": len(lat),
            "throughput": float(best_rate), "best_batch": best_batch, "network_throughput": float(best_batch / tn),
            "backbone_gflops": float(np.median(backbone)), "gemm_gflops": float(np.median(gemm)),
            "gemm_share": float(np.median(backbone / gemm)),
            "network_gflops": network_flops(cfg) * best_batch / tn / 1e9}


def target_summary(row, gemm):
    """The three issue-4 figures for the default model, each against its target, plus the FLOP ceiling."""
    from ..model import ModelConfig
    flops = network_flops(ModelConfig.from_dict(row["config"]))
    ceiling = gemm * 1e9 / flops
    lines = [f"targets (default model, {row['backend']}, {row['tokens']} tokens, {row['threads']} threads):",
             f"  p50 batch-1 whole predict   {row['p50_ms']:8.2f} ms        target <= {TARGETS['p50_ms']:.0f} ms   "
             f"{'MET' if row['p50_ms'] <= TARGETS['p50_ms'] else 'MISSED'}",
             f"  best-batch throughput       {row['throughput']:8.0f} spectra/s target >= {TARGETS['throughput']:.0f}"
             f"      {'MET' if row['throughput'] >= TARGETS['throughput'] else 'MISSED'} (batch {row['best_batch']}; "
             f"network alone {row['network_throughput']:.0f}/s)",
             f"  backbone share of GEMM rate {100 * row['gemm_share']:8.0f} %         target >= "
             f"{100 * TARGETS['gemm_share']:.0f} %    "
             f"{'MET' if row['gemm_share'] >= TARGETS['gemm_share'] else 'MISSED'} "
             f"(median of {PAIRED_ROUNDS} rounds, each the backbone against a GEMM probe just before it; "
             f"medians {row['backbone_gflops']:.1f} and {gemm:.1f} GFLOP/s)",
             f"  FLOP ceiling: {flops / 1e6:.1f} MFLOP/spectrum (matmuls) at the full GEMM rate = {ceiling:.0f} "
             f"spectra/s; {TARGETS['throughput']:.0f}/s needs {100 * TARGETS['throughput'] / ceiling:.0f} % of it "
             "sustained over the whole predict"]
    return lines, {"network_mflops": flops / 1e6, "flop_ceiling_spectra_s": ceiling}



def _counts(flag, text):
    """A comma-separated list of counts >= 1 -> ints; ValueError naming the flag."""
    try:
        counts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise ValueError(f"{flag} {text!r} must list counts >= 1, separated by commas")
    return counts


def main(args):
    import torch
    from ..model import REFERENCE, available_backends
    from .paper import default_config, tokens_config
    if args.quick:  # each variant still runs its GEMM-share rounds: the sweep's 32 variants took 9 min
        args.warmup, args.iters, args.budget_s = min(args.warmup, 10), min(args.iters, 50), min(args.budget_s, 0.5)
        args.tokens = "128" if args.tokens == TOKENS else args.tokens
        args.batches = "64" if args.batches == BATCHES else args.batches
        args.no_reference = True
    if args.threads < 1:
        raise ValueError(f"--threads={args.threads} must be >= 1")
    # Every flag before the first measurement: the sweep takes minutes, and a mistake found after it lost it.
    for flag, value in (("--warmup", args.warmup), ("--iters", args.iters), ("--budget-s", args.budget_s)):
        if not 0 <= value < math.inf:
            raise ValueError(f"{flag}={value} must be a finite number >= 0")
    tokens, batches = _counts("--tokens", args.tokens), _counts("--batches", args.batches)
    ref_batches = [] if args.no_reference else _counts("--ref-batches", args.ref_batches)
    if args.json and (os.path.isdir(args.json) or args.json.endswith(os.sep)):
        raise ValueError(f"--json {args.json} is a folder; give a file in it")
    if args.json:
        make_parent(args.json)  # made as every other output's folder is
    backends = args.backends.split(",") if args.backends else available_backends()
    unknown = [b for b in backends if b not in available_backends()]
    if unknown:
        raise ValueError(f"--backends {','.join(unknown)}: unknown; choose from {', '.join(available_backends())}")
    if "flash" in backends and not torch.cuda.is_available():
        if args.backends:
            raise ValueError("--backends flash needs CUDA (flash-attn runs on a GPU only); leave it out here")
        backends = [b for b in backends if b != "flash"]
        print("flash left out: flash-attn runs on CUDA only")
    torch.set_num_threads(args.threads)
    base = default_config()
    for t in tokens:
        tokens_config(base, base.backend, t)  # ValueError for a count the model cannot take
    gemm = gemm_gflops()
    print(f"threads {args.threads}; fp32 GEMM 512^3: {gemm:.1f} GFLOP/s; warm-up {args.warmup}, "
          f"iters up to {args.iters} (budget {args.budget_s} s/variant)")
    models = [("default", base, args.warmup, args.iters, batches)]
    if not args.no_reference:
        models.append(("reference", base.replace(**REFERENCE), min(args.warmup, args.ref_warmup),
                       min(args.iters, args.ref_iters), ref_batches))
        print(f"reference model: warm-up {models[-1][2]}, iters up to {models[-1][3]}, batches {ref_batches} "
              "(~130x the default's FLOPs per spectrum)")
    rows = []
    print(f"{'model':9} {'backend':7} {'tokens':>6} {'p50 ms':>8} {'p95 ms':>8} {'iters':>5} "
          f"{'spectra/s':>9} {'batch':>5} {'net/s':>7} {'backbone GF/s':>13} {'GEMM GF/s':>9} {'% GEMM':>6}")
    for name, cfg0, warmup, iters, model_batches in models:
        for t in tokens:
            for backend in backends:
                cfg = tokens_config(cfg0, backend, t)
                r = bench_variant(cfg, args, model_batches, warmup, iters)
                r.update(model=name, backend=backend, tokens=cfg.n_kept, threads=args.threads, warmup=warmup,
                         config=cfg.to_dict())
                rows.append(r)
                print(f"{name:9} {backend:7} {cfg.n_kept:6d} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['iters']:5d} "
                      f"{r['throughput']:9.0f} {r['best_batch']:5d} {r['network_throughput']:7.0f} "
                      f"{r['backbone_gflops']:13.1f} {r['gemm_gflops']:9.1f} {100 * r['gemm_share']:5.0f}%", flush=True)
    # The figures: the shipped configuration (its backend and token count) when it was measured.
    shipped = [r for r in rows if r["model"] == "default" and r["backend"] == base.backend
               and r["tokens"] == base.n_kept] or [r for r in rows if r["model"] == "default"]
    lines, summary = target_summary(shipped[0], shipped[0]["gemm_gflops"])
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gemm_gflops": gemm, "threads": args.threads,
                       "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
                       "torch_version": torch.__version__, "targets": TARGETS,
                       "summary": {**summary, **{k: shipped[0][k] for k in ("backend", "tokens", "p50_ms", "p95_ms",
                                   "throughput", "best_batch", "network_throughput", "gemm_share", "gemm_gflops")}},
                       "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")
    return 0
