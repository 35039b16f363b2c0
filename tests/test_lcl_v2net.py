"""LCL-V2Net: held-out-by-crop task, frozen front end, corruptions, benchmark files (issue 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import data
import lcl


@pytest.fixture(scope="module")
def small_task():
    cfg = lcl.RecognitionConfig(image_size=128, tile_size=64, crop_size=48, test_crops_per_tile=3, steps=3,
                                batch_size=8, corruptions=("gaussian_noise", "contrast"), severities=(1, 5),
                                progress=False)
    return cfg, lcl.CropTask(cfg, data.natural_images(size=128, names=["camera", "moon", "coins"]))


def test_training_crops_never_touch_held_out_tiles(small_task):
    cfg, task = small_task
    c = cfg.crop_size
    pos = task.train_positions
    assert len(pos) > 0
    for i, y0, x0 in pos[torch.randperm(len(pos), generator=torch.Generator().manual_seed(0))[:500]].tolist():
        assert not task.test_mask[i, y0:y0 + c, x0:x0 + c].any()
    # every image has held-out tiles (a quarter of 4 tiles = 1 tile), and three crops per held-out tile
    assert task.test_mask.sum((1, 2)).tolist() == [64 * 64] * 3
    assert len(task.test_y) == 3 * 1 * 3 and task.test_x.shape[1:] == (1, c, c)
    # each test crop is a crop of its image inside the held-out tile
    x, _ = task.train_batch(16, torch.Generator().manual_seed(1))
    assert x.shape == (16, 1, c, c)


def test_frozen_lcl_front_end_does_not_learn(small_task):
    cfg, task = small_task
    front = lcl.V1V2(lcl.LCLConfig.preset("demo").model)
    before = {k: v.clone() for k, v in front.state_dict().items()}
    net = lcl.build_v2net("lcl", front, lcl.BackEndConfig(widths=(8,), blocks=1), task.n_classes)
    back = net.backend.fc.weight.clone()
    lcl.train_v2net(net, task, cfg)
    assert all(torch.equal(before[k], v) for k, v in net.front_end.state_dict().items())
    assert all(p.grad is None for p in net.front_end.parameters())
    assert not torch.equal(back, net.backend.fc.weight)
    net.train()
    assert not net.front_end.training  # stays in eval mode


@pytest.mark.parametrize("kind", ["pixels", "supervised"])
def test_baselines_train_their_front_end(small_task, kind):
    cfg, task = small_task
    net = lcl.build_v2net(kind, lcl.V1V2(lcl.LCLConfig.preset("demo").model), lcl.BackEndConfig(widths=(8,), blocks=1),
                          task.n_classes)
    first = next(net.front_end.parameters()).clone()
    lcl.train_v2net(net, task, cfg)
    assert not torch.equal(first, next(net.front_end.parameters()))


def test_v2net_resume_after_interruption_is_bit_identical(small_task, tmp_path, monkeypatch):
    cfg, task = small_task
    cfg = __import__("dataclasses").replace(cfg, steps=5, warmup_steps=2, grad_clip=1.0)
    backend = lcl.BackEndConfig(widths=(8,), blocks=1)

    def net():
        return lcl.build_v2net("pixels", None, backend, task.n_classes, seed=3)

    full = net()
    log_full = lcl.train_v2net(full, task, cfg)
    # a run killed right after its checkpoint at step 2 of 5 ...
    save = data.save_checkpoint

    def save_then_die(*args, **kw):
        save(*args, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        lcl.train_v2net(net(), task, cfg, checkpoint=tmp_path / "v.pt", checkpoint_every=2)
    monkeypatch.setattr(data, "save_checkpoint", save)
    state = data.load_checkpoint(tmp_path / "v.pt")
    assert state["step"] == 2 and state["format"] == data.CHECKPOINT_FORMAT and state["provenance"]["git_commit"]
    # ... resumed into a fresh network (other initial weights: the checkpoint's replace them) ends where the
    # uninterrupted run did, to the bit
    resumed = lcl.build_v2net("pixels", None, backend, task.n_classes, seed=4)
    log_res = lcl.train_v2net(resumed, task, cfg, checkpoint=tmp_path / "v.pt", checkpoint_every=2, resume=True)
    assert log_res == log_full
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="other settings"):
        lcl.train_v2net(net(), task, __import__("dataclasses").replace(cfg, lr=0.1), checkpoint=tmp_path / "v.pt",
                        resume=True)
    with pytest.raises(ValueError, match="needs the checkpoint"):
        lcl.train_v2net(net(), task, cfg, resume=True)


def test_corruptions_are_graded_and_exact():
    x = data.stimuli_to_tensor(data.natural_images(size=64, names=["camera", "moon", "coins", "astronaut"]))
    assert torch.equal(lcl.corrupt(x, "gaussian_blur", 0), x)
    for name in lcl.CORRUPTIONS:
        dist = [float((lcl.corrupt(x, name, s, generator=torch.Generator().manual_seed(1)) - x).abs().mean())
                for s in range(1, 6)]
        assert all(b >= a - 1e-6 for a, b in zip(dist, dist[1:])), (name, dist)  # more severe, farther
        y = lcl.corrupt(x, name, 5, generator=torch.Generator().manual_seed(1))
        assert y.min() >= 0 and y.max() <= 1
    c = lcl.corrupt(x, "contrast", 2)
    m = x.mean(dim=(-2, -1), keepdim=True)
    assert torch.allclose(c - m, 0.4 * (x - m), atol=1e-6)
    noise = lcl.corrupt(x, "gaussian_noise", 3, generator=torch.Generator().manual_seed(2)) - x
    assert float(noise.std()) == pytest.approx(0.08, rel=0.05)
    sp = lcl.corrupt(x, "salt_pepper", 4, generator=torch.Generator().manual_seed(3))
    assert float(((sp == 0) | (sp == 1)).float().mean()) == pytest.approx(0.1, abs=0.02)
    with pytest.raises(ValueError, match="unknown corruption"):
        lcl.corrupt(x, "fog", 1)


def test_corruption_benchmark_writes_results_and_figure(small_task, tmp_path):
    cfg, task = small_task
    model = lcl.V1V2(lcl.LCLConfig.preset("demo").model)
    res = lcl.corruption_benchmark(model, lcl.BackEndConfig(widths=(8,), blocks=1), cfg, tmp_path, task=task)
    acc = res["accuracy"]
    assert acc.dims == ("front_end", "corruption", "severity")
    assert list(acc.front_end.values) == ["lcl", "pixels"] and list(acc.severity.values) == [0, 1, 5]
    assert ((acc >= 0) & (acc <= 1)).all()
    # severity 0 is the clean accuracy, the same for every corruption
    assert np.allclose(acc.sel(severity=0).values, acc.sel(severity=0).values[:, :1])
    for name in ("corruptions.nc", "corruptions.png", "corruptions.pdf", "v2net_lcl.pt", "v2net_pixels.pt"):
        assert (tmp_path / name).is_file(), name
    again = data.load(tmp_path / "corruptions.nc")
    assert np.allclose(again["accuracy"].values, acc.values)
    assert lcl.plot_corruptions(tmp_path / "corruptions.nc", tmp_path / "replot")[0].is_file()


def test_recognition_config_errors(tmp_path):
    with pytest.raises(ValueError, match="front_ends"):
        lcl.RecognitionConfig(front_ends=("vgg",))
    with pytest.raises(ValueError, match="unknown corruption"):
        lcl.RecognitionConfig(corruptions=("fog",))
    p = tmp_path / "v.toml"
    p.write_text("steps = 10\nepochs = 3\n")
    with pytest.raises(ValueError, match="unknown config key"):
        lcl.RecognitionConfig.load(p)
    p.write_text("[backend]\nwidths = [16]\ndepth = 3\n")
    with pytest.raises(ValueError, match="unknown config key.*depth"):
        lcl.RecognitionConfig.load(p)
    cfg = lcl.RecognitionConfig(image_size=64, tile_size=32, crop_size=24)
    task = lcl.CropTask(cfg, data.natural_images(size=64, names=["camera", "moon"]))
    with pytest.raises(ValueError, match="smaller than the stage-2 receptive field"):
        lcl.corruption_benchmark(lcl.V1V2(), lcl.BackEndConfig(), cfg, task=task)


def test_cli_filters_and_v2net_commands(tmp_path, capsys):
    from lcl.__main__ import main

    cfg = lcl.LCLConfig.preset("demo", model={"stage1": {"channels": 4}, "stage2": {"channels": 4}},
                                       train={"steps": (1, 1), "batch_size": 4, "progress": False})
    lcl.train(cfg, tmp_path / "run")
    assert main(["filters", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "filters.png").is_file() and (tmp_path / "run" / "filters.pdf").is_file()
    toml = tmp_path / "v.toml"
    toml.write_text("image_size = 128\nsteps = 2\nbatch_size = 4\ncorruptions = [\"contrast\"]\nseverities = [5]\n"
                    "progress = false\n[backend]\nwidths = [8]\n")
    assert main(["v2net", str(tmp_path / "run"), "--config", str(toml), "--out", str(tmp_path / "v2")]) == 0
    assert (tmp_path / "v2" / "corruptions.nc").is_file()
    assert "lcl" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("front_ends = [\"vgg\"]\n")
    assert main(["v2net", str(tmp_path / "run"), "--config", str(bad)]) == 2
    assert main(["filters", str(tmp_path / "nothing")]) == 2
