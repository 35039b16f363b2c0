"""decoding: the CNN enhancer (training, exact resume), configs, the data split, the study, its figure and command
line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import xarray as xr

import data
import decoding
from decoding import (
    DecoderConfig,
    Enhancer,
    EnhancerConfig,
    LinearDecoder,
    Retina,
    EnhancerTrainConfig,
)




# ----------------------------------------------------------------------------------------------------------------
# Enhancer.


def small_enhancer(**kw) -> Enhancer:
    return Enhancer(EnhancerConfig(width=0.125, channels=(64, 128), kernels=(5, 3), strides=(2, 2), **kw), seed=0)


def test_enhancer_architecture():
    net = Enhancer(EnhancerConfig(), seed=0)  # the paper's: 64@7, 128@5, 256@3, 256@3, stride 2
    convs = [m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (64, (7, 7), (2, 2)), (128, (5, 5), (2, 2)), (256, (3, 3), (2, 2)), (256, (3, 3), (2, 2))]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.encoder.modules()) == 4
    dec = [m for m in net.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in dec] == [
        (64, 1, (7, 7)), (128, 64, (5, 5)), (256, 128, (3, 3)), (256, 256, (3, 3))]
    x = torch.rand(2, 1, 32, 32)
    net.eval()
    assert torch.equal(net(x), x)  # residual, zero-initialised output layer: starts as the identity
    assert net(x[:, 0]).shape == (2, 32, 32)
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.rand(1, 1, 24, 24))
    plain = Enhancer(EnhancerConfig(width=0.125, residual=False))
    assert not torch.equal(plain.eval()(x), x)
    a, b = small_enhancer(), small_enhancer()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # seeded init


def smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).normal(size=(n, size, size))
    sm = gaussian_filter(noise, sigma=(0, 2, 2), mode="wrap")
    return (0.5 + 0.25 * sm / sm.std()).clip(0, 1).astype(np.float32)


def test_enhancer_learns():
    y = smooth_images(64, 16, 0)
    x = (0.5 * y + 0.25).astype(np.float32)  # a contrast loss the network must undo
    net = small_enhancer()
    hist = train_enhancer_quiet(net, x, y, EnhancerTrainConfig(epochs=8, batch_size=8, patch_size=0, lr=3e-3))
    assert hist["train_loss"][-1] < 0.5 * hist["train_loss"][0]
    assert decoding.mse(y, net.enhance(x)).mean() < 0.5 * decoding.mse(y, x).mean()


def train_enhancer_quiet(net, x, y, cfg, **kw):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return decoding.train_enhancer(net, x, y, cfg, progress=False, **kw)


def test_enhancer_resume_reproduces_uninterrupted_run(tmp_path, monkeypatch):
    import decoding._enhancer as enh

    rng = np.random.default_rng(1)
    y = rng.random((24, 32, 32)).astype(np.float32)
    x = (y + 0.1 * rng.normal(size=y.shape)).astype(np.float32)
    cfg = EnhancerTrainConfig(epochs=3, batch_size=8, patch_size=16, warmup_steps=2, grad_clip=0.05)
    full = small_enhancer()
    h_full = train_enhancer_quiet(full, x, y, cfg, seed=4, checkpoint=tmp_path / "full.pt")
    # A run killed right after its first checkpoint (epoch 1 of 3) ...
    save = enh.data.save_checkpoint

    def save_then_die(*args, **kw):
        save(*args, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(enh.data, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_enhancer_quiet(small_enhancer(), x, y, cfg, seed=4, checkpoint=tmp_path / "part.pt")
    monkeypatch.setattr(enh.data, "save_checkpoint", save)
    assert torch.load(tmp_path / "part.pt", weights_only=True)["epoch"] == 1
    # ... and resumed in a fresh process-like state (new model object) ends exactly where the uninterrupted run did.
    resumed = small_enhancer()
    h_res = train_enhancer_quiet(resumed, x, y, cfg, seed=4, checkpoint=tmp_path / "part.pt", resume=True)
    assert h_res["epoch"] == [1, 2, 3]
    # exact: the same float operations in the same order on the same machine and thread count (legitimately equal)
    np.testing.assert_array_equal(h_res["train_loss"], h_full["train_loss"])
    for (name, p), q in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    state = torch.load(tmp_path / "part.pt", weights_only=True)
    assert state["epoch"] == 3 and state["optimizer"]["state"]
    prov = state["provenance"]
    assert prov["git_commit"] and prov["seed"] == 4 and state["config"]["seed"] == 4
    model, meta = decoding.load_enhancer(tmp_path / "part.pt")
    assert meta["epoch"] == 3 and not model.training
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_enhancer_resume_rejects_other_settings(tmp_path):
    x = np.zeros((8, 16, 16), dtype=np.float32)
    cfg = EnhancerTrainConfig(epochs=1, batch_size=4, patch_size=0)
    train_enhancer_quiet(small_enhancer(), x, x, cfg, checkpoint=tmp_path / "c.pt")
    with pytest.raises(ValueError, match="other settings"):
        train_enhancer_quiet(small_enhancer(), x, x, dataclasses.replace(cfg, lr=0.1),
                             checkpoint=tmp_path / "c.pt", resume=True)
    with pytest.raises(ValueError, match=r"differs in \['seed'\]"):
        train_enhancer_quiet(small_enhancer(), x, x, cfg, seed=1, checkpoint=tmp_path / "c.pt", resume=True)
    with pytest.raises(ValueError, match=r"differs in \['enhancer\.channels', 'enhancer\.kernels'"):  # architecture
        train_enhancer_quiet(Enhancer(EnhancerConfig(width=0.125, channels=(64,), kernels=(3,), strides=(2,))),
                             x, x, cfg, checkpoint=tmp_path / "c.pt", resume=True)


def test_enhancer_training_bad_input():
    net = small_enhancer()
    x = np.zeros((4, 16, 16), dtype=np.float32)
    with pytest.raises(ValueError, match="must be equal"):
        train_enhancer_quiet(net, x, x[:3], EnhancerTrainConfig(epochs=1))
    with pytest.raises(ValueError, match="NaN"):
        train_enhancer_quiet(net, np.full_like(x, np.nan), x, EnhancerTrainConfig(epochs=1, patch_size=0))
    with pytest.raises(ValueError, match="exceeds"):
        train_enhancer_quiet(net, x, x, EnhancerTrainConfig(epochs=1, patch_size=32))
    with pytest.raises(ValueError, match="empty"):
        train_enhancer_quiet(net, x[:0], x[:0], EnhancerTrainConfig(epochs=1))


# ----------------------------------------------------------------------------------------------------------------
# Configs, data split, study, figure, command line.


def test_configs_round_trip_and_overrides():
    cfg = decoding.StudyConfig.preset("demo", train={"epochs": 1}, n_examples=2)
    assert cfg.train.epochs == 1 and cfg.train.patch_size == 32 and cfg.n_examples == 2
    assert decoding.StudyConfig.preset("demo").retina.n_cells == 1393
    assert decoding.StudyConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown config key"):
        decoding.StudyConfig.preset("demo", train={"epoch": 1})
    with pytest.raises(ValueError, match="unknown StudyConfig preset"):
        decoding.StudyConfig.preset("huge")
    with pytest.raises(ValueError, match="multiples"):
        decoding.StudyConfig.preset("demo", train={"patch_size": 24})
    with pytest.raises(ValueError, match="alpha"):
        DecoderConfig(alpha=-0.1)


def test_split_by_source():
    photos = data.natural_images(size=32, min_size=256)
    train, test = decoding.split_by_source(photos, n_test=4, seed=0)
    assert test.sizes["stimulus_id"] == 4
    assert not set(train.source.values) & set(test.source.values)
    assert set(train.source.values) | set(test.source.values) == set(photos.source.values)
    again = decoding.split_by_source(photos, n_test=4, seed=0)[1]
    assert test.source.values.tolist() == again.source.values.tolist()
    with pytest.raises(ValueError, match="unknown test photograph"):
        decoding.split_by_source(photos, ["not_a_photo"])


def test_datasets_from_an_image_folder_split_by_file(tmp_path):
    import imageio.v3 as iio

    # Six generated "photographs" of distinct constant grey levels: the split must keep every file on one side.
    levels = {f"img{i}": 30 * (i + 1) for i in range(6)}
    for name, level in levels.items():
        iio.imwrite(tmp_path / f"{name}.png", np.full((80, 96), level, dtype=np.uint8))
    cfg = decoding.StudyDataConfig(photo_size=64, n_decoder=20, n_enhancer=10, n_test=12, n_test_sources=2,
                                   image_folder=str(tmp_path))
    sets = decoding.make_datasets(cfg, 32)
    train_src = set(sets["decoder"].source.values) | set(sets["enhancer"].source.values)
    test_src = set(sets["test"].source.values)
    assert len(test_src) == 2 and not train_src & test_src and train_src | test_src <= set(levels)
    # the crops come from the photographs study_photographs splits off, and only from those
    train_photos, test_photos = decoding.study_photographs(cfg)
    assert test_src == set(test_photos.source.values) and train_src <= set(train_photos.source.values)
    for st in sets.values():  # each crop is the constant grey level of the file it was cut from
        for img, src in zip(st["image"].values, st["source"].values.astype(str)):
            np.testing.assert_allclose(img, levels[src] / 255, atol=1e-6)
    with pytest.raises(ValueError, match="not a directory"):  # an environment check: entry points make it
        decoding.validate_study_config(decoding.StudyConfig().replace(data={"image_folder": str(tmp_path / "x")}))
    with pytest.raises(ValueError, match="not a directory"):
        decoding.run_study(decoding.StudyConfig().replace(data={"image_folder": str(tmp_path / "x")}))
    with pytest.raises(ValueError, match="max_images"):
        decoding.StudyDataConfig(max_images=-1)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = tmp_path_factory.mktemp("study")
    return decoding.run_study(decoding.StudyConfig.preset("tiny"), out_dir=out, progress=False), out


def test_run_study_results(tiny_study):
    res, out = tiny_study
    assert res.psnr.dims == ("decoder", "stimulus_id") and res.decoder.values.tolist() == list(decoding.METHODS)
    assert res.sizes["stimulus_id"] == 24 and res.reconstruction.shape == (3, 3, 32, 32)
    test_sources = set(json.loads(res.attrs["test_sources"]))
    assert set(res.source_image.values) <= test_sources
    assert set(res.example_source.values) == test_sources  # one example per held-out photograph
    assert not test_sources & set(json.loads(res.attrs["train_sources"]))
    assert np.isfinite(res.psnr.values).all()
    # The point-wise baseline is fitted by least squares on similar data: it does not lose to the linear decoder.
    assert float(res.mse.sel(decoder="pointwise").mean()) < float(res.mse.sel(decoder="linear").mean())
    saved = decoding.load_results(out / "results.nc")
    xr.testing.assert_allclose(saved.psnr, res.psnr)
    stored = {k: v for k, v in json.loads(saved.attrs["config"]).items() if k != "type"}
    assert decoding.StudyConfig.from_dict(stored) == decoding.StudyConfig.preset("tiny")
    assert (out / "enhancer.pt").is_file()
    assert "linear" in decoding.summary_table(saved)


def test_run_study_resume_is_reproducible(tiny_study):
    res, out = tiny_study
    again = decoding.run_study(decoding.StudyConfig.preset("tiny"), out_dir=out, resume=True, progress=False)
    xr.testing.assert_equal(again.psnr, res.psnr)  # finished run: resumed at its end, same numbers


def test_plot_reconstructions(tiny_study, tmp_path):
    res, out = tiny_study
    files = decoding.plot_reconstructions(out / "results.nc", tmp_path / "fig")
    assert [f.suffix for f in files] == [".png", ".pdf"] and all(f.stat().st_size > 1000 for f in files)
    with pytest.raises(ValueError, match="not a decoding results file"):
        decoding.plot_reconstructions(data.save(xr.Dataset({"a": ("x", [1.0])}), tmp_path / "x.nc"),
                                      tmp_path / "g")


def test_command_line(tmp_path, capsys):
    import subprocess
    import sys

    from decoding.__main__ import main

    (tmp_path / "cfg.toml").write_text("n_examples = 2\n[train]\nepochs = 1\n[data]\nn_decoder = 150\nn_test = 8\n")
    run = subprocess.run([sys.executable, "-m", "decoding", "run", "--preset", "tiny", "--config",
                          str(tmp_path / "cfg.toml"), "--out", str(tmp_path / "o"), "--quiet", "--threads", "1"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "enhanced" in run.stdout and (tmp_path / "o" / "reconstructions.png").is_file()
    res = decoding.load_results(tmp_path / "o" / "results.nc")
    assert res.sizes["example"] == 2 and res.sizes["epoch"] == 1 and res.sizes["stimulus_id"] == 8
    assert main(["summary", str(tmp_path / "o" / "results.nc")]) == 0
    assert "pointwise" in capsys.readouterr().out
    assert main(["plot", str(tmp_path / "o" / "results.nc"), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig.pdf").is_file()
    with pytest.raises(SystemExit):
        main(["run", "--preset", "nope", "--out", str(tmp_path)])
    (tmp_path / "bad.toml").write_text("[train]\nepoch = 1\n")
    capsys.readouterr()
    assert main(["run", "--preset", "tiny", "--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "unknown config key" in err[0]
    assert not (tmp_path / "b").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_retina_and_decoder_on_gpu():
    cfg = decoding.StudyConfig.preset("tiny").retina
    imgs = np.random.default_rng(0).random((70, 32, 32)).astype(np.float32)
    cpu = Retina(cfg).simulate(imgs, seed=1).values
    gpu = Retina(cfg).to("cuda").simulate(imgs, seed=1).values
    # Rates agree to float32 precision; noise is drawn on the CPU from the same seeds, so counts agree except
    # where a rate sits on a sampling boundary.
    assert (cpu == gpu).mean() > 0.99
    dec = LinearDecoder(device="cuda").fit(cpu, imgs)
    np.testing.assert_allclose(dec.predict(cpu), LinearDecoder().fit(cpu, imgs).predict(cpu), atol=1e-3)
    net = small_enhancer().to("cuda")
    assert net.enhance(imgs).shape == imgs.shape
