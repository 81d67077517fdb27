"""PNG plots of the paper suite: latency vs tokens, accuracy vs compression, memory vs sequence length,
throughput vs batch. Each takes the results dict of `bench.paper` and writes one file (Agg canvas)."""

import os

FILES = {"latency": "latency_vs_tokens.png", "compression": "accuracy_vs_compression.png",
         "memory": "memory_vs_seqlen.png", "throughput": "throughput_vs_batch.png"}


def _subplots(rows=1, cols=1, figsize=None, squeeze=True):
    """A figure and its axes without pyplot, whose backend is the caller's (a notebook's) to choose."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _subtitle(res):
    m = res["machine"]
    return f"{m['cpu']}, {m['torch_threads']} thread(s), torch {m['torch']}, {m['device']}" + (
        "  [QUICK: figures meaningless]" if res.get("quick") else "")


def latency(res, path):
    rows = res["latency"]["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = _subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        for backend in res["latency"]["backends"]:
            pts = sorted((r["tokens"], r["p50"], r["p95"]) for r in rows
                         if r["model"] == model and r["backend"] == backend)
            if not pts:
                continue
            t, p50, p95 = zip(*pts)
            line, = ax.plot(t, p50, "o-", label=f"{backend} p50")
            ax.plot(t, p95, "--", color=line.get_color(), alpha=0.6, label=f"{backend} p95")
        n = next(r["iters"] for r in rows if r["model"] == model)
        ax.set(title=f"{model} (batch 1, {n} iterations)", xlabel="kept tokens", ylabel="latency (ms)")
        ax.set_xticks(sorted({r["tokens"] for r in rows}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle("Forward latency vs token count per attention backend\n" + _subtitle(res), fontsize=9)
    _save(fig, path)


def compression(res, path):
    rows = res["compression"]["rows"]
    fig, axes = _subplots(1, 2, figsize=(11, 5))
    for ax, key, label in ((axes[0], "accuracy", "family accuracy (%)"), (axes[1], "anomaly_f1", "anomaly F1 (%)")):
        for mode, marker in (("fixed", "s-"), ("gumbel", "o-")):
            pts = []
            for r in rows:
                v = r["variant"]
                if v["dropout_mode"] in (mode, "none"):
                    pts.append((v["drop_ratio"], 100 * r[key]["mean"], 100 * r[key]["sd"]))
            pts.sort()
            if pts:
                x, y, e = zip(*pts)
                ax.errorbar(x, y, yerr=e, fmt=marker, capsize=3, label=f"{mode} (r=0: no dropout)")
        d = res["compression"].get("shipped_default") or {}
        if d.get("trained") and key in d:  # at its own drop ratio (the shipped network keeps every token)
            mode, ratio = d["config"]["dropout_mode"], d["config"]["drop_ratio"]
            ax.plot([ratio], [100 * d[key]], "k*", ms=12,
                    label=f"shipped default (converged, {'no dropout' if mode == 'none' else f'r={ratio:g} {mode}'})")
        if key == "accuracy":
            ax.plot([0.25], [91.4], "rx", ms=10, label="paper: 91.4 % (its data)")
        ax.set(xlabel="token drop ratio r", ylabel=label, xticks=[0, 0.25, 0.5])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    b = res["compression"]["budget"]
    fig.suptitle(f"Accuracy vs compression: cells of {b['steps']} steps, mean ± sd over {b['seeds']} seed(s)\n"
                 + _subtitle(res), fontsize=9)
    _save(fig, path)


def memory(res, path):
    m = res["memory"]
    fig, axes = _subplots(1, 2, figsize=(11, 4.2))
    cap = m["cap_bytes"] / 2 ** 30
    for backend in dict.fromkeys(r["backend"] for r in m["rows"]):
        rs = [r for r in m["rows"] if r["backend"] == backend]
        ok = [r for r in rs if r["peak_bytes"] is not None]
        if ok:
            line, = axes[0].plot([r["tokens"] for r in ok], [r["peak_bytes"] / 2 ** 20 for r in ok], "o-",
                                 label=backend)
            axes[1].plot([r["tokens"] for r in ok], [r["latency_ms"] for r in ok], "o-", color=line.get_color(),
                         label=backend)
            over = [r for r in rs if r["status"] == "exceeds cap" and r["peak_bytes"] is None]
            if over:
                axes[0].plot([r["tokens"] for r in over], [cap * 1024] * len(over), "x", color=line.get_color(),
                             ms=10, label=f"{backend}: exceeds {cap:g} GiB cap (not run)")
    axes[0].axhline(cap * 1024, color="red", lw=0.8, ls=":")
    axes[0].set(xscale="log", yscale="log", xlabel="sequence length (tokens)", ylabel="peak memory added (MiB)",
                title="peak memory of one forward pass (batch 1)")
    axes[1].set(xscale="log", yscale="log", xlabel="sequence length (tokens)", ylabel="latency of that call (ms)",
                title="latency of the same call")
    toks = sorted({r["tokens"] for r in m["rows"]})
    for ax in axes:
        ax.set_xticks(toks, [f"{t // 1024}k" if t >= 1024 else str(t) for t in toks])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Memory vs sequence length (default architecture, no token dropout)\n" + _subtitle(res), fontsize=9)
    _save(fig, path)


def throughput(res, path):
    rows = res["throughput"]["rows"]
    fig, ax = _subplots(figsize=(6.5, 4.2))
    for backend in dict.fromkeys(r["backend"] for r in rows):
        rs = sorted((r["batch"], r["spectra_per_s_p50"], r["spectra_per_s_p95"])
                    for r in rows if r["backend"] == backend)
        b, p50, p95 = zip(*rs)
        line, = ax.plot(b, p50, "o-", label=f"{backend} (p50 call time)")
        ax.plot(b, p95, "--", color=line.get_color(), alpha=0.6, label=f"{backend} (p95 call time)")
    ax.set(xscale="log", xlabel="batch size", ylabel="spectra / s",
           title=f"Throughput vs batch ({res['throughput']['config']})")
    batches = sorted({r["batch"] for r in rows})
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(_subtitle(res), fontsize=8, y=0.99)
    _save(fig, path)


def write_all(res, out_dir):
    """Every plot whose section ran -> list of file names written in out_dir."""
    written = []
    for name, fn in (("latency", latency), ("compression", compression), ("memory", memory),
                     ("throughput", throughput)):
        if name in res:
            fn(res, os.path.join(out_dir, FILES[name]))
            written.append(FILES[name])
    return written
