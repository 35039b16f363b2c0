"""lcl: model geometry, deformations, losses, layerwise training, resume, config validation (issue 4)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import data
import lcl
from lcl import losses

REPO = Path(__file__).resolve().parents[1]


def tiny_config(**components) -> lcl.LCLConfig:
    """A few-second run: 4 and 6 filters, 48-px patches of the bundled photographs."""
    base = lcl.LCLConfig.preset(
        "demo",
        model={"stage1": {"channels": 4}, "stage2": {"channels": 6}},
        train={"steps": (4, 6), "batch_size": 8, "patch_size": 48, "checkpoint_every": 2, "log_every": 1,
               "progress": False},
        optim={"warmup_steps": 2},
    )
    return base.replace(**components) if components else base


# ------------------------------------------------------------------------------------------------ model geometry
@pytest.mark.parametrize("whiten,k1,k2", [(7, 9, 5), (0, 7, 3), (5, 5, 5)])
def test_receptive_field_equals_gradient_support(whiten, k1, k2):
    cfg = lcl.ModelConfig(whiten=whiten, stage1=lcl.StageConfig(channels=3, kernel=k1),
                          stage2=lcl.StageConfig(channels=3, kernel=k2, bias=True))
    model = lcl.V1V2(cfg).double()
    for stage in model.stages:  # linear rectification so no gradient is cut to zero by the ReLU
        stage.rectify = torch.nn.Identity()
    for stage_index in (1, 2):
        rf = model.receptive_field(stage_index)
        size = rf + 4 * model.cumulative_stride(stage_index) + 8
        x = torch.rand(1, 1, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        x.requires_grad_(True)
        y = model.features(x, stage_index)
        c = y.shape[-1] // 2
        y[0, 0, c, c].backward()
        nz = torch.nonzero(x.grad[0, 0].abs() > 0)
        extent = (nz.max(0).values - nz.min(0).values + 1).tolist()
        assert extent == [rf, rf], (stage_index, extent, rf)
        # neighbouring output units are cumulative_stride pixels apart
        x.grad = None
        model.features(x, stage_index)[0, 0, c, c + 1].backward()
        nz2 = torch.nonzero(x.grad[0, 0].abs() > 0)
        assert int(nz2[:, 1].min() - nz[:, 1].min()) == model.cumulative_stride(stage_index)


def test_stages_are_named_submodules_recordable_with_data_record():
    model = lcl.V1V2(lcl.LCLConfig.preset("demo").model).eval()
    stimuli = data.natural_images(size=64, names=["camera", "moon", "coins"])
    rec = data.record(model, stimuli, layers=["stage1", "stage2"], pool="mean", progress=False)
    assert rec["stage1"].sizes["neuroid"] == 32 and rec["stage2"].sizes["neuroid"] == 64
    assert rec["stage2"].sizes["presentation"] == 3
    assert dict(model.named_children()).keys() == {"stage1", "stage2"}
    assert {"whiten", "conv", "rectify", "pool", "downsample", "norm"} <= set(dict(model.stage1.named_children()))


def test_divisive_normalization_and_output_size():
    cfg = lcl.ModelConfig(stage1=lcl.StageConfig(channels=4, divisive_norm=True, norm_sigma=1e-5))
    model = lcl.V1V2(cfg)
    x = torch.rand(2, 1, 64, 64)
    y1 = model.features(x, 1)
    assert y1.shape[-1] == model.output_size(64, 1)
    assert model(x).shape[-1] == model.output_size(64, 2)
    assert isinstance(model.stage1.norm, torch.nn.Module) and not isinstance(model.stage1.norm, torch.nn.Identity)
    # divisive normalization makes the stage-1 output (nearly) invariant to input contrast
    y_hi, y_lo = model.features(x * 1.0, 1), model.features(x * 0.5, 1)
    unnormalized = lcl.V1V2(lcl.ModelConfig(stage1=lcl.StageConfig(channels=4)))
    unnormalized.load_state_dict(model.state_dict())
    ratio_norm = (y_hi.norm() / y_lo.norm()).item()
    ratio_plain = (unnormalized.features(x, 1).norm() / unnormalized.features(x * 0.5, 1).norm()).item()
    assert abs(ratio_plain - 2.0) < 0.05 and ratio_norm < ratio_plain - 0.3


# ------------------------------------------------------------------------------------------------ deformations
def _measured_displacement(d: torch.Tensor, margin: int) -> torch.Tensor:
    """Warp coordinate ramps with fields ``d`` and read the displacement back (bilinear is exact on ramps)."""
    b, h, w, _ = d.shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    ramps = torch.stack([xx, yy])[None].expand(b, 2, h, w).contiguous()
    warped = lcl.warp(ramps, d.double(), padding="border")
    moved = (warped - ramps)[:, :, margin:-margin, margin:-margin]
    return moved.pow(2).sum(1).mean(dim=(1, 2)).sqrt()


@pytest.mark.parametrize("matching", ["rf", "fixed"])
def test_rms_displacement_scales_with_receptive_field(matching):
    model = lcl.V1V2()
    rfs = (model.receptive_field(1), model.receptive_field(2))
    cfg = lcl.DeformConfig(amplitude=0.08, smoothness=0.4, matching=matching)
    g = torch.Generator().manual_seed(0)
    measured = {}
    for stage in (1, 2):
        amp, smooth = cfg.pixels(rfs, stage)
        expected = 0.08 * (rfs[stage - 1] if matching == "rf" else rfs[0])
        assert amp == pytest.approx(expected)
        d = lcl.random_displacement(64, 128, 128, amp, smooth, generator=g)
        assert torch.allclose(lcl.rms_displacement(d), torch.full((64,), amp), rtol=1e-4)
        # independent measurement: how far the warp actually moves image content (interior pixels)
        rms = _measured_displacement(d, margin=12).pow(2).mean().sqrt().item()
        assert rms == pytest.approx(amp, rel=0.05)
        measured[stage] = rms
    ratio = measured[2] / measured[1]
    target = rfs[1] / rfs[0] if matching == "rf" else 1.0
    assert ratio == pytest.approx(target, rel=0.05)


def test_deform_moves_content_by_configured_amplitude():
    x = torch.rand(16, 1, 96, 96, generator=torch.Generator().manual_seed(3))
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    ramp = xx[None, None].expand(16, 1, 96, 96)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    moved_x = lcl.deform(ramp, 3.0, 8.0, generator=g1, padding="border") - ramp
    # the same generator state deforms any image identically: a seeded deformation
    assert torch.equal(lcl.deform(ramp, 3.0, 8.0, generator=g2, padding="border") - ramp, moved_x)
    assert not torch.equal(lcl.deform(x, 3.0, 8.0, seed=5), lcl.deform(x, 3.0, 8.0, seed=6))
    # x-component only: about half of the squared displacement (isotropic field)
    rms_x = moved_x[..., 10:-10, 10:-10].pow(2).mean().sqrt().item()
    assert rms_x == pytest.approx(3.0 / math.sqrt(2), rel=0.1)


def test_zero_amplitude_is_identity_warp():
    x = torch.rand(4, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lcl.deform(x, 0.0, 5.0, seed=1), x)
    assert torch.allclose(lcl.warp(x, torch.zeros(4, 40, 40, 2)), x, atol=1e-5, rtol=0)
    zero64 = torch.zeros(4, 40, 40, 2, dtype=torch.float64)
    assert torch.allclose(lcl.warp(x.double(), zero64), x.double(), atol=1e-12, rtol=0)
    trainer = lcl.Trainer(tiny_config(deform={"amplitude": 0.0}))
    patches = trainer.sample_patches(5)
    views = trainer.make_views(patches)
    assert torch.equal(views[:5], patches) and torch.equal(views[5:], patches)


def test_field_smoothness_sets_correlation_length():
    s = 6.0
    d = lcl.random_displacement(32, 160, 160, 2.0, s, generator=torch.Generator().manual_seed(2))
    dx = d[..., 0]
    dx = dx - dx.mean()
    lag = int(s)
    corr = (dx[:, :, :-lag] * dx[:, :, lag:]).mean() / dx.pow(2).mean()
    # Gaussian-filtered white noise of std s has autocorrelation exp(-lag^2 / (4 s^2)); at lag s: 0.78
    assert corr.item() == pytest.approx(math.exp(-0.25), abs=0.08)


# ------------------------------------------------------------------------------------------------ losses
def test_lcl_loss_known_values():
    eye = torch.eye(5)
    assert losses.lcl(eye, eye, center=False).item() == pytest.approx(-1.0)  # identical views, orthogonal others
    ones = torch.ones(5, 3)
    assert losses.lcl(ones, ones, decorrelation=0.7, center=False).item() == pytest.approx(-0.3)  # collapse
    assert losses.lcl(eye, -eye, center=False).item() == pytest.approx(1.0)  # opposite views
    # orthogonal views and orthogonal negatives: no similarity, no correlation
    z1, z2 = torch.eye(6)[:3], torch.eye(6)[3:]
    assert losses.lcl(z1, z2, center=False).item() == pytest.approx(0.0, abs=1e-7)
    # centring removes a shared offset: positive features with one constant offset behave like the eye case
    assert losses.lcl(eye + 3.0, eye + 3.0, center=True).item() == pytest.approx(
        losses.lcl(eye - 0.2, eye - 0.2, center=False).item(), abs=1e-6)


def test_lcl_loss_matches_naive_loop_and_batches_leading_dims():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(3, 7, 5, generator=g), torch.randn(3, 7, 5, generator=g)
    lam = 0.6
    vals = []
    for k in range(3):
        a, b = z1[k], z2[k]
        m = 0.5 * (a.mean(0) + b.mean(0))
        a, b = a - m, b - m
        cos = lambda u, v: float(u @ v / (u.norm() * v.norm()))  # noqa: E731
        pos = np.mean([cos(a[i], b[i]) for i in range(7)])
        neg = np.mean([cos(a[i], b[j]) ** 2 for i in range(7) for j in range(7) if i != j])
        vals.append(-pos + lam * neg)
    assert losses.lcl(z1, z2, decorrelation=lam).item() == pytest.approx(np.mean(vals), abs=1e-5)


def test_barlow_twins_known_values():
    h = torch.tensor([[1., 1., 1., 1.], [1., -1., 1., -1.], [1., 1., -1., -1.], [1., -1., -1., 1.]])
    z = h[:, 1:]  # three standardised, mutually uncorrelated features over a batch of 4
    assert losses.barlow_twins(z, z, eps=0.0).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.barlow_twins(z, -z, eps=0.0).item() == pytest.approx(12.0)  # 4 * dim
    # perfectly correlated features: every off-diagonal entry is 1
    zc = torch.tensor([[1.], [-1.], [1.], [-1.]]).expand(4, 3)
    assert losses.barlow_twins(zc, zc, off_diagonal=0.1, eps=0.0).item() == pytest.approx(0.1 * 6)
    # invariant to per-feature affine rescaling (standardisation)
    assert losses.barlow_twins(3 * z + 1, z, eps=0.0).item() == pytest.approx(0.0, abs=1e-6)


def test_infonce_known_value_and_gradients_finite_on_zero_vectors():
    z = torch.eye(4)
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 6))
    assert losses.infonce(z, z, temperature=t).item() == pytest.approx(expected, rel=1e-5)
    for name in losses.LOSSES:
        z1 = torch.zeros(4, 3, requires_grad=True)
        losses.get(name)(z1, torch.zeros(4, 3)).backward()
        assert torch.isfinite(z1.grad).all(), name


def test_pool_features_and_loss_registry():
    y = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    z = losses.pool_features(y, 2)
    assert z.shape == (4, 2, 3)
    assert z[0, 1, 2].item() == y[1, 2, :2, :2].mean().item()
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        losses.get("nope")
    with pytest.raises(ValueError, match="unknown option"):
        losses.validate_options("barlow_twins", {"decorrelation": 1.0})
    with pytest.raises(ValueError, match="pool grid"):
        losses.pool_features(y, 5)


# ------------------------------------------------------------------------------------------------ training
def test_stage1_frozen_while_stage2_trains():
    trainer = lcl.Trainer(tiny_config())
    trainer.run(until=4)  # stage 1 done (4 steps)
    first = {k: v.clone() for k, v in trainer.model.stage1.state_dict().items()}
    second = {k: v.clone() for k, v in trainer.model.stage2.state_dict().items()}
    trainer.phase_index, trainer.step = 1, 0
    trainer.optimizer = None
    for _ in range(3):
        trainer.train_step()
        assert trainer.phase.name == "stage2"
        for name, p in trainer.model.stage1.named_parameters():
            assert p.grad is None and not p.requires_grad, name
            assert torch.equal(p, first[name])
        assert all(p.grad is not None for p in trainer.model.stage2.parameters())
    opt_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in trainer.model.stage2.parameters()}
    assert not torch.equal(trainer.model.stage2.conv.weight, second["conv.weight"])


def test_end_to_end_ablation_trains_both_stages_through_stage2_loss():
    cfg = tiny_config(train={"mode": "end_to_end", "steps": (2, 1)})
    trainer = lcl.Trainer(cfg)
    w1 = trainer.model.stage1.conv.weight.clone()
    assert [p.name for p in trainer.phases] == ["end_to_end"] and trainer.total_steps == 3
    trainer.train_step()
    assert trainer.model.stage1.conv.weight.grad is not None
    assert not torch.equal(trainer.model.stage1.conv.weight, w1)
    # the views use the stage-2 deformation
    assert cfg.deform.pixels(trainer.rf_sizes, trainer.phase.stage)[0] == pytest.approx(0.1 * trainer.rf_sizes[1])


def test_fixed_matching_uses_same_pixels_for_both_stages():
    cfg = tiny_config(deform={"matching": "fixed"})
    t = lcl.Trainer(cfg)
    assert cfg.deform.pixels(t.rf_sizes, 1) == cfg.deform.pixels(t.rf_sizes, 2)
    cfg_rf = tiny_config()
    assert cfg_rf.deform.pixels(t.rf_sizes, 2)[0] > cfg_rf.deform.pixels(t.rf_sizes, 1)[0]


def test_resume_after_interruption_is_bit_identical(tmp_path):
    cfg = tiny_config(train={"steps": (4, 6), "checkpoint_every": 2})
    full = lcl.Trainer(cfg, tmp_path / "full")
    full.run()
    for until in (3, 9):  # interrupted inside stage 1 and inside stage 2, after the last checkpoint
        out = tmp_path / f"cut{until}"
        lcl.Trainer(cfg, out).run(until=until)
        ckpt = torch.load(out / "checkpoint.pt", weights_only=True)  # the training core's format (data._training)
        assert {"format", "model", "optimizer", "step", "rng", "config", "world_size", "provenance"} <= set(ckpt)
        assert ckpt["format"] == data.CHECKPOINT_FORMAT
        assert ckpt["optimizer"] is not None and ckpt["provenance"]["git_commit"]
        resumed = lcl.Trainer(cfg.replace(train={"log_every": 1}), out, resume=True)
        assert resumed.global_step < until
        resumed.run()
        for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
            assert torch.equal(a, b), (until, k)
        assert [r["loss"] for r in resumed.log] == [r["loss"] for r in full.log]
        lines = (out / "log.jsonl").read_text().splitlines()
        assert len(lines) == len(full.log)
    saved = lcl.load_model(tmp_path / "full")
    assert torch.equal(saved.stage2.conv.weight, full.model.stage2.conv.weight)


def test_resume_rejects_a_different_config(tmp_path):
    cfg = tiny_config(train={"steps": (2, 0)})
    lcl.Trainer(cfg, tmp_path).run()
    with pytest.raises(ValueError, match="config differs"):
        lcl.Trainer(cfg.replace(optim={"lr": 1e-2}), tmp_path, resume=True)
    with pytest.raises(FileNotFoundError):
        lcl.Trainer(cfg, tmp_path / "none", resume=True)


def test_checkpoint_and_log_contents(tmp_path):
    import json

    cfg = tiny_config(train={"steps": (2, 2)})
    lcl.train(cfg, tmp_path)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ckpt["complete"] and ckpt["provenance"]["seed"] == cfg.seed
    assert lcl.LCLConfig.from_dict(ckpt["config"]) == cfg
    assert "git_commit" in ckpt["provenance"] and "lcl_workbench_version" in ckpt["provenance"]
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records] == ["stage1", "stage1", "stage2", "stage2"]
    assert all(math.isfinite(r["loss"]) and r["lr"] > 0 for r in records)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


# ------------------------------------------------------------------------------------------------ config errors
def _no_images(*args, **kwargs):
    raise AssertionError("images were loaded before the config was rejected")


@pytest.mark.parametrize("make, match", [
    (lambda: tiny_config(deform={"amplitude": -0.1}), "amplitude must be a finite number >= 0"),
    (lambda: tiny_config(train={"loss": "simclr"}), "unknown loss 'simclr'"),
    (lambda: tiny_config(train={"patch_size": 30}), "smaller than the receptive field of stage 2"),
    (lambda: tiny_config(train={"patch_size": 16, "steps": (5, 0)}), "smaller than the receptive field of stage 1"),
    (lambda: tiny_config(train={"loss_options": {"temperature": 0.1}}), "unknown option"),
    (lambda: tiny_config(train={"mode": "greedy"}), "mode must be one of"),
    (lambda: tiny_config(deform={"matching": "none"}), "matching must be one of"),
    (lambda: tiny_config(train={"batch_size": 1}), "batch_size"),
    (lambda: tiny_config(model={"stage1": {"kernel": 0}}), "kernel must be a positive integer"),
    (lambda: tiny_config(optim={"lr": -1.0}), "lr must be a positive number"),
    (lambda: tiny_config(train={"bogus": 1}), "unknown config key"),
])
def test_bad_config_rejected_before_training(make, match, monkeypatch):
    monkeypatch.setattr(data, "natural_images", _no_images)
    with pytest.raises(ValueError, match=match):
        lcl.Trainer(make())


def test_empty_or_missing_image_folder_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "image_folder", _no_images)
    (tmp_path / "empty" / "class_a").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="is empty: it holds no image files"):
        lcl.Trainer(tiny_config(data={"source": "folder", "folder": str(tmp_path / "empty")}))
    with pytest.raises(ValueError, match="does not exist"):
        lcl.Trainer(tiny_config(data={"source": "folder", "folder": str(tmp_path / "missing")}))
    with pytest.raises(ValueError, match="must name an image folder"):
        tiny_config(data={"source": "folder"})


def test_cli_rejects_bad_config_quickly_and_trains_a_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[deform]\namplitude = -1.0\n")
    r = subprocess.run([sys.executable, "-m", "lcl", "train", "--config", str(bad), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "amplitude must be a finite number >= 0" in r.stderr
    assert not (tmp_path / "o").exists()
    good = tmp_path / "good.toml"
    good.write_text(
        "[model.stage1]\nchannels = 4\n[model.stage2]\nchannels = 4\n"
        "[train]\nsteps = [2, 1]\nbatch_size = 4\npatch_size = 48\nprogress = false\n"
        "[data]\nimage_size = 64\n"
    )
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "lcl", "train", "--config", str(good), "--out", str(out), "--demo",
                        "--figure"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / "model.pt").is_file() and (out / "filters.png").is_file() and (out / "filters.pdf").is_file()
    r = subprocess.run([sys.executable, "-m", "lcl", "train", "--config", str(good), "--out", str(out), "--demo",
                        "--resume"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------------------ acceptance 1
@pytest.fixture(scope="module")
def short_stage1_run():
    """One short stage-1 training on the bundled photographs (about 10-20 s on one core), shared by tests."""
    cfg = lcl.LCLConfig.preset(
        "demo",
        model={"stage1": {"channels": 16}},
        train={"steps": (200, 0), "batch_size": 64, "patch_size": 32, "progress": False, "log_every": 1},
        optim={"warmup_steps": 20},
    )
    trainer = lcl.Trainer(cfg)
    init = trainer.model.stage1.conv.weight.detach().clone()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is as fast, and robust on a shared machine
    try:
        trainer.run()
    finally:
        torch.set_num_threads(threads)
    return init, trainer.model.stage1.conv.weight.detach().clone(), trainer


def test_learned_stage1_filters_are_oriented(short_stage1_run):
    init, learned, _ = short_stage1_run
    osi_init, osi = lcl.orientation_selectivity(init), lcl.orientation_selectivity(learned)
    assert np.median(osi_init) < 0.25 and (osi_init > 0.4).mean() < 0.2
    assert np.median(osi) > 0.5 and np.median(osi) > np.median(osi_init) + 0.3
    assert (osi > 0.4).mean() >= 0.6  # most filters are oriented


def test_learned_stage1_filters_are_localized(short_stage1_run):
    init, learned, _ = short_stage1_run
    spread_init, spread = lcl.spatial_spread(init), lcl.spatial_spread(learned)
    assert np.median(spread_init) > 0.38  # random filters fill their square
    assert np.median(spread) < np.median(spread_init) - 0.05
    assert (spread < np.median(spread_init)).mean() >= 0.6


def test_training_lowered_the_loss(short_stage1_run):
    _, _, trainer = short_stage1_run
    first = np.mean([r["loss"] for r in trainer.log[:5]])
    last = np.mean([r["loss"] for r in trainer.log[-20:]])
    assert last < first - 0.1


def test_filter_figure(short_stage1_run, tmp_path):
    _, learned, _ = short_stage1_run
    files = lcl.plot_filters(learned, tmp_path / "filters")
    assert [f.suffix for f in files] == [".png", ".pdf"] and all(f.stat().st_size > 1000 for f in files)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_gpu_matches_shapes():
    cfg = tiny_config(train={"device": "cuda"})
    model = lcl.train(cfg)
    assert next(model.parameters()).device.type == "cuda"
