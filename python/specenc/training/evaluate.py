"""`specenc eval`: score a model and the baselines on the same held-out data.

Data sources:
- synthetic: scenes from `synth.make_batch` with seeds disjoint from training (`datasets.TEST_STREAM`),
  one mixed set (half ghost anomalies) and two clean sets (one calibrates the baselines' thresholds,
  the other measures false alarms of every detector).
- SigMF recordings with truth annotations (as `specenc synth` writes them): spectra made with the
  same `dsp.power_spectrum` settings as training, truth per spectrum from the annotations.
- real captures without injected anomalies (e.g. /work/shared/data/iq): share of spectra over the threshold; where the
  transmitter's modulation is known (`--capture-families`), family accuracy on the spectra holding a burst.
"""

import logging
import math
import os

import numpy as np
from tqdm import tqdm

from .. import bands, dsp, labels, sigmf_io
from ..truth import anomaly_kind, foreign_labels, is_foreign, is_foreign_emission
from . import baselines, calibrate, datasets, metrics

log = logging.getLogger(__name__)

CURVE_POINTS = 200
TWIN_TAKES = 4  # ghost-free takes of a recording's site, for the spectra the 1e-3 calibration needs
BURST_DB = 10.0  # a spectrum holds a burst when an 8-bin mean away from DC stands this far over its median
DC_BINS = 4  # bins either side of DC left out of the burst test (LO leakage is no transmission)
MAX_RECORDING_SPECTRA = 20000  # spectra scored per recording by default (eval --max-spectra)


def predict_all(model, spectra, center_freq=None, sample_rate=None, batch=256, progress=None):
    """Run model.predict in batches -> dict of arrays (label_index, anomaly_score, ...) + detections."""
    out = {"label_index": [], "confidence": [], "anomaly_score": [], "anomaly_bins": [], "anomaly_kind": [],
           "detections": []}
    for i in range(0, len(spectra), batch):
        sl = slice(i, i + batch)
        freq = None if center_freq is None else np.asarray(center_freq)[sl]
        rate = None if sample_rate is None else np.asarray(sample_rate)[sl]
        p = model.predict(spectra[sl], rx_freq=freq, sample_rate=rate)
        out["label_index"].append(np.asarray(p.label_index))
        out["confidence"].append(np.asarray(p.confidence))
        out["anomaly_score"].append(np.asarray(p.anomaly_score))
        out["anomaly_bins"].append(np.asarray(p.anomaly_bins))
        out["anomaly_kind"] += list(p.anomaly_kind)
        out["detections"] += [[(d["bin_start"], d["bin_stop"], labels.FAMILY_INDEX.get(d["family"], -1))
                               for d in row] for row in p.detections]
        if progress is not None:
            progress.update(len(spectra[sl]))
    for k in ("label_index", "confidence", "anomaly_score", "anomaly_bins"):
        out[k] = np.concatenate(out[k]) if out[k] else np.zeros(0)
    return out


def _downsample_curve(x, y, n=CURVE_POINTS):
    idx = np.unique(np.linspace(0, len(x) - 1, min(n, len(x))).astype(int))
    return [float(v) for v in np.asarray(x)[idx]], [float(v) for v in np.asarray(y)[idx]]


def anomaly_block(labels_, scores, threshold, clean_scores, kinds=None):
    """Anomaly figures for one detector: at its threshold, threshold-free, false alarms, curves."""
    fpr, tpr, _ = metrics.roc_curve(labels_, scores)
    precision, recall, _ = metrics.pr_curve(labels_, scores)
    rx, ry = _downsample_curve(fpr, tpr)
    px, py = _downsample_curve(recall, precision)
    block = {
        "threshold": float(threshold),
        "at_threshold": metrics.f1_at(labels_, scores, threshold),
        "auroc": metrics.auroc(labels_, scores),
        "average_precision": metrics.average_precision(labels_, scores),
        "best_f1": metrics.best_f1(labels_, scores),
        "false_alarms": {"per_spectrum": metrics.false_alarm_rate(clean_scores, threshold),
                         "clean_spectra": int(len(clean_scores))},
        "roc": {"fpr": rx, "tpr": ry},
        "pr": {"recall": px, "precision": py},
    }
    if kinds is not None:
        fired = np.asarray(scores) > threshold
        block["recall_by_kind"] = {
            name: {"recall": float(fired[kinds == k].mean()) if np.any(kinds == k) else float("nan"),
                   "count": int(np.sum(kinds == k))}
            for k, name in enumerate(labels.ANOMALY_KINDS)}
    return block


