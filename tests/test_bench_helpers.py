"""Helpers of the paper benchmark: statistics, the latency-budget selector, memory accounting, energy counters."""

import numpy as np
import pytest

from gnuradio.specenc.bench import energy, memory, paper, selector, stats
from gnuradio.specenc.model import ModelConfig


def test_percentiles_and_mean_sd():
    s = stats.percentiles(np.arange(1, 101, dtype=float))  # 1..100 ms
    assert s["p50"] == pytest.approx(50.5) and s["p95"] == pytest.approx(95.05) and s["n"] == 100
    m = stats.mean_sd([0.8, 0.9, 1.0, float("nan")])
    assert m["mean"] == pytest.approx(0.9) and m["sd"] == pytest.approx(0.1) and m["n"] == 3
    assert stats.mean_sd([0.5]) == {"mean": 0.5, "sd": 0.0, "n": 1}
    with pytest.raises(ValueError, match="no timing samples"):
        stats.percentiles([])


def test_time_ms_calls_warmup_plus_iters():
    calls = []
    t = stats.time_ms(lambda: calls.append(1), warmup=3, iters=7)
    assert len(calls) == 10 and t.shape == (7,) and np.all(t >= 0)
    with pytest.raises(ValueError, match="iters=0"):
        stats.time_ms(lambda: None, 1, 0)


CANDS = [
    {"name": "big", "accuracy": 0.93, "p50_ms": 40.0, "p95_ms": 45.0},
    {"name": "mid", "accuracy": 0.90, "p50_ms": 20.0, "p95_ms": 29.0},
    {"name": "mid-fast", "accuracy": 0.90, "p50_ms": 5.0, "p95_ms": 6.0},
    {"name": "small", "accuracy": 0.80, "p50_ms": 1.0, "p95_ms": 1.5},
    {"name": "untrained", "accuracy": None, "p50_ms": 0.5, "p95_ms": 0.6},
]


def test_selector_picks_most_accurate_within_budget_ties_to_faster():
    sel = selector.select(CANDS, 30.0)
    assert sel["choice"]["name"] == "mid-fast"  # 0.90 within budget; faster of the tie
    assert selector.select(CANDS, 50.0)["choice"]["name"] == "big"
    assert selector.select(CANDS, 2.0)["choice"]["name"] == "small"  # "untrained" is faster but has no accuracy
    assert selector.select(CANDS, 42.0, percentile="p50")["choice"]["name"] == "big"  # p50 40 fits, p95 45 not
    none = selector.select(CANDS, 0.1)
    assert none["choice"] is None and "no candidate" in none["reason"]
    assert [c["name"] for c in sel["table"]][0] == "big" and not sel["table"][-1]["eligible"]
    with pytest.raises(ValueError, match="must be > 0"):
        selector.select(CANDS, 0)


def test_kv_bytes_and_predicted_peak():
    cfg = ModelConfig()  # d64, 2 layers, 4 heads of 16
    assert memory.kv_bytes(cfg, 1000) == 2 * 2 * 4 * 1000 * 16 * 4
    gqa = cfg.replace(backend="gqa", n_kv_heads=2)
    assert memory.kv_bytes(cfg, 4096) == 2 * memory.kv_bytes(gqa, 4096)
    mha = cfg.replace(backend="mha")
    # mha's (T, T) scores: 4x the tokens -> 16x the workspace; latent's grows linearly
    assert memory.workspace_bytes(mha, 4096) == 16 * memory.workspace_bytes(mha, 1024)
    lat = cfg.replace(backend="latent")
    assert memory.workspace_bytes(lat, 4096) == 4 * memory.workspace_bytes(lat, 1024)
    assert memory.predicted_peak_bytes(mha, 16384) > 8 * memory.GIB > memory.predicted_peak_bytes(lat, 16384)


