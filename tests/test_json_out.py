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
    back = json_out.null_to_nan({"auroc": None, "rows": [0.5, None], "cell": "r=0"})  # ablation rows read back
    assert back["cell"] == "r=0" and back["rows"][0] == 0.5 and np.isnan(back["auroc"]) and np.isnan(back["rows"][1])


def test_a_report_rebuilds_from_results_json_with_null_figures():
    """The report rebuilt from results.json, where every NaN figure is null, reads as the one made in memory
    (a null margin, false-alarm rate or site figure raised TypeError in the format specs; audit 29)."""
    import pathlib

    from gnuradio.specenc.training import evaluate, report

    results = json.loads((pathlib.Path(__file__).parents[1] / "docs" / "eval" / "results.json").read_text())
    results["detection"]["all"]["precision"] = float("nan")  # no detections: tp / 0
    results["margins"] = evaluate.margins(results)
    results["anomaly"]["false_alarms"]["per_spectrum"] = float("nan")
    name, rec = next((k, v) for k, v in results["recordings"].items() if "site_calibrated" in v)
    rec["alert_rate"] = rec["site_calibrated"]["precision"] = rec["anomaly_f1"] = float("nan")
    saved = json.loads(json_out.dumps(results), parse_constant=pytest.fail)
    assert saved["recordings"][name]["site_calibrated"]["precision"] is None
    assert report.markdown(saved) == report.markdown(results)
