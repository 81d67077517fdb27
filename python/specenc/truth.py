"""Which SigMF annotations are truth: emissions and injected anomalies named in specenc's vocabulary.

`specenc synth` labels each emitter with its family and each ghost `anomaly` with `specenc:kind`; other tools'
annotations count where their core:label names a family or an anomaly kind (case ignored: "FM", "Jamming").
Any other label is foreign: with frequency edges an emission of a family unknown here ("LTE", "WiFi"), without
them a note (a whole-capture description). The model's own output (`specenc run`, the alert sink: annotations with
a score or confidence) is never truth.
"""

from collections import Counter

from .labels import ANOMALY_KINDS, FAMILIES


def is_model_output(ann):
    return "specenc:score" in ann or "specenc:confidence" in ann


def _label(ann):
    return str(ann.get("core:label", "")).strip().lower()


def family(ann):
    """The family a truth annotation names, or None."""
    label = _label(ann)
    return label if label in FAMILIES and not is_model_output(ann) else None


def anomaly_kind(ann):
    """The kind of anomaly a truth annotation marks ("unknown" for a bare `anomaly`), or None."""
    if is_model_output(ann):
        return None
    label = _label(ann)
    if ann.get("specenc:kind"):
        return str(ann["specenc:kind"])
    if label in ANOMALY_KINDS:
        return label
    return "unknown" if label == "anomaly" else None


def is_truth(ann):
    return family(ann) is not None or anomaly_kind(ann) is not None


def is_foreign(ann):
    """An annotation another tool labelled outside this vocabulary (the model's output and unlabelled notes aside)."""
    return bool(_label(ann)) and not is_model_output(ann) and not is_truth(ann)


def is_foreign_emission(ann):
    """A foreign annotation placed in frequency (both edges): an emission whose family is unknown here."""
    return is_foreign(ann) and "core:freq_lower_edge" in ann and "core:freq_upper_edge" in ann


def foreign_labels(annotations, most=5):
    """The labels of the foreign annotations, for a message: "'LTE' x3, 'WiFi'" (the `most` commonest)."""
    counts = Counter(str(a["core:label"]) for a in annotations if is_foreign(a))
    return ", ".join(f"{label!r}" + (f" x{n}" if n > 1 else "") for label, n in counts.most_common(most))