def kind_named(true_kind, pred_kind, fired):
    """Of the anomalies caught at τ, per true kind: how many the kind head names right."""
    out = {}
    for k, name in enumerate(labels.ANOMALY_KINDS):
        rows = np.flatnonzero(fired & (true_kind == k))
        out[name] = {"caught": int(rows.size),
                     "named": float(np.mean([pred_kind[i] == name for i in rows])) if rows.size else float("nan")}
    return out


def truth_tokens(bin_family, bin_snr=None):
    """Per row, truth emissions as [(bin_start, bin_stop, family, snr_db)] from the per-bin family map;
    snr_db is the highest SNR of the emitters labelling the run's bins (nan without bin_snr)."""
    rows = [metrics.runs(row) for row in bin_family]
    if bin_snr is None:
        return [[(s, e, f, float("nan")) for s, e, f in row] for row in rows]
    return [[(s, e, f, float(np.nanmax(snr[s:e]))) for s, e, f in row] for row, snr in zip(rows, bin_snr)]


def detection_block(truth, dets, snr_db, need_family_too=True):
    """Detection P/R/F1 over all emissions and over spectra whose dominant emitter has SNR >= 10 dB, and
    the recall of the emissions that themselves have SNR >= 10 dB (matched against all detections, so
    it has no precision of its own)."""
    snr = np.asarray(snr_db, dtype=np.float64)
    hi = np.flatnonzero(snr >= 10.0)
    strong = [[t for t in row if t[3] >= 10.0] for row in truth]  # nan SNR compares False
    out = {
        "all": metrics.detection_scores(truth, dets),
        "snr_ge_10": metrics.detection_scores([truth[i] for i in hi], [dets[i] for i in hi]),
        "emissions_snr_ge_10": {**metrics.detection_scores(strong, dets), "precision": float("nan"),
                                "f1": float("nan")},
    }
    if need_family_too:
        out["all_family_matched"] = metrics.detection_scores(truth, dets, need_family=True)
        out["snr_ge_10_family_matched"] = metrics.detection_scores(
            [truth[i] for i in hi], [dets[i] for i in hi], need_family=True)
    return out


def family_block(true, pred, snr_db, width_bins=None, pred_untuned=None, band=None):
    """Family accuracy figures; width_bins (dominant emitter bandwidth in bins), pred_untuned (labels
    predicted without the tuning, band "other") and band (bands.BAND_INDEX per spectrum) add their
    breakdowns when given."""
    snr = np.asarray(snr_db, dtype=np.float64)
    hi = snr >= 10.0
    out = {
        "classes": list(labels.FAMILIES),
        "accuracy": metrics.accuracy(true, pred),
        "count": int(len(true)),
        "accuracy_snr_ge_10": metrics.accuracy(true[hi], pred[hi]),
        "count_snr_ge_10": int(hi.sum()),
        "by_snr": metrics.accuracy_by_snr(true, pred, snr),
        "confusion": metrics.confusion_matrix(true, pred, len(labels.FAMILIES)).tolist(),
    }
    if width_bins is not None:
        out["by_width"] = metrics.accuracy_by_width(true, pred, width_bins)
    if band is not None:
        out["by_band"] = metrics.accuracy_by_group(true, pred, band, bands.BANDS)
    if pred_untuned is not None:
        out["accuracy_untuned"] = metrics.accuracy(true, pred_untuned)
    return out


