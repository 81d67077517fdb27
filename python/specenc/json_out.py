"""JSON that strict readers (jq, JavaScript, Go) accept: a figure that is not a finite number (an AUROC over
one class, a precision without detections) is written as null, never as the NaN or Infinity that Python's
json module writes by default. NumPy scalars and arrays are written as the numbers and lists they hold."""

import json
import math

import numpy as np


def finite_or_null(obj):
    """obj with every non-finite float replaced by None (dicts, lists, tuples and NumPy values walked)."""
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [finite_or_null(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def null_to_nan(obj):
    """The inverse for figures read back: every None in obj's dicts and lists becomes NaN again."""
    if isinstance(obj, dict):
        return {k: null_to_nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [null_to_nan(v) for v in obj]
    return math.nan if obj is None else obj


def dump(obj, f, **kwargs):
    json.dump(finite_or_null(obj), f, allow_nan=False, **kwargs)


def dumps(obj, **kwargs):
    return json.dumps(finite_or_null(obj), allow_nan=False, **kwargs)
