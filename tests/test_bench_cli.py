"""`specenc bench --quick` (the CI smoke test) runs the paper suite's quick mode; no suite and no --quick is
a one-line usage error."""

from gnuradio.specenc import cli
from gnuradio.specenc.bench import paper


def test_bench_quick_without_suite_runs_paper_quick(monkeypatch):
    seen = {}

    def fake_main(args):
        seen.update(vars(args))
        return 0
    monkeypatch.setattr(paper, "main", fake_main)
    assert cli.main(["bench", "--quick"]) == 0
    assert seen["suite"] == "paper" and seen["quick"] is True
    assert seen["out"] is None and seen["threads"] == 2  # the paper suite's defaults (out: out/bench_quick)


def test_bench_without_suite_or_quick_is_a_usage_error(capsys):
    assert cli.main(["bench"]) == 2
    assert "choose a benchmark SUITE (psd, model, flowgraph, paper) or --quick" in capsys.readouterr().err


def test_quick_before_a_suite_reaches_it(monkeypatch, capsys):
    from gnuradio.specenc.bench import model

    seen = {}
    monkeypatch.setattr(model, "main", lambda args: seen.update(vars(args)) or 0)
    assert cli.main(["bench", "--quick", "model"]) == 0
    assert seen["suite"] == "model" and seen["quick"] is True
    assert cli.main(["bench", "--quick", "psd"]) == 2
    assert "--quick: `specenc bench psd` has no quick mode" in capsys.readouterr().err