def evaluate_synthetic(model, n_test=2048, n_clean=4096, seed=2026, far=calibrate.DEFAULT_FAR,
                       ae_steps=300, batch_size=64, show_progress=True):
    """Model and baselines on held-out synthetic scenes -> results dict (without the command/model keys)."""
    nfft = model.nfft
    gen = datasets.TestSets(seed, nfft, batch_size)
    def bar_label(text):  # generation of the sets takes minutes at the report's sizes
        return text if show_progress else None

    test = gen.scenes(n_test, desc=bar_label("test scenes"))
    clean_cal = gen.clean(n_clean, part="calibration", desc=bar_label("clean scenes (calibration)"))
    clean_test = gen.clean(n_clean, part="test", desc=bar_label("clean scenes (false alarms)"))
    integrate = calibrate.model_integrate(model)
    total = 2 * len(test["spectra"]) + len(clean_test["spectra"]) + (len(clean_cal["spectra"]) if integrate > 1 else 0)
    with tqdm(total=total, desc="eval model", unit="spec", disable=not show_progress) as bar:
        p = predict_all(model, test["spectra"], test["center_freq"], test["sample_rate"], progress=bar)
        pc = predict_all(model, clean_test["spectra"], clean_test["center_freq"], clean_test["sample_rate"],
                         progress=bar)
        # The same spectra without tuning (rx_freq unknown: band "other"), as a flowgraph without rx_freq sees them.
        untuned = predict_all(model, test["spectra"], progress=bar)["label_index"]
        cal_scores = predict_all(model, clean_cal["spectra"], clean_cal["center_freq"], clean_cal["sample_rate"],
                                 progress=bar)["anomaly_score"] if integrate > 1 else None
    tau, calibration = synthetic_threshold(model, integrate, cal_scores, len(clean_cal["spectra"]), far)
    y = test["anomaly"] > 0.5
    kinds = test["anomaly_kind"]
    truth = truth_tokens(test["bin_family"], test["bin_snr"])
    results = {
        "family": family_block(test["family"], p["label_index"], test["snr_db"], test["dominant_bins"], untuned,
                               test["band"]),
        "detection": detection_block(truth, p["detections"], test["snr_db"]),
        "anomaly": anomaly_block(y, p["anomaly_score"], tau, pc["anomaly_score"], kinds),
    }
    fired = y & (p["anomaly_score"] > tau)
    results["anomaly"]["localisation"] = metrics.localisation(test["anomaly_bins"][fired], p["anomaly_bins"][fired])
    results["anomaly"]["kind_named"] = kind_named(kinds, p["anomaly_kind"], fired)
    # Clean scenes are also classification data; include their false-alarm counts only.
    results["false_alarms_clean"] = results["anomaly"]["false_alarms"]

    log.info("baselines: fitting the z-score detector and training the autoencoder (%d steps)", ae_steps)
    results["baselines"] = {}
    z = baselines.ZScoreDetector().fit(clean_cal["spectra"])
    z_tau = calibrate.threshold_for_far(z.score(clean_cal["spectra"]), far)
    results["baselines"]["zscore"] = {
        "anomaly": anomaly_block(y, z.score(test["spectra"]), z_tau, z.score(clean_test["spectra"]), kinds),
        "detection": detection_block(truth, z.detections(test["spectra"]), test["snr_db"], need_family_too=False),
    }
    ae = baselines.train_autoencoder(gen.clean_batches(), nfft, steps=ae_steps, seed=seed)
    ae_tau = calibrate.threshold_for_far(ae.score(clean_cal["spectra"]), far)
    results["baselines"]["autoencoder"] = {
        "anomaly": anomaly_block(y, ae.score(test["spectra"]), ae_tau, ae.score(clean_test["spectra"]), kinds),
    }
    results["data"] = {
        "description": (f"synthetic held-out scenes: {len(y)} mixed ({int(y.sum())} with ghost anomalies), "
                        f"{len(clean_cal['spectra'])} clean for threshold calibration, {len(clean_test['spectra'])} "
                        f"clean for false alarms; seed {seed} (test stream, disjoint from training), nfft {nfft}."),
        "seed": seed, "n_test": int(len(y)), "n_clean": int(len(clean_test["spectra"])), "calibration": calibration,
    }
    results["margins"] = margins(results)
    return results


