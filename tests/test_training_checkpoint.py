"""Checkpoint round trip (safetensors + JSON, no pickle), config validation and schedules."""

import json
import re

import pytest
import torch

from gnuradio.specenc.training import checkpoint, config, train


def _step(net, opt, x):
    loss = ((net(x) - 1.0) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_checkpoint_restores_weights_optimizer_and_rng(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 4)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    x = torch.randn(16, 8)
    _step(net, opt, x)
    checkpoint.save(tmp_path, net, opt, {"step": 1})
    expected_noise = torch.randn(3)
    _step(net, opt, x)
    expected = net.weight.detach().clone()

    net2 = torch.nn.Linear(8, 4)
    opt2 = torch.optim.AdamW(net2.parameters(), lr=1e-2)
    state = checkpoint.load(tmp_path, net2, opt2)
    assert state["step"] == 1
    assert torch.equal(torch.randn(3), expected_noise)  # torch RNG restored
    _step(net2, opt2, x)
    assert torch.equal(net2.weight, expected)  # Adam moments restored exactly
    assert not list(tmp_path.glob("*.pt"))
    json.loads((tmp_path / checkpoint.STATE).read_text())


def test_a_save_cut_short_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 4)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    x = torch.randn(16, 8)
    _step(net, opt, x)
    checkpoint.save(tmp_path, net, opt, {"step": 1}, lambda path: checkpoint.save_tensors({"x": torch.ones(2)}, path))
    weights_1 = net.weight.detach().clone()
    _step(net, opt, x)
    _step(net, opt, x)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "_write_state", killed)  # Ctrl-C after step 3's tensors, before its JSON
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, net, opt, {"step": 3})
    monkeypatch.undo()
    net2 = torch.nn.Linear(8, 4)
    opt2 = torch.optim.AdamW(net2.parameters(), lr=1e-2)
    assert checkpoint.load(tmp_path, net2, opt2)["step"] == 1
    assert torch.equal(net2.weight, weights_1)
    assert opt2.state_dict()["state"][0]["step"] == 1  # the moments of the same step
    assert checkpoint.file_path(tmp_path, "pool").endswith("pool-1.safetensors")
    # The next whole save keeps only its own files.
    checkpoint.save(tmp_path, net, opt, {"step": 3})
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["checkpoint-3.safetensors",
                                                                       "optimizer-3.safetensors"]


def test_resume_without_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint.json"):
        checkpoint.load(tmp_path, torch.nn.Linear(2, 2), torch.optim.AdamW(torch.nn.Linear(2, 2).parameters()))


