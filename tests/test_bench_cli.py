"""`specenc bench --quick` (the CI smoke test) runs the paper suite's quick mode; no suite and no --quick is
a one-line usage error."""

import sys

import pytest

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


@pytest.mark.parametrize("argv, message", [
    (["psd", "--repeats", "0"], "--repeats=0 must be >= 1"),
    (["psd", "--samples", "inf"], "must be finite"),
    (["model", "--threads", "0"], "--threads=0 must be >= 1"),
    (["model", "--tokens", ","], "--tokens ',' must list counts >= 1"),
    (["model", "--tokens", "abc"], "--tokens 'abc' must list counts >= 1"),
    (["model", "--ref-batches", "0"], "--ref-batches '0' must list counts >= 1"),  # found after the sweep before
    (["model", "--backends", "mha,nope"], "--backends nope: unknown"),
    (["model", "--budget-s", "nan"], "--budget-s=nan must be a finite number >= 0"),
    (["model", "--iters", "-3"], "--iters=-3 must be a finite number >= 0"),
    (["model", "--json", "/proc/version/x.json"], "/proc/version is a file, not a folder"),  # a new folder is made
    (["model", "--json", "/tmp"], "--json /tmp is a folder"),
    (["model", "--backends", "flash"], "--backends flash needs CUDA"),
    (["paper", "--quick", "--budget-ms", "-5"], "--budget-ms=-5.0 must be > 0"),
    (["paper", "--quick", "--mem-cap-gib", "inf"], "--mem-cap-gib=inf must be a finite number > 0"),
])
def test_bad_suite_arguments_are_one_line_before_any_work(argv, message, capsys, monkeypatch):
    import torch

    if "flash" in argv and torch.cuda.is_available():
        pytest.skip("SKIPPED: CUDA is here, so flash is a valid backend")
    monkeypatch.setattr(sys, "argv", ["specenc", "bench"] + argv)  # the suite's options are added from sys.argv
    assert cli.main(["bench"] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
