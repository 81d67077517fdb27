"""Pictures of the generator's output: a waterfall PNG of IQ with truth boxes (emitters white, anomalies red with
their kind), and a grid of training rows with their per-bin labels (docs/synth.md)."""

import numpy as np

from .. import dsp

MAX_ROWS = 800  # spectra drawn; longer recordings average more frames per row


def plot_waterfall(iq, sample_rate, center_freq, annotations, out_png, nfft=1024, title=""):
    """Render a waterfall of `iq` with the annotation boxes to `out_png`; returns the path."""
    from matplotlib.figure import Figure  # not pyplot: its backend is the caller's (a notebook's) to choose
    from matplotlib.patches import Rectangle

    hop = dsp.hop_size(nfft, 0.5)
    frames = dsp.num_spectra(len(iq), nfft, 0.5, 1)
    if frames < 1:
        raise ValueError(f"need at least nfft={nfft} samples to plot, got {len(iq)}")
    average = max(1, int(np.ceil(frames / MAX_ROWS)))
    spec = dsp.power_spectrum(iq, nfft, 0.5, "hann", average)  # (rows, nfft)
    seconds = len(spec) * average * hop / sample_rate
    f0 = (center_freq - sample_rate / 2) / 1e6
    f1 = (center_freq + sample_rate / 2) / 1e6
    fig = Figure(figsize=(11, 7))
    ax = fig.subplots()
    lo, hi = np.percentile(spec, 2), spec.max()
    ax.imshow(spec, aspect="auto", origin="lower", cmap="viridis", vmin=lo, vmax=hi,
              extent=(f0, f1, 0, seconds), interpolation="nearest")
    for ann in annotations:
        if "core:freq_lower_edge" not in ann:
            continue
        t0 = ann["core:sample_start"] / sample_rate
        dt = ann.get("core:sample_count", len(iq) - ann["core:sample_start"]) / sample_rate
        fl, fh = ann["core:freq_lower_edge"] / 1e6, ann["core:freq_upper_edge"] / 1e6
        anomaly = ann.get("core:label") == "anomaly"
        ax.add_patch(Rectangle((fl, t0), fh - fl, dt, fill=False, lw=1.6 if anomaly else 0.6,
                               ec="red" if anomaly else "white", ls="-" if anomaly else "--"))
        if anomaly:
            ax.text(fl, t0 + dt, ann.get("specenc:kind", "anomaly"), color="red", fontsize=8, va="bottom")
    ax.set_xlabel("frequency (MHz)")
    ax.set_ylabel("time (s)")
    ax.set_title(title or "waterfall (dBFS/bin)", parse_math=False)  # a file name may hold $
    fig.colorbar(ax.images[0], ax=ax, label="dBFS/bin")
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    return out_png


def plot_batch(batch, out_png, rows=4, cols=4):
    """Grid of a Batch's spectra with their labels: family shading per bin, anomaly bins in red."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from .. import bands, labels

    fig = Figure(figsize=(4.2 * cols, 2.6 * rows))
    axs = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axs.flat):
        if i >= len(batch):
            ax.axis("off")
            continue
        s = batch.spectra[i]
        x = np.arange(len(s))
        lo, hi = float(s.min()), float(s.max()) + 1
        for f in range(1, len(labels.FAMILIES)):
            m = batch.bin_family[i] == f
            if m.any():
                ax.fill_between(x, lo, hi, where=m, color=colormaps["tab10"](f), alpha=0.25, lw=0,
                                label=labels.FAMILIES[f])
        if batch.anomaly[i]:
            ax.fill_between(x, lo, lo + 0.08 * (hi - lo), where=batch.anomaly_bins[i], color="red", lw=0)
        ax.plot(x, s, "k", lw=0.5)
        kind = labels.ANOMALY_KINDS[batch.anomaly_kind[i]] if batch.anomaly_kind[i] >= 0 else "normal"
        ax.set_title(f"{bands.BANDS[batch.band[i]]} | {labels.FAMILIES[batch.family[i]]} "
                     f"{batch.snr_db[i]:.0f} dB | {kind}", fontsize=8)
        ax.tick_params(labelsize=6)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=5, loc="upper right")
    fig.tight_layout()
    fig.savefig(out_png, dpi=70)
    return out_png
