"""Terminal summary of a run, and matching alerts to the truth anomalies of a generated recording."""

from collections import Counter

from .. import truth


def truth_anomalies(annotations):
    """Annotations that mark an injected anomaly (truth.anomaly_kind), each with its `kind`."""
    return [dict(ann, kind=kind) for ann in annotations if (kind := truth.anomaly_kind(ann))]


def truth_emitters(annotations):
    """Annotations of a generated recording's emitters (core:label a family name; jammers and hoppers included)."""
    return [ann for ann in annotations if truth.family(ann)]


def _overlap(a0, a1, b0, b1):
    return a0 < b1 and b0 < a1


def match_alerts(truth, alerts):
    """Which truth anomalies some alert overlaps in time (IQ samples) and frequency (Hz).

    Returns (caught: list[bool] per truth, matched: list[bool] per alert).
    """
    caught = [False] * len(truth)
    matched = [False] * len(alerts)
    for i, t in enumerate(truth):
        t0 = t["core:sample_start"]
        t1 = t0 + t["core:sample_count"]
        f0, f1 = t.get("core:freq_lower_edge", float("-inf")), t.get("core:freq_upper_edge", float("inf"))
        for j, a in enumerate(alerts):
            a0 = a["sample_start"]
            if _overlap(t0, t1, a0, a0 + a["sample_count"]) and _overlap(
                    f0, f1, a["freq_lower_edge"], a["freq_upper_edge"]):
                caught[i] = matched[j] = True
    return caught, matched


def table(rows, title=""):
    """Two-column text table."""
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * max(len(title), 40)] if title else []
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def summary_rows(result, truth=None, emitters=None):
    """Rows for the run summary; `result` is a flowgraph.RunResult; truth: truth_anomalies; emitters:
    truth_emitters (both of a generated recording)."""
    fams = Counter(label for label in result.labels if label)  # invalid spectra have no class (counted above)
    processed = str(result.num_spectra)
    if result.ended_early:
        processed += f" of {result.expected_spectra} (the input ended early)"
    rows = [
        ("input", result.input_name),
        ("spectra processed", f"{processed} ({result.num_invalid} invalid, skipped)"),
        ("IQ duration", f"{result.duration_s:.3f} s at {result.sample_rate / 1e6:g} MS/s"),
        ("wall time", f"{result.wall_s:.2f} s"),
        ("real-time factor", f"{result.duration_s / result.wall_s:.2f}x" if result.wall_s > 0 else "n/a"),
        ("families seen", ", ".join(f"{k} {v}" for k, v in fams.most_common()) or "none"),
        ("emissions detected", str(len(result.detections))),
    ] + alert_rows(result, truth)
    if emitters is not None:
        _, on_emitter = match_alerts(emitters, result.detections)  # emissions: the same keys as alerts
        rows.append(("emissions on no emitter", f"{on_emitter.count(False)} of {len(on_emitter)}"))
    return rows


def alert_rows(result, truth=None):
    """The summary's alert rows: count by kind, threshold, and against truth_anomalies when given."""
    kinds = Counter(a["kind"] for a in result.alerts)
    rows = [
        ("alerts", f"{len(result.alerts)}" + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")"
                                                 if kinds else "")),
        ("alert threshold", f"{result.threshold:.3f}" + (f" on the mean of {result.integrate} scores"
                                                         if result.integrate > 1 else "")),
    ]
    if truth is not None:
        caught, matched = match_alerts(truth, result.alerts)
        by_kind = Counter(t["kind"] for t in truth)
        hit_kind = Counter(t["kind"] for t, c in zip(truth, caught) if c)
        rows.append(("ghost anomalies caught", f"{sum(caught)} of {len(truth)}"))
        for kind in sorted(by_kind):
            rows.append((f"  {kind}", f"{hit_kind[kind]} of {by_kind[kind]}"))
        rows.append(("alerts matching no truth", str(matched.count(False))))
    return rows