def synthetic_threshold(model, integrate, cal_scores, n_cal, far):
    """τ for the held-out scenes, and how it compares with the baselines' (calibrated to `far` on the `n_cal` clean
    calibration scenes). The model keeps its own τ unless that is for means of `integrate` > 1 scores (`specenc
    calibrate --integrate`): the scenes are single spectra, so it is then calibrated per spectrum on the same clean
    scenes (`cal_scores`), to the model's own target rate."""
    own = calibrate.model_calibration(model)
    target = own.get("target_far")
    allowed = calibrate.allowed_false_alarms(n_cal, far)
    out = {"far": float(far), "clean_spectra": int(n_cal), "allowed_false_alarms": max(allowed, 0),
           "far_reachable": allowed >= 0, "model_target_far": target, "model_clean_spectra": own.get("clean_spectra"),
           "model_integrate": integrate, "model_calibrated_on": own.get("calibrated_on")}
    if integrate > 1:
        # Calibrated on the baselines' scenes: at the same rate when both allow as many scores over the threshold
        # (the same order statistic; the highest score where a rate cannot be shown).
        rate = target or far
        source, tau = "calibrated here", calibrate.threshold_for_far(cal_scores, rate)
        allowed_own = calibrate.allowed_false_alarms(n_cal, rate)
        out["model_far_reachable"] = allowed_own >= 0
        same = max(allowed_own, 0) == out["allowed_false_alarms"]
        log.warning("the model's threshold %.4g is for means of %d scores; the synthetic scenes are single spectra, "
                    "scored at %.4g, calibrated per spectrum to %g on the clean calibration scenes",
                    model.threshold, integrate, tau, rate)
    else:
        # A site calibration (specenc calibrate) was on other spectra; one without a record may be a placeholder.
        source = "site" if own.get("calibrated_on") else "training" if target is not None else "none"
        tau = float(model.threshold)
        same = source == "training" and out["far_reachable"] and math.isclose(target, far)
        if same and (out["model_clean_spectra"] or 0) > n_cal:
            log.warning("the baselines are calibrated on %d clean scenes, the model on %d: the baselines' thresholds "
                        "sit at a lower false-alarm rate (--n-clean %d calibrates them alike)",
                        n_cal, out["model_clean_spectra"], out["model_clean_spectra"])
    if not same:
        log.warning("F1 at τ compares the model and the baselines at different false-alarm rates (the baselines' "
                    "far=%g; the model's threshold: %s)", far, source)
    return tau, {**out, "threshold": source, "same_target": same}


def margins(results):
    ours = results["anomaly"]
    # Results written before the calibration was recorded had every detector at one target.
    comparable = results["data"].get("calibration", {}).get("same_target", True)
    out = {}
    for name, b in results["baselines"].items():
        a = b["anomaly"]
        m = {"F1@τ": ours["at_threshold"]["f1"] - a["at_threshold"]["f1"]} if comparable else {}
        m.update({"AUROC": ours["auroc"] - a["auroc"], "AP": ours["average_precision"] - a["average_precision"]})
        if "detection" in b:
            m["detection recall"] = results["detection"]["all"]["recall"] - b["detection"]["all"]["recall"]
            m["detection precision"] = results["detection"]["all"]["precision"] - b["detection"]["all"]["precision"]
        out[name] = m
    return out


def holds_burst(spectra, width=8, level_db=BURST_DB, dc_bins=DC_BINS):
    """(S,) bool: spectra (S, nfft) dB in which some `width`-bin mean, DC's bins left out, stands
    `level_db` over the spectrum's median: where a real capture's transmitter is on."""
    x = spectra - np.median(spectra, axis=1, keepdims=True)
    mid = x.shape[1] // 2
    x[:, mid - dc_bins: mid + dc_bins + 1] = 0.0
    return baselines.moving_average(x, width).max(axis=1) >= level_db


def capture_family_block(family, pred, spectra):
    """Family accuracy of a capture whose transmitter's family is known, on the spectra holding a burst
    (every spectrum for "noise": a capture where nothing shows above the floor)."""
    rows = np.ones(len(spectra), bool) if family == "noise" else holds_burst(spectra)
    return {"capture_family": family, "capture_rows": int(rows.sum()),
            "family_accuracy": metrics.accuracy(np.full(int(rows.sum()), labels.FAMILY_INDEX[family]), pred[rows])}


