"""`specenc bench paper --quick` (the CI smoke run) writes complete, well-formed results, plots and report.

Figures are not asserted (benchmarks print figures); structure, completeness and finiteness are.
"""

import argparse
import itertools
import json
import math

import pytest

from gnuradio.specenc.bench import cells, paper

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _strict_json(path):
    def bad(name):
        raise ValueError(f"{path}: non-finite {name} in JSON")
    with open(path) as f:
        return json.load(f, parse_constant=bad)


def _args(*argv):
    p = argparse.ArgumentParser()
    paper.add_arguments(p)
    return p.parse_args(list(argv))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_quick")
    assert paper.main(_args("--quick", "--threads", "1", "--out", str(out))) == 0
    return out, _strict_json(out / "results" / "paper.json")


def _finite_positive(*xs):
    return all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in xs)


def test_every_section_has_its_json_and_the_command(quick):
    out, res = quick
    assert res["sections"] == list(paper.SECTIONS)
    assert res["command"] == f"specenc bench paper --quick --threads 1 --out {out}"
    for name in paper.SECTIONS:
        assert name in res, name
        part = _strict_json(out / "results" / f"{name}.json")
        assert part["command"] == res["command"] and part["machine"]["cpu"] and name in part
    m = res["machine"]
    assert m["torch_threads"] == 1 and m["device"] == "cpu" and m["torch"] and m["usable_cores"] >= 1


def test_latency_covers_every_backend_token_count_and_both_models(quick):
    _, res = quick
    lat = res["latency"]
    assert set(paper.BACKENDS) <= set(lat["backends"])
    assert lat["notes"]["flash"].startswith("not run")
    got = {(r["model"], r["backend"], r["tokens"]) for r in lat["rows"]}
    want = set(itertools.product(("default", paper.REFERENCE_NAME), lat["backends"], (64, 128, 192, 256)))
    assert got == want
    for r in lat["rows"]:
        assert _finite_positive(r["p50"], r["p95"]) and r["p95"] >= r["p50"] and r["n"] == r["iters"]
    ref = next(r for r in lat["rows"] if r["model"] == paper.REFERENCE_NAME)
    assert (ref["d_model"], ref["n_layers"], ref["n_heads"]) == (512, 6, 8)
    pr = lat["predict"]  # the shipped model's whole predict(): weights ship with the package
    assert _finite_positive(pr["p50"], pr["p95"]) and pr["n"] == pr["iters"]


def test_accuracy_sections_are_complete(quick):
    _, res = quick
    comp = res["compression"]["rows"]
    assert [(r["variant"]["dropout_mode"], r["variant"]["drop_ratio"]) for r in comp] == [
        ("none", 0.0), ("fixed", 0.25), ("gumbel", 0.25), ("fixed", 0.5), ("gumbel", 0.5)]
    rope = res["rope"]["rows"]
    assert [r["variant"]["rope"] for r in rope] == ["none", "static", "dynamic"]
    assert set(rope[0]["accuracy_by_band"]) <= {"ism", "cellular", "gnss", "aero", "other"}
    assert sum(rope[0]["band_counts"].values()) == paper.QUICK["n_test"]
    for r in comp + rope + res["norm"]["rows"]:
        for key in ("accuracy", "anomaly_f1", "anomaly_best_f1"):
            assert 0.0 <= r[key]["mean"] <= 1.0 and r[key]["n"] == paper.QUICK["seeds"], (r["name"], key)
    fac = res["factorial"]
    cells_seen = {(r["variant"]["rope"], r["variant"]["dropout_mode"], r["variant"]["backend"]) for r in fac["rows"]}
    assert cells_seen == set(itertools.product(cells.ROPES, cells.DROPOUTS, cells.FACTORIAL_BACKENDS))
    for factor, levels in fac["levels"].items():
        effects = fac["main_effects"][factor]
        assert {k for k in effects if not k.startswith("_")} == set(levels)
        assert all(effects[lvl]["accuracy"]["n"] == 9 for lvl in levels)
    assert [r["norm"] for r in res["norm"]["latency"]] == ["rmsnorm", "layernorm"]
    assert res["cells"]["budget"]["steps"] == paper.QUICK["steps"]