def test_measured_peak_sees_a_known_allocation():
    if not memory.rss_peak_supported():
        pytest.skip("SKIPPED: /proc/self/clear_refs peak reset is not available on this system")
    n = 256 * memory.MIB

    def alloc():
        a = np.ones(n // 8)  # touched pages: resident
        del a
    peak, ms = memory.measure_peak_bytes(alloc)
    assert 0.95 * n <= peak <= 1.1 * n and ms > 0
    assert memory.measure_peak_bytes(lambda: None)[0] < 8 * memory.MIB
    assert memory.fmt_bytes(None) == "not measurable here" and memory.fmt_bytes(3 * memory.GIB) == "3.00 GiB"


def test_energy_without_counters_says_not_measurable(monkeypatch, tmp_path):
    monkeypatch.setattr(energy, "POWERCAP", str(tmp_path / "absent"))
    calls = []
    res = energy.measure(lambda: calls.append(1), 1, 5)
    assert res["value"] == "not measurable here" and "does not exist" in res["reason"] and not calls
    (tmp_path / "absent").mkdir()
    assert energy.probe()[0] is None and "not readable" in energy.probe()[1]


def test_energy_reads_rapl_package_counters_with_wraparound(monkeypatch, tmp_path):
    pkg, sub = tmp_path / "intel-rapl:0", tmp_path / "intel-rapl:0:0"
    for d, name in ((pkg, "package-0"), (sub, "core")):
        d.mkdir()
        (d / "name").write_text(name + "\n")
        (d / "max_energy_range_uj").write_text("1000000000\n")
        (d / "energy_uj").write_text("999000000\n")
    monkeypatch.setattr(energy, "POWERCAP", str(tmp_path))
    state = {"uj": 999_000_000}

    def work():  # each call "uses" 0.5 J on the package; the counter wraps at 1000 J
        state["uj"] = (state["uj"] + 500_000) % 1_000_000_000
        (pkg / "energy_uj").write_text(f"{state['uj']}\n")
        (sub / "energy_uj").write_text("0\n")  # sub-domains are inside the package figure: ignored
    res = energy.measure(work, spectra_per_call=2, calls=4)
    assert res["source"] == "rapl" and res["joules"] == pytest.approx(2.0)
    assert res["value"] == pytest.approx(0.25) and res["unit"] == "J/spectrum"
    cold = {"calls": 0}

    def first_call_dear():  # the first call of a model costs far more (allocations): not in the figure (audit 59)
        cold["calls"] += 1
        state["uj"] = (state["uj"] + (5_000_000 if cold["calls"] == 1 else 500_000)) % 1_000_000_000
        (pkg / "energy_uj").write_text(f"{state['uj']}\n")
    assert energy.measure(first_call_dear, spectra_per_call=2, calls=4)["joules"] == pytest.approx(2.0)


def test_main_effects_average_over_the_other_factors():
    rows = []
    for i, (rope, drop, backend) in enumerate([(r, d, b) for r in ("none", "dynamic") for d in ("none", "gumbel")
                                               for b in ("sdpa", "latent")]):
        acc = 0.5 + (0.2 if rope == "dynamic" else 0.0) + (0.1 if backend == "latent" else 0.0)
        rows.append({"variant": {"rope": rope, "dropout_mode": drop, "backend": backend},
                     "accuracy": acc, "anomaly_f1": 0.5})
    eff = paper.main_effects(rows)
    assert eff["rope"]["dynamic"]["accuracy"]["mean"] == pytest.approx(0.75)
    assert eff["rope"]["none"]["accuracy"]["mean"] == pytest.approx(0.55)
    assert eff["rope"]["_range_accuracy_pp"] == pytest.approx(20.0)
    assert eff["dropout"]["_range_accuracy_pp"] == pytest.approx(0.0)
    assert eff["backend"]["_range_accuracy_pp"] == pytest.approx(10.0)


def test_round_robin_times_every_call_the_same_number_of_times():
    counts = [0, 0, 0]

    def make(i):
        def fn():
            counts[i] += 1
        return fn
    out = stats.round_robin_ms([make(i) for i in range(3)], warmup=2, iters=25, chunks=4)
    assert [len(a) for a in out] == [25, 25, 25] and counts == [27, 27, 27]