def site_twins(rec, folder, samples):
    """Ghost-free recordings of the same generated site as the Recording `rec`: its scenario and seed, drawn with its
    anomalies and at its length and rendered without them over the `samples` scored, TWIN_TAKES takes of other noise
    (together enough spectra for the 1e-3 calibration), written into `folder` -> their meta paths; [] for a
    recording that does not say how it was generated. A twin already there is reused only if it is of this site (a
    recording replaced under the same name gets new ones)."""
    from ..synth import write_scenario

    made_by = rec.global_
    if "specenc:scenario" not in made_by or "specenc:seed" not in made_by:
        return []
    kinds = [a["specenc:kind"] for a in rec.annotations if anomaly_kind(a) and "specenc:kind" in a]
    paths = []
    for take in range(TWIN_TAKES):
        path = os.path.join(folder, f"{recording_name(rec.meta_path)}_site{take}.sigmf-meta")
        site = {"specenc:scenario": made_by["specenc:scenario"], "specenc:seed": made_by["specenc:seed"],
                "specenc:ghost_free": kinds, "specenc:take": take, "specenc:scene_samples": rec.num_samples}
        if os.path.isfile(path):
            twin = sigmf_io.read_meta(path)
            if ({k: twin.global_.get(k) for k in site} == site and twin.num_samples == samples
                    and (twin.sample_rate, twin.center_freq) == (rec.sample_rate, rec.center_freq)):
                paths.append(path)
                continue
            log.info("%s is not a twin of %s (another site or length): made again", path, rec.meta_path)
        paths.append(write_scenario(path, scenario=site["specenc:scenario"], seed=site["specenc:seed"],
                                    anomalies=kinds, seconds=rec.num_samples / rec.sample_rate,
                                    sample_rate=rec.sample_rate, center_freq=rec.center_freq, ghost_free=True,
                                    take=take, samples=samples))
    return paths


def site_calibrated_block(model, twins, anomaly, scores, average, max_spectra=MAX_RECORDING_SPECTRA):
    """Anomaly F1 per spectrum at a threshold calibrated on the site's twins for the mean of SITE_INTEGRATE
    scores, as `specenc calibrate TWIN0 TWIN1 ... --integrate 16` and the detector would use it. The mean at
    spectrum i covers the 16 up to i (none before the 16th: no alert)."""
    from .calibrate_cli import recalibrate

    tau, summary = recalibrate(model, twins, calibrate.DEFAULT_FAR, average, max_spectra,
                               integrate=calibrate.SITE_INTEGRATE)
    n = calibrate.SITE_INTEGRATE
    return {"integrate": n, "threshold": tau, "twin_spectra": summary["clean_spectra"] + len(twins) * (n - 1),
            **metrics.f1_at(anomaly, calibrate.integrated_scores(scores, n), tau)}


def evaluate_recording(model, meta_path, average=1, max_spectra=MAX_RECORDING_SPECTRA, capture_family=None,
                       twin_dir=None):
    """Alert rate and predicted families on one SigMF recording (None, with a warning, when it has no finite
    spectrum); family accuracy on its bursts when `capture_family` (the transmitter's family) is given, else from its
    truth annotations, and anomaly F1 when those mark anomalies. With twin_dir, a generated recording with ghosts is
    also scored at a threshold calibrated on ghost-free twins of its site (not one too short for a mean of
    SITE_INTEGRATE scores)."""
    rec, spectra, freq, truth = datasets.recording_spectra(meta_path, model.nfft, average=average,
                                                           max_spectra=max_spectra)
    if not len(spectra):  # one bad file among several: the report is still written, without it
        log.warning("%s: no spectrum without NaN/inf samples; left out of the evaluation",
                    rec.meta_path or rec.data_path)
        return None
    p = predict_all(model, spectra, freq, np.full(len(spectra), rec.sample_rate))
    fam, counts = np.unique(p["label_index"], return_counts=True)
    order = np.argsort(-counts)
    # Alerts as the flowgraph raises them with this model: a threshold calibrated for means of n scores is for those.
    n = calibrate.model_integrate(model)
    decided = calibrate.integrated_scores(p["anomaly_score"], n)
    out = {
        "spectra": int(len(spectra)),
        "sample_rate": rec.sample_rate,
        "center_freq": rec.center_freq,
        "integrate": n,
        "alert_rate": float(np.mean(decided > model.threshold)),
        "max_score": float(p["anomaly_score"].max()),
        "predicted_families": {labels.FAMILIES[fam[i]]: int(counts[i]) for i in order},
    }
    name = rec.meta_path or rec.data_path
    foreign = sum(map(is_foreign, rec.annotations))
    if truth is None and capture_family is None and foreign:
        log.warning("%s: none of its annotations names a family or an anomaly kind (%s): no truth figures; labels "
                    "read as truth: %s, %s and 'anomaly' (case ignored)", name, foreign_labels(
                        rec.annotations), ", ".join(labels.FAMILIES), ", ".join(labels.ANOMALY_KINDS))
    if capture_family is not None:  # the user's word for its transmitter, over labels that may name a family too
        if truth is not None and truth["family"] is not None:
            log.warning("%s: --capture-families names its transmitter (%s): its family is scored on its bursts, not "
                        "on its annotations", name, capture_family)
        out.update(capture_family_block(capture_family, p["label_index"], spectra))
    elif truth is not None and truth["family"] is not None:
        known = truth["family"] >= 0
        out["family_accuracy"] = metrics.accuracy(truth["family"][known], p["label_index"][known])
        if not known.all():
            out["family_rows"] = int(known.sum())
            log.warning("%s: %d of its %d spectra hold emissions labelled outside specenc's families (%s), whose "
                        "strength is not annotated; left out of family accuracy", name, (~known).sum(), len(known),
                        foreign_labels(filter(is_foreign_emission, rec.annotations)))
    if truth is not None and truth["anomaly"].any():
        out["anomaly_f1"] = metrics.f1_at(truth["anomaly"], decided, model.threshold)["f1"]
        twins = []
        if twin_dir and len(spectra) < calibrate.SITE_INTEGRATE:
            log.warning("%s: its %d spectra are too few for a mean of %d scores; no site-calibrated figure",
                        rec.meta_path, len(spectra), calibrate.SITE_INTEGRATE)
        elif twin_dir:
            # The stretch scored: up to the end of the last spectrum read (max_spectra of them at most).
            scored = min(rec.num_samples, dsp.samples_read(max_spectra, model.nfft, 0.5, average))
            twins = site_twins(rec, twin_dir, scored)
        if twins:
            out["site_calibrated"] = site_calibrated_block(model, twins, truth["anomaly"], p["anomaly_score"],
                                                           average, max_spectra)
    return out


