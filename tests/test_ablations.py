"""The ablation tables' cells: which share one training run."""

import pathlib

from gnuradio.specenc.training import ablations
from gnuradio.specenc.training.config import TrainConfig

CONFIGS = pathlib.Path(__file__).parents[1] / "configs"


def test_cells_equal_to_the_base_network_share_its_run():
    """On the paper's base (gumbel r = 0.25, dynamic RoPE, RMSNorm) the rope-dynamic and rmsnorm cells are the
    r=0.25 gumbel run; on the shipped base (no dropout) they are the r=0 run (they were always aliased to r=0.25
    gumbel, which misreported them on any other base)."""
    paper = ablations.shared_runs(TrainConfig.load(CONFIGS / "ablation_base.json"))
    shipped = ablations.shared_runs(TrainConfig.load(CONFIGS / "default.json"))
    assert {c for c in paper if paper[c] != c} == {"rope dynamic", "rmsnorm"}
    assert paper["rope dynamic"] == paper["rmsnorm"] == "r=0.25 gumbel"
    assert {c for c in shipped if shipped[c] != c} == {"rope dynamic", "rmsnorm"}
    assert shipped["rope dynamic"] == shipped["rmsnorm"] == "r=0 (no dropout)"
    assert shipped["r=0.25 gumbel"] == "r=0.25 gumbel"


def test_the_report_rebuilds_from_saved_rows(tmp_path):
    rows = [{"cell": "r=0.25 gumbel", "train_s": 1.0, "family_accuracy": 0.5, "family_accuracy_snr_ge_10": 0.6,
             "anomaly_f1_at_threshold": 0.1, "anomaly_best_f1": 0.7, "anomaly_auroc": 0.8, "detection_recall": 0.9}]
    runs = ablations.shared_runs(TrainConfig.load(CONFIGS / "ablation_base.json"))
    md = ablations.markdown(rows, runs, 300, 1024, 1024, "cmd")
    assert "| rope dynamic | 50.0 % | 60.0 % |" in md and "| rmsnorm | 50.0 % |" in md
    assert "Not run" in md and "r=0 (no dropout)" in md.split("Not run")[1]


def test_cells_sharing_a_run_train_it_once(tmp_path, monkeypatch):
    """--cells naming the base run three ways trained it three times and wrote three rows (audit 55)."""
    trained = []

    def fake_cell(name, cfg, out_dir, n_test, n_clean, test_seed):
        trained.append(name)
        return {"cell": name, "train_s": 1.0, "family_accuracy": 0.5, "family_accuracy_snr_ge_10": 0.5,
                "anomaly_f1_at_threshold": 0.1, "anomaly_best_f1": 0.5, "anomaly_auroc": 0.5, "detection_recall": 0.5}

    monkeypatch.setattr(ablations, "run_cell", fake_cell)
    ablations.main(["--base", str(CONFIGS / "ablation_base.json"), "--out", str(tmp_path), "--work", str(tmp_path),
                    "--cells", "rope dynamic", "rmsnorm", "r=0.25 gumbel", "layernorm"])
    assert trained == ["r=0.25 gumbel", "layernorm"]
    md = (tmp_path / "ablations.md").read_text()
    assert "| rope dynamic | 50.0 % |" in md and "| rmsnorm | 50.0 % |" in md