def test_throughput_memory_energy_selector_are_well_formed(quick):
    _, res = quick
    tp = res["throughput"]
    assert {(r["backend"], r["batch"]) for r in tp["rows"]} == set(
        itertools.product(paper.BACKENDS, paper.QUICK["tput_batches"]))
    assert all(_finite_positive(r["spectra_per_s_p50"], r["spectra_per_s_p95"]) for r in tp["rows"])
    mem = res["memory"]
    assert {(r["backend"], r["tokens"]) for r in mem["rows"]} == set(
        itertools.product(paper.BACKENDS, paper.QUICK["mem_tokens"]))
    for r in mem["rows"]:
        assert r["status"] in ("ok", "exceeds cap") and _finite_positive(r["kv_bytes"], r["predicted_peak_bytes"])
        if r["status"] == "ok":
            assert r["peak_bytes"] is None or r["peak_bytes"] >= 0
            assert _finite_positive(r["latency_ms"])
    heads = paper.default_config().n_heads  # the shipped model's, then the reference's 8
    assert [v["ratio"] for v in mem["kv_analytic"].values()] == [h / max(1, h // cells.GQA_GROUP) for h in (heads, 8)]
    e = res["energy"]
    assert (e["value"] == "not measurable here" and e["reason"]) or _finite_positive(e["value"])
    sel = res["selector"]
    assert sel["budget_ms"] == 30.0 and len(sel["table"]) >= 27
    if sel["choice"] is not None:
        fits = [c for c in sel["table"] if c["eligible"] and c["meets_budget"]]
        assert sel["choice"]["accuracy"] == max(c["accuracy"] for c in fits)


def test_report_and_plots_written(quick):
    out, res = quick
    text = (out / "REPORT.md").read_text()
    assert "QUICK RUN" in text and f"Command: `{res['command']}`" in text
    for heading in ("Our figures next to the paper's claims", "## Findings of this run", "## 1. Latency",
                    "## 2. Compression", "## 3. RoPE",
                    "## 4. Factorial", "## 5. RMSNorm", "## 6a. Throughput", "## 6b. Peak memory",
                    "## 7. Energy", "## 8. Latency-budget selector"):
        assert heading in text, heading
    for claim in ("91.4 %", "24.6 ms", "118.7 ms", "52.3 ms", "2.5×", "RMSNorm 91.1 %"):
        assert claim in text, claim
    assert text.count("Machine: ") >= len(paper.SECTIONS) + 1
    assert sorted(res["plots"]) == sorted(["latency_vs_tokens.png", "accuracy_vs_compression.png",
                                           "memory_vs_seqlen.png", "throughput_vs_batch.png"])
    for name in res["plots"]:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, name


def test_sections_subset_and_bad_input():
    assert paper._settings(_args("--sections", "energy,latency"))["sections"] == ("latency", "energy")
    with pytest.raises(ValueError, match="unknown \\['bogus'\\]"):
        paper._settings(_args("--sections", "latency,bogus"))
    with pytest.raises(ValueError, match="--steps=0 must be >= 1"):
        paper._settings(_args("--steps", "0"))
    with pytest.raises(ValueError, match="token count 2000 must be in 1..1024"):
        paper.tokens_config(paper.default_config(), "sdpa", 2000)


def test_token_counts_map_to_kept_tokens():
    base = paper.default_config()
    for backend in ("sdpa", "gqa", "latent"):
        for t in (64, 128, 192, 256):
            cfg = paper.tokens_config(base, backend, t)
            assert cfg.n_kept == t and cfg.backend == backend
    assert paper.tokens_config(base, "gqa", 128).n_kv_heads == max(1, base.n_heads // cells.GQA_GROUP)


def test_token_counts_widen_the_stride_then_drop_tokens():
    base = paper.default_config().replace(pool_stride=8, dropout_mode="none", drop_ratio=0.0)
    shapes = {t: paper.tokens_config(base, "sdpa", t) for t in (64, 128, 192, 256)}
    assert {t: (c.pool_stride, c.n_kept) for t, c in shapes.items()} == {64: (16, 64), 128: (8, 128),
                                                                         192: (4, 192), 256: (4, 256)}
    assert shapes[128].dropout_mode == "none" and shapes[192].dropout_mode == "gumbel"
    fixed = base.replace(pool_stride=4, dropout_mode="fixed", drop_ratio=0.25)
    assert paper.tokens_config(fixed, "sdpa", 192).dropout_mode == "fixed"


def test_render_only_rewrites_report_and_plots_from_the_json(quick):
    out, res = quick
    before = (out / "REPORT.md").read_text()
    for name in ["REPORT.md"] + res["plots"]:
        (out / name).unlink()
    assert paper.main(_args("--render-only", "--out", str(out))) == 0
    assert (out / "REPORT.md").read_text() == before
    assert all((out / name).read_bytes()[:8] == PNG_MAGIC for name in res["plots"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        paper.main(_args("--render-only", "--out", str(out / "nowhere")))
    odd = out / "odd"
    (odd / "results").mkdir(parents=True)
    (odd / "REPORT.md").write_text(before)
    for shape in ("[1, 2]", json.dumps({k: v for k, v in res.items() if k != "sections"})):  # a traceback before
        (odd / "results" / "paper.json").write_text(shape)
        with pytest.raises(ValueError, match="is no complete results file of `specenc bench paper`"):
            paper.main(_args("--render-only", "--out", str(odd)))
        assert (odd / "REPORT.md").read_text() == before  # it had been emptied before the error


def test_the_compression_plot_puts_the_shipped_model_at_its_own_drop_ratio(monkeypatch, tmp_path):
    """The star stood at r = 0.25 "gumbel" for a shipped network that keeps every token (audit 59)."""
    import json
    import pathlib

    from gnuradio.specenc.bench import plots

    res = json.loads((pathlib.Path(__file__).parents[1] / "bench" / "results" / "paper.json").read_text())
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    plots.compression(res, tmp_path / "c.png")
    stars = [line for ax in figures[0].axes for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 2 and all(list(s.get_xdata()) == [0.0] for s in stars)
    assert stars[0].get_label() == "shipped default (converged, no dropout)"


def test_latent_is_said_to_win_from_a_length_on_only_when_it_wins_at_every_longer_one():
    """A win at 256 tokens was reported as "fastest from 256 tokens on" while latent lost from 2048 (audit 59)."""
    from gnuradio.specenc.bench.report import _where

    assert _where({256: (False, True), 1024: (False, True), 2048: (False, False)}, 1) == (
        "at 256, 1024 tokens only (not at the longest tried)")
    assert _where({256: (False, False), 1024: (False, True), 2048: (False, True)}, 1) == "from 1024 tokens on"
    assert _where({256: (False, True)}, 0) is None
