"""Markdown report and PNG plots from the results dict that `evaluate.evaluate` returns.

Everything here reads only the results dict (also written as JSON), so a report can be rebuilt from
a saved `results.json` without re-running the model.
"""

import os

import numpy as np
from matplotlib.figure import Figure  # not pyplot: its backend is the caller's (a notebook's) to choose

from .. import json_out
from ..folders import make_folder
from . import calibrate, datasets, evaluate


def _fmt(v, digits=3, spec=None):
    """A figure for the report: n/a for None (a null of results.json) or NaN; `spec` formats it (default .3f)."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    if spec is not None:
        return format(v, spec)
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _pct(v):
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.1f} %"


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_confusion(results, path):
    fam = results["family"]
    cm = np.asarray(fam["confusion"], dtype=np.float64)
    names = fam["classes"]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted family")
    ax.set_ylabel("true family")
    ax.set_title("Family confusion (counts; colour = row fraction)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def _detectors(results):
    yield "SpectrumEncoder", results["anomaly"]
    for name, b in results.get("baselines", {}).items():
        yield name, b["anomaly"]


def plot_roc(results, path):
    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    for name, a in _detectors(results):
        ax.plot(a["roc"]["fpr"], a["roc"]["tpr"], label=f"{name} (AUROC {_fmt(a['auroc'])})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("Anomaly ROC (held-out scenes)")
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def plot_pr(results, path):
    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    for name, a in _detectors(results):
        ax.plot(a["pr"]["recall"], a["pr"]["precision"], label=f"{name} (AP {_fmt(a['average_precision'])})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Anomaly precision-recall (held-out scenes)")
    ax.legend(loc="lower left", fontsize=8)
    _save(fig, path)


def plot_snr(results, path):
    by = results["family"]["by_snr"]
    names = list(by)
    acc = [by[n]["accuracy"] for n in names]
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    ax.bar(range(len(names)), [100 * a if a is not None and np.isfinite(a) else 0 for a in acc], color="tab:blue")
    for i, n in enumerate(names):
        ax.text(i, 2, f"n={by[n]['count']}", ha="center", color="white", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("family accuracy (%)")
    ax.set_ylim(0, 100)
    ax.axhline(95, color="k", ls=":", lw=0.8)
    ax.set_title("Family accuracy vs dominant-emitter SNR")
    _save(fig, path)


PLOTS = {
    "confusion.png": plot_confusion,
    "roc.png": plot_roc,
    "pr.png": plot_pr,
    "accuracy_vs_snr.png": plot_snr,
}


def _anomaly_row(name, a, d=None):
    at = a["at_threshold"]
    det = "n/a" if d is None else f"{_fmt(d['all']['precision'])} / {_fmt(d['all']['recall'])}"
    return (f"| {name} | {_fmt(a['threshold'], 4)} | {_fmt(at['f1'])} | {_fmt(at['precision'])} | "
            f"{_fmt(at['recall'])} | {_fmt(a['auroc'])} | {_fmt(a['average_precision'])} | "
            f"{_fmt(a['best_f1']['f1'])} | {_fmt(a['false_alarms']['per_spectrum'], spec='.2e')} | {det} |")


def markdown(results, plots_dir_rel="."):
    """The evaluation report as markdown text."""
    lines = [f"# SpectrumEncoder evaluation: {results['model']['name']}", ""]
    lines += [f"Command: `{results['command']}`", "",
              f"Model: `{results['model']['path']}` (threshold τ = {_fmt(results['model']['threshold'], 4)}, "
              f"{results['model'].get('parameters', 'n/a')} parameters).", ""]
    if "family" in results:
        lines += _synthetic_sections(results, plots_dir_rel)
    lines += _recording_sections(results)
    return "\n".join(lines)


def _thresholds_text(data):
    """How the detectors' thresholds were set, and whether F1 at τ compares them at one false-alarm rate."""
    tail = ("F1/precision/recall are at each detector's threshold, false alarms are measured on separate clean test "
            "scenes. Best F1 is the oracle over all thresholds.")
    cal = data.get("calibration")
    if cal is None:  # results written before the calibration was recorded
        return ("Thresholds of every detector are calibrated to the same target false-alarm rate on clean "
                "calibration scenes (disjoint from the test scenes); " + tail)
    if cal["far_reachable"]:
        base = (f"The baselines' thresholds are calibrated to {cal['far']:g} false alarms per spectrum on "
                f"{cal['clean_spectra']} clean calibration scenes (disjoint from the test scenes; "
                f"{cal['allowed_false_alarms']} over the threshold allowed)")
    else:
        base = (f"The baselines' thresholds are the highest score of {cal['clean_spectra']} clean calibration scenes "
                f"(disjoint from the test scenes; too few to show {cal['far']:g} false alarms per spectrum with 95 % "
                "confidence)")
    source = cal["threshold"]
    if source == "calibrated here":
        rate = cal["model_target_far"] or cal["far"]
        own = (f"the model's own τ is for means of {cal['model_integrate']} scores and these scenes are single "
               "spectra, "
               + (f"so its τ here is calibrated per spectrum on the same clean scenes, to its own target of {rate:g}"
                  if cal.get("model_far_reachable", True) else  # not recorded before audit 47
                  f"so its τ here is the highest score of the same clean scenes (too few to show its target of "
                  f"{rate:g})"))
    elif source == "training":
        own = (f"the model keeps its own τ, calibrated in training to {cal['model_target_far']:g} on "
               f"{cal['model_clean_spectra']} clean scenes")
    elif source == "site":
        own = f"the model keeps its own τ, calibrated on clean spectra of {cal['model_calibrated_on']}"
    else:
        own = "the model keeps its own τ, which has no calibration record (an untrained model's placeholder)"
    if not cal["same_target"]:
        own += ": F1 at τ compares detectors at different false-alarm rates (no F1 margin below)"
    return f"{base}; {own}. {tail}"


