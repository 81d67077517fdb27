"""Waterfall PNG with emission tracks (boxes), alerts (markers) and, for generated scenes, truth anomalies."""

import numpy as np

MAX_BOXES = 300  # labelled boxes beyond this clutter the picture; the longest tracks are drawn


class MaxHold:
    """Waterfall rows from a stream of spectra: the max of each group of `decimation` spectra, groups
    continuing across `add` calls (a peak is never lost to decimation)."""

    def __init__(self, decimation=1):
        self.decimation = max(1, int(decimation))
        self._rows = []
        self._hold = None  # max over the open group
        self._held = 0  # spectra in the open group

    def add(self, spectra):
        i, n, d = 0, len(spectra), self.decimation
        if self._held:  # close the open group first
            take = min(d - self._held, n)
            self._hold = np.fmax(self._hold, np.fmax.reduce(spectra[:take], axis=0))
            self._held += take
            i = take
            if self._held == d:
                self._rows.append(self._hold)
                self._held = 0
        whole = (n - i) // d  # then all whole groups in one reduction
        if whole:
            groups = np.fmax.reduce(spectra[i:i + whole * d].reshape(whole, d, -1), axis=1)
            self._rows.extend(groups)
            i += whole * d
        if i < n:  # and open a group with the rest
            self._hold, self._held = np.fmax.reduce(spectra[i:], axis=0), n - i

    def rows(self):
        """(R, nfft) float32, the open group last."""
        return np.array(self._rows + ([self._hold] if self._held else []), np.float32)


def render(path, rows, seconds_per_row, center_freq, sample_rate, emissions=(), alerts=(), truth=(), title="",
           retunes=()):
    """Write the PNG.

    rows: (R, nfft) dB spectra, row r starting at r * seconds_per_row after the first IQ sample.
    emissions: detection dicts (sample_start/count, freq edges, center_freq, family, spectra);
    alerts: alert dicts (sample_start, freq edges, center_freq, kind, score);
    truth: truth-anomaly annotations (core:sample_start/count, core:freq_*_edge, kind).
    retunes: [(sample, Hz)] where the receiver retuned after sample 0 (sigmf_io.capture_changes); the frequency
    axis is then the offset from the tuned centre, each box drawn at its own tuning, a dashed line at each retune.
    """
    from matplotlib.figure import Figure  # not pyplot: its backend is the caller's (a notebook's) to choose
    from matplotlib.patches import Rectangle

    rows = np.asarray(rows, np.float32)
    to_mhz = 1e-6
    tunings = [(0, center_freq), *retunes]

    def tuned_at(sample):
        return [f for n, f in tunings if n <= sample][-1]

    def zero(item):  # the axis' zero for a box: 0 Hz, or with retunes the centre it was tuned to
        return item["center_freq"] if retunes else 0.0

    # Bin k is centred on centre - rate/2 + k * rate/nfft (dsp.bin_edges_hz, which places the boxes): the image's
    # columns start half a bin lower.
    half_bin = sample_rate / (2 * rows.shape[-1]) if rows.size else 0.0
    f0 = ((0.0 if retunes else center_freq) - sample_rate / 2 - half_bin) * to_mhz
    f1 = f0 + sample_rate * to_mhz
    t_end = len(rows) * seconds_per_row
    finite = rows[np.isfinite(rows)]
    vmin, vmax = (np.percentile(finite, [5, 99.9]) if finite.size else (-120, 0))
    fig = Figure(figsize=(11, 7), dpi=110)
    ax = fig.subplots()
    im = ax.imshow(rows, aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest",
                   extent=[f0, f1, t_end, 0])
    fig.colorbar(im, ax=ax, label="power (dBFS/bin)", pad=0.01)

    def seconds(sample):
        return sample / sample_rate

    for em in sorted(emissions, key=lambda e: -e.get("spectra", 1))[:MAX_BOXES]:
        t0, t1 = seconds(em["sample_start"]), seconds(em["sample_start"] + em["sample_count"])
        lo, hi = (em["freq_lower_edge"] - zero(em)) * to_mhz, (em["freq_upper_edge"] - zero(em)) * to_mhz
        ax.add_patch(Rectangle((lo, t0), hi - lo, t1 - t0, fill=False, edgecolor="white", linewidth=0.6, alpha=0.6))
        if t1 - t0 >= 0.03 * t_end:  # name the longer emissions only; short fragments would bury the picture
            ax.text(lo, t0, em["family"], color="white", fontsize=6, va="bottom")
    for ann in truth:
        t0 = seconds(ann["core:sample_start"])
        t1 = seconds(ann["core:sample_start"] + ann["core:sample_count"])
        tuned = tuned_at(ann["core:sample_start"])
        shift = tuned if retunes else 0.0
        lo = (ann.get("core:freq_lower_edge", tuned - sample_rate / 2) - shift) * to_mhz
        hi = (ann.get("core:freq_upper_edge", tuned + sample_rate / 2) - shift) * to_mhz
        ax.add_patch(Rectangle((lo, t0), hi - lo, t1 - t0, fill=False, edgecolor="orange", linestyle="--",
                               linewidth=1.2))
        ax.text(hi, t0, f"truth: {ann.get('kind', '?')}", color="orange", fontsize=7, va="top", ha="right")
    last_label = -1.0
    for al in alerts:
        t = seconds(al["sample_start"])
        lo, hi = (al["freq_lower_edge"] - zero(al)) * to_mhz, (al["freq_upper_edge"] - zero(al)) * to_mhz
        ax.plot([lo, hi], [t, t], color="red", linewidth=1.2)
        ax.plot([(lo + hi) / 2], [t], marker="v", color="red", markersize=7)
        if last_label < 0 or t - last_label > 0.03 * t_end:  # alerts close in time share one label
            ax.text(f0 + 0.01 * (f1 - f0), t, f"{al['kind']} {al['score']:.2f}", color="white", fontsize=7,
                    va="bottom", bbox={"facecolor": "red", "alpha": 0.7, "pad": 1, "linewidth": 0})
            last_label = t
    for sample, freq in retunes:
        ax.axhline(seconds(sample), color="white", linestyle="--", linewidth=0.8)
        ax.text(f1, seconds(sample), f"retuned to {freq * to_mhz:.6g} MHz", color="white", fontsize=7, va="bottom",
                ha="right")
    ax.set_xlim(f0, f1)
    ax.set_ylim(t_end, 0)
    ax.set_xlabel(f"offset from the tuned centre (MHz; {center_freq * to_mhz:.6g} MHz at the start)" if retunes
                  else "frequency (MHz)")
    ax.set_ylabel("time (s)")
    handles = [Rectangle((0, 0), 1, 1, fill=False, edgecolor=c, linestyle=s) for c, s in
               (("white", "-"), ("orange", "--"), ("red", "-"))]
    ax.legend(handles, ["detection", "truth anomaly", "alert"], loc="lower right", fontsize=8,
              facecolor="#333333", labelcolor="white")
    # A file name may hold $ (mathtext) or bytes that are no UTF-8 (matplotlib raised on their surrogates)
    ax.set_title((title or "gr-specenc waterfall").encode("utf-8", "replace").decode(), parse_math=False)
    fig.tight_layout()
    fig.savefig(path)
    return path
