"""`specenc bench model`: SpectrumEncoder latency/throughput per backend and token count, default model
beside the seed-size reference (d_model 512, 6 layers, 8 heads), plus the backbone's share of the
machine's measured fp32 GEMM rate.

Latency: whole `predict` (tokenize -> heads -> NumPy results) at batch 1, p50/p95 over --iters after
--warmup calls (fewer for slow variants, capped by --budget-s; the count used is printed).
Throughput: spectra/s of `predict` at the best of --batches.
"""

import json
import logging
import time

import numpy as np

log = logging.getLogger(__name__)


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true", help="10 warm-up + 50 iterations, fewer variants' batches")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up predict calls per variant (100)")
    parser.add_argument("--iters", type=int, default=1000, help="timed predict calls per variant (1000)")
    parser.add_argument("--budget-s", type=float, default=3.0, help="max seconds of timed calls per variant (3)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    parser.add_argument("--tokens", default="64,128,192,256", help="kept-token counts to sweep")
    parser.add_argument("--backends", default="", help="comma list (default: every backend usable here)")
    parser.add_argument("--batches", default="16,32,64,128,256", help="batch sizes tried for throughput")
    parser.add_argument("--no-reference", action="store_true", help="skip the seed-size reference model")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")


def gemm_gflops(n=512, reps=30):
    """Measured fp32 torch.matmul rate (GFLOP/s) of an n x n x n product, best of 3 runs."""
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(5):
        a @ b
    best = float("inf")
    for _ in range(3):
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


def bench_variant(cfg, args, batches):
    import torch
    from ..model import SpectrumModel
    model = SpectrumModel.from_config(cfg, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(-100, 3, (max(batches), cfg.nfft)).astype(np.float32)
    x[:, 300:360] += 30
    lat = _time(lambda: model.predict(x[:1], rx_freq=2.44e9), args.warmup, args.iters, args.budget_s) * 1e3
    best_rate, best_batch = 0.0, 0
    for b in batches:
        t = _time(lambda: model.predict(x[:b], rx_freq=2.44e9), 2, 20, args.budget_s / len(batches))
        rate = b / np.median(t)
        if rate > best_rate:
            best_rate, best_batch = rate, b
    # backbone alone (blocks on already-embedded kept tokens), at the best batch
    xb = torch.randn(best_batch, cfg.n_kept, cfg.d_model)
    rope = model.net.rope(torch.arange(cfg.n_kept, dtype=torch.float32).expand(best_batch, -1),
                          torch.zeros(best_batch, dtype=torch.long))

    def backbone():
        with torch.inference_mode():
            h = xb
            for blk in model.net.blocks:
                h = blk(h, rope)
    tb = np.median(_time(backbone, 2, 20, args.budget_s / 2))
    return {"p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)), "iters": len(lat),
            "throughput": float(best_rate), "best_batch": best_batch,
            "backbone_gflops": backbone_flops(cfg) * best_batch / tb / 1e9}


def main(args):
    import torch
    from ..model import REFERENCE, ModelConfig, available_backends
    if args.quick:
        args.warmup, args.iters, args.budget_s = min(args.warmup, 10), min(args.iters, 50), min(args.budget_s, 0.5)
    torch.set_num_threads(args.threads)
    tokens = [int(t) for t in args.tokens.split(",") if t]
    batches = [int(b) for b in args.batches.split(",") if b]
    backends = [b for b in (args.backends.split(",") if args.backends else available_backends())
                if b != "flash" or torch.cuda.is_available()]
    base = ModelConfig()
    for t in tokens:
        if not 1 <= t <= base.n_tokens:
            raise ValueError(f"--tokens value {t} must be in [1, {base.n_tokens}]")
    gemm = gemm_gflops()
    print(f"threads {args.threads}; fp32 GEMM 512^3: {gemm:.1f} GFLOP/s; warm-up {args.warmup}, "
          f"iters up to {args.iters} (budget {args.budget_s} s/variant)")
    models = [("default", base)] + ([] if args.no_reference else [("reference", base.replace(**REFERENCE))])
    rows = []
    print(f"{'model':9} {'backend':7} {'tokens':>6} {'p50 ms':>8} {'p95 ms':>8} {'iters':>5} "
          f"{'spectra/s':>9} {'batch':>5} {'backbone GF/s':>13} {'% GEMM':>6}")
    for name, cfg0 in models:
        for t in tokens:
            for backend in backends:
                if backend == "gqa" and cfg0.n_heads == cfg0.n_kv_heads:
                    cfg = cfg0.replace(backend=backend, n_kv_heads=max(1, cfg0.n_heads // 4))
                else:
                    cfg = cfg0.replace(backend=backend)
                cfg = cfg.replace(drop_ratio=1.0 - t / cfg.n_tokens)
                r = bench_variant(cfg, args, batches)
                r.update(model=name, backend=backend, tokens=cfg.n_kept, gemm_share=r["backbone_gflops"] / gemm,
                         config=cfg.to_dict())
                rows.append(r)
                print(f"{name:9} {backend:7} {cfg.n_kept:6d} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['iters']:5d} "
                      f"{r['throughput']:9.0f} {r['best_batch']:5d} {r['backbone_gflops']:13.1f} "
                      f"{100 * r['gemm_share']:5.0f}%", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gemm_gflops": gemm, "threads": args.threads, "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")
    return 0
