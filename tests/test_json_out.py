"""JSON files strict readers accept: non-finite figures become null, NumPy values plain numbers."""

import io
import json

import numpy as np
import pytest

from gnuradio.specenc import json_out


def test_non_finite_figures_are_written_as_null_and_numpy_values_as_numbers():
    f = io.StringIO()
    json_out.dump({"auroc": float("nan"), "best": np.float32(np.inf), "n": np.int64(3),
                   "rows": [np.float64(0.5), -np.inf, (1, np.nan)], "ok": np.bool_(True), "a": np.array([1.0, np.nan])},
                  f)
    assert json.loads(f.getvalue(), parse_constant=pytest.fail) == {
        "auroc": None, "best": None, "n": 3, "rows": [0.5, None, [1, None]], "ok": True, "a": [1.0, None]}