def recording_name(path):
    return os.path.basename(path).replace(".sigmf-meta", "")


def check_recording_names(paths):
    """Results are keyed by recording name: refuse two recordings of one name (from two folders) before scoring."""
    seen = {}
    for path in paths:
        other = seen.setdefault(recording_name(path), path)
        if other != path:
            raise ValueError(f"two recordings named {recording_name(path)!r}: {other} and {path}; rename one")


def evaluate_recordings(model, paths, average=1, capture_families=None, twin_dir=None,
                        max_spectra=MAX_RECORDING_SPECTRA):
    """{recording name: evaluate_recording(...)}, leaving out those without a finite spectrum; capture_families:
    {recording name: family}."""
    check_recording_names(paths)
    families = capture_families or {}
    scored = {recording_name(p): evaluate_recording(model, p, average, max_spectra, families.get(recording_name(p)),
                                                    twin_dir)
              for p in tqdm(paths, desc="recordings", unit="file", disable=None)}  # none in a log file
    return {name: result for name, result in scored.items() if result is not None}


def capture_family_accuracy(recordings):
    """Mean over the captures scored against their transmitter's family (each capture counts once, so one
    long recording does not outweigh the rest); None when none was."""
    accs = [r["family_accuracy"] for r in recordings.values() if "capture_family" in r and r["capture_rows"]]
    return float(np.mean(accs)) if accs else None


TARGETS = (
    ("family accuracy at SNR >= 10 dB >= 0.95", lambda r: r["family"]["accuracy_snr_ge_10"], lambda v: v >= 0.95),
    ("family accuracy overall >= 0.90", lambda r: r["family"]["accuracy"], lambda v: v >= 0.90),
    ("detection recall of emissions at SNR >= 10 dB >= 0.9",
     lambda r: r["detection"]["emissions_snr_ge_10"]["recall"], lambda v: v >= 0.9),
    ("anomaly F1 at calibrated threshold >= 0.95", lambda r: r["anomaly"]["at_threshold"]["f1"], lambda v: v >= 0.95),
    ("false alarms per clean spectrum <= 1e-3", lambda r: r["anomaly"]["false_alarms"]["per_spectrum"],
     lambda v: v <= 1e-3),
)


def check_targets(results):
    out = []
    for name, get, ok in TARGETS:
        v = float(get(results))
        out.append({"name": name, "value": v, "met": bool(np.isfinite(v) and ok(v))})
    return out