def test_resume_of_a_version1_run_is_refused_by_name(tmp_path):
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(net.parameters())
    checkpoint.save(tmp_path, net, opt, {"step": 3})
    state = json.loads((tmp_path / checkpoint.STATE).read_text())
    del state["weights_version"]  # as runs before model file version 2 wrote it
    (tmp_path / checkpoint.STATE).write_text(json.dumps(state))
    with pytest.raises(ValueError, match="older gr-specenc.*start the run again"):
        checkpoint.load(tmp_path, net, opt)


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match="unknown keys \\['lr_typo'\\]"):
        config.TrainConfig.from_dict({"lr_typo": 1})
    with pytest.raises(ValueError, match="tau_end=2.0"):
        config.TrainConfig.from_dict({"tau_end": 2.0})
    with pytest.raises(ValueError, match="training config: unknown band 'ism2'"):
        config.TrainConfig.from_dict({"band_weights": {"ism2": 3}})
    with pytest.raises(ValueError, match="training config: band_weights=.* must be >= 0"):
        config.TrainConfig.from_dict({"band_weights": {"ism": -1}})
    for weight in ("3", float("nan"), float("inf")):
        with pytest.raises(ValueError, match="training config: band_weights=.* must map band names to numbers"):
            config.TrainConfig.from_dict({"band_weights": {"ism": weight}})
    with pytest.raises(ValueError, match=re.escape("training config: bands=[] names no band")):
        config.TrainConfig.from_dict({"bands": []})
    # JSON types and ranges, before any training (they failed after it, or silently meant something else)
    for key, value, message in [("batch_size", "64", "batch_size='64' must be an integer"),
                                ("batch_size", 64.5, "must be an integer"), ("batch_size", True, "must be an integer"),
                                ("lr", "2e-3", "lr='2e-3' must be a number"), ("model", [1], "must be an object"),
                                ("bands", "ism", "bands='ism' must be a list"),
                                ("seed", -1, "seed=-1 must be in 0..2^63-1"),
                                ("calib_spectra", 0, "calib_spectra=0 must be >= 1"), ("val_spectra", 0, ">= 1"),
                                ("patience", 0, "patience=0 must be >= 1"), ("max_minutes", -5, "max_minutes=-5"),
                                ("min_lr_ratio", 2, "min_lr_ratio=2 must be in 0..1"), ("grad_clip", float("nan"),
                                                                                      "grad_clip=nan")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            config.TrainConfig.from_dict({key: value})
    with pytest.raises(ValueError, match="set nfft at the top level"):
        config.TrainConfig.from_dict({"model": {"nfft": 512}})
    assert config.TrainConfig.from_dict({"model": {"n_families": 9, "n_bands": 5}})  # the generator's own: a run's
    # Found by audit 40: each failed later (after the validation set, or an epoch in, as NaN scores) or as a traceback.
    for over, message in [({"lr": float("inf")}, "lr=inf must be a finite number"),
                          ({"model": {"mlp_ratio": float("inf")}}, "mlp_ratio=inf must be a finite number"),
                          ({"model": {"n_layers": True}}, "n_layers=True must be an integer"),
                          ({"model": {"n_families": 4}}, "n_families=4 must be 9, the size of the label set"),
                          ({"lr": 10**400}, "must be a finite number"),
                          ({"band_weights": {"ism": 1e308, "gnss": 1e308}}, "must map band names to numbers"),
                          ({"model": {"n_heads": 3}}, "d_model=64 must be a multiple of n_heads=3"),
                          ({"nfft": 1000}, "nfft=1000 must be a power of two"),
                          ({"bands": [["ism"]]}, "must be a list of band names"),
                          ({"seed": 2**64}, "seed=18446744073709551616 must be in 0..2^63-1"),
                          ({"threads": 2**40}, "threads=1099511627776 must be in 1..1024")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            config.TrainConfig.from_dict(over)
    with pytest.raises(ValueError, match="a JSON object of settings, not list"):
        config.TrainConfig.from_dict([1, 2])
    assert config.TrainConfig.from_dict({"lr": 1, "max_minutes": 40}).lr == 1  # integers where numbers go
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"seed": 5, "lr": 1e-3}))
    cfg = config.TrainConfig.load(path)
    assert (cfg.seed, cfg.lr, cfg.batch_size) == (5, 1e-3, 64)


def test_schedules_anneal_temperature_and_warm_up_the_learning_rate():
    cfg = config.TrainConfig(steps_per_epoch=100, max_epochs=10, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    assert train.tau_at(cfg, 0.0) == pytest.approx(1.0)
    assert train.tau_at(cfg, 1.0) == pytest.approx(0.1)
    assert train.tau_at(cfg, 0.5) == pytest.approx(0.1 ** 0.5)
    assert train.lr_at(cfg, 0) == pytest.approx(1e-4)
    assert train.lr_at(cfg, 9) == pytest.approx(1e-3)
    assert train.lr_at(cfg, cfg.total_steps) == pytest.approx(1e-4)


def test_a_time_budget_pulls_the_schedule_forward():
    cfg = config.TrainConfig(steps_per_epoch=100, max_epochs=10, max_minutes=10)
    assert train.progress(cfg, 100, elapsed_s=60) == pytest.approx(0.1)
    assert train.progress(cfg, 100, elapsed_s=300) == pytest.approx(0.5)  # slow machine: time leads
    assert train.progress(cfg, 900, elapsed_s=60) == pytest.approx(0.9)  # fast machine: steps lead
    assert train.progress(cfg, 100, elapsed_s=900) == 1.0