def _synthetic_sections(results, plots_dir_rel):
    fam, det, an = results["family"], results["detection"], results["anomaly"]
    lines = ["Data: " + results["data"]["description"], ""]
    lines += ["## Family classification", "",
              f"- Overall accuracy: **{_pct(fam['accuracy'])}** on {fam['count']} spectra",
              f"- At SNR ≥ 10 dB: **{_pct(fam['accuracy_snr_ge_10'])}** ({fam['count_snr_ge_10']} spectra)", "",
              "| SNR bin | accuracy | spectra |", "|---|---|---|"]
    lines += [f"| {k} | {_pct(v['accuracy'])} | {v['count']} |" for k, v in fam["by_snr"].items()]
    binned = sum(v["count"] for v in fam["by_snr"].values())
    if binned < fam["count"]:
        lines += ["", f"The other {fam['count'] - binned} spectra hold no emitter at all (labelled noise, as are those "
                  f"whose strongest emitter is under the visibility limit of {datasets.VISIBLE_SNR_DB:g} dB)."]
    if "by_width" in fam:
        lines += ["", "By the bandwidth of the emitter that sets the label, in analysis bins (a power spectrum "
                  "shows a family only through its shape; a few bins leave little of it):", "",
                  "| width | accuracy | spectra |", "|---|---|---|"]
        lines += [f"| {k} | {_pct(v['accuracy'])} | {v['count']} |" for k, v in fam["by_width"].items()]
        widthed = sum(v["count"] for v in fam["by_width"].values())
        if widthed < fam["count"]:
            lines += ["", f"The other {fam['count'] - widthed} spectra have no labelling emitter over the visibility "
                      "limit (labelled noise), so no width."]
    if "by_band" in fam:
        lines += ["", "By band plan (`ism` and `other` scenes hold emitters of any family, width and place; the "
                  "others follow a channel raster or show nothing above the floor):", "",
                  "| band | accuracy | spectra |", "|---|---|---|"]
        lines += [f"| {k} | {_pct(v['accuracy'])} | {v['count']} |" for k, v in fam["by_band"].items()]
    if "accuracy_untuned" in fam:
        lines += ["", f"Without the tuning (no rx_freq: band \"other\" for every spectrum) the same spectra "
                  f"are classified with **{_pct(fam['accuracy_untuned'])}** accuracy."]
    lines += ["", f"![accuracy vs SNR]({plots_dir_rel}/accuracy_vs_snr.png)",
              f"![confusion]({plots_dir_rel}/confusion.png)", ""]
    lines += ["## Emission detection (per token, frequency IoU ≥ 0.3)", "",
              "`snr_ge_10`: spectra whose dominant emitter has SNR ≥ 10 dB (their weaker emitters included); "
              "`emissions_snr_ge_10`: the emissions that themselves have SNR ≥ 10 dB, matched against all "
              "detections (a recall, no precision of its own).", "",
              "| subset | precision | recall | F1 | truth | detections |", "|---|---|---|---|---|---|"]
    for key, d in det.items():
        lines.append(f"| {key} | {_fmt(d['precision'])} | {_fmt(d['recall'])} | {_fmt(d['f1'])} | "
                     f"{d['truth']} | {d['detections']} |")
    lines += ["", "## Anomalies (ghost scenarios) and baselines", "", _thresholds_text(results["data"]),
              "", "| detector | τ | F1 | precision | recall | AUROC | AP | best F1 | false alarms / spectrum | "
              "detection P / R |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines.append(_anomaly_row("SpectrumEncoder", an, det.get("all") and det))
    for name, b in results.get("baselines", {}).items():
        lines.append(_anomaly_row(name, b["anomaly"], b.get("detection")))
    if results.get("margins"):
        lines += ["", "Margins of the SpectrumEncoder over the baselines (positive = ours better):", ""]
        lines += [f"- vs {name}: " + ", ".join(f"{k} {_fmt(v, spec='+.3f')}" for k, v in m.items())
                  for name, m in results["margins"].items()]
    named = an.get("kind_named", {})
    lines += ["", "Anomaly recall at τ by kind, and of those caught, the share the kind head names right:", "",
              "| kind | recall | count | caught | named right |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {_fmt(v['recall'])} | {v['count']} | {named.get(k, {}).get('caught', 'n/a')} | "
              f"{_pct(named.get(k, {}).get('named'))} |" for k, v in an["recall_by_kind"].items()]
    loc = an.get("localisation")
    if loc:
        lines += ["", f"Anomaly location (the per-token anomaly head; alerts carry these frequency edges): on the "
                  f"{loc['rows']} anomalous spectra caught at τ, {_pct(loc['located'])} located with bin IoU ≥ 0.3 "
                  f"against the true anomaly extent (mean IoU {_fmt(loc['mean_iou'])})."]
    lines += ["", f"![ROC]({plots_dir_rel}/roc.png) ![PR]({plots_dir_rel}/pr.png)", ""]
    if results.get("targets"):
        lines += ["## Targets (issue 6)", "", "| target | value | met |", "|---|---|---|"]
        lines += [f"| {t['name']} | {_fmt(t['value'], 4)} | {'yes' if t['met'] else 'NO'} |" for t in results["targets"]]
        lines.append("")
    return lines


def _integrated_text(recordings):
    """Where the model's τ is for means of scores, the alerts on recordings are decided on those means."""
    n = max((r.get("integrate", 1) for r in recordings.values()), default=1)
    return [f"Over τ and anomaly F1 are per spectrum on the mean of the last {n} scores at the model's own τ, as the "
            "anomaly detector decides with this model (none before the first mean).", ""] if n > 1 else []


def _recording_sections(results):
    lines = []
    if results.get("recordings"):
        lines += ["## SigMF recordings", "",
                  "Family accuracy and anomaly F1 where the recording carries truth annotations (`specenc synth`'s, or "
                  "labels naming a family or an anomaly kind; \"x % of N\": the N spectra free of emissions labelled "
                  "otherwise). "
                  "Real captures have no injected anomalies (every alert is a false alarm); where their transmitter's "
                  "family is known (`--capture-families`), family accuracy is that family named on the spectra holding "
                  f"a burst (an 8-bin mean away from DC {evaluate.BURST_DB:g} dB over the spectrum's median; every "
                  "spectrum for a capture known to show only noise). *Site-calibrated*: the anomaly F1 per spectrum "
                  "at a threshold calibrated on ghost-free twins of the recording's generated site (its scenario and "
                  "seed, drawn with its anomalies at its length and rendered without them, "
                  f"{evaluate.TWIN_TAKES} takes of other noise) for the mean of "
                  f"{calibrate.SITE_INTEGRATE} scores, as `specenc calibrate TWIN0 TWIN1 ... --integrate "
                  f"{calibrate.SITE_INTEGRATE}` and the anomaly detector use it (`--site-twins`).", "",
                  *_integrated_text(results["recordings"]),
                  "| recording | spectra | family acc. | over τ / spectrum | anomaly F1 | site-calibrated F1 (P / R, τ) "
                  "| top predicted families |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in results["recordings"].items():
            top = ", ".join(f"{k} {v}" for k, v in list(r["predicted_families"].items())[:3])
            acc = _pct(r.get("family_accuracy"))
            if "capture_family" in r:
                acc = f"{acc} of {r['capture_rows']} ({r['capture_family']})"
            elif "family_rows" in r:  # spectra under emissions of families unknown here are left out
                acc = f"{acc} of {r['family_rows']}"
            site = r.get("site_calibrated")
            site = (f"{_fmt(site['f1'])} ({_fmt(site['precision'], 2)} / {_fmt(site['recall'], 2)}, "
                    f"{_fmt(site['threshold'])})" if site else "n/a")
            lines.append(f"| {name} | {r['spectra']} | {acc} | "
                         f"{_fmt(r['alert_rate'], spec='.2e')} | {_fmt(r.get('anomaly_f1'))} | {site} | {top} |")
        lines.append("")
        sites = [(r["anomaly_f1"], r["site_calibrated"]["f1"]) for r in results["recordings"].values()
                 if "site_calibrated" in r]
        if sites:
            shipped, site = np.mean(np.array(sites, dtype=float), axis=0)  # null (None) read back: NaN
            lines += [f"Generated recordings with ghosts, anomaly F1 per spectrum, mean over {len(sites)}: "
                      f"{shipped:.3f} at the shipped threshold, {site:.3f} calibrated to each site.", ""]
        known = evaluate.capture_family_accuracy(results["recordings"])
        if known is not None:
            lines += [f"Real captures, the transmitter's family named, mean over the captures scored: {_pct(known)}.", ""]
    return lines


def write_report(results, out_dir):
    """Write results.json, report.md and the PNG plots into out_dir; returns the report path. `results` may be read
    back from a results.json, whose missing figures are null (n/a in the report, as NaN is)."""
    make_folder(out_dir)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json_out.dump(results, f, indent=1)
    for name in PLOTS:  # an earlier report's plots in the folder would pass for this one's
        if os.path.isfile(os.path.join(out_dir, name)):
            os.remove(os.path.join(out_dir, name))
    if "family" in results:
        for name, plot in PLOTS.items():
            plot(results, os.path.join(out_dir, name))
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write(markdown(results))
    return path
