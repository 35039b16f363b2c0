"""The shared machinery in ``data``: root-seed derivation, the config base class, journal-size figures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import data


def test_derive_seed_is_a_function_of_root_and_path_only():
    assert data.derive_seed(5, "a", 1) == data.derive_seed(5, "a", 1)
    assert data.derive_seed(5) == 5
    # distinct names, roots and orders give distinct seeds (a 31-bit collision among 3000 has p ~ 2e-3)
    seeds = {data.derive_seed(r, f"part{i}") for r in range(3) for i in range(1000)}
    assert len(seeds) == 3000
    assert data.derive_seed(0, "a", "b") != data.derive_seed(0, "b", "a")
    assert all(0 <= s < 2**31 for s in seeds)


def test_derive_seed_matches_numpy_seedsequence_spawn_key():
    # the documented derivation: SeedSequence(root, spawn_key=crc32(names)), first 32-bit word >> 1
    import zlib

    want = np.random.SeedSequence(11, spawn_key=(zlib.crc32(b"retina"), 2)).generate_state(1)[0] >> 1
    assert data.derive_seed(11, "retina", 2) == int(want)


@pytest.mark.parametrize("bad", [-1, 1.5, "x", None, True])
def test_derive_seed_rejects_bad_root(bad):
    with pytest.raises((ValueError, TypeError), match="root"):
        data.derive_seed(bad, "a")


@pytest.mark.parametrize("bad", [-1, 1.5, None, b"x"])
def test_derive_seed_rejects_bad_names(bad):
    with pytest.raises(ValueError, match="seed names"):
        data.derive_seed(0, bad)


@dataclasses.dataclass(frozen=True)
class _Inner(data.Config):
    k: int = 1


@dataclasses.dataclass(frozen=True)
class _Outer(data.Config):
    inner: _Inner = _Inner()
    sizes: tuple[int, ...] = (1, 2)
    seed: int = 0
    PRESETS = {"big": lambda: _Outer(sizes=(8, 8))}

    def validate(self) -> None:
        if any(s < 1 for s in self.sizes):
            raise ValueError(f"_Outer.sizes must be >= 1, got {self.sizes}")


def test_config_round_trips_through_dict_and_toml(tmp_path):
    cfg = _Outer(inner=_Inner(k=3), sizes=(4,), seed=9)
    assert _Outer.from_dict(cfg.to_dict()) == cfg
    path = tmp_path / "c.toml"
    path.write_text("seed = 9\nsizes = [4]\n[inner]\nk = 3\n")
    assert _Outer.load(path) == cfg


def test_config_validates_on_every_way_in(tmp_path):
    with pytest.raises(ValueError, match="sizes"):
        _Outer(sizes=(0,))
    with pytest.raises(ValueError, match="sizes"):
        _Outer().replace(sizes=(0,))
    with pytest.raises(ValueError, match="sizes"):
        _Outer.from_dict({"sizes": [0]})
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['kk'\]"):
        _Outer.from_dict({"inner": {"kk": 1}})
    path = tmp_path / "c.toml"
    path.write_text("sise = 1\n")
    with pytest.raises(ValueError, match="sise.*c.toml"):
        _Outer.load(path)


def test_config_presets_and_nested_replace():
    assert _Outer.presets() == ["big"]
    assert _Outer.preset("big", inner={"k": 2}) == _Outer(inner=_Inner(k=2), sizes=(8, 8))
    with pytest.raises(ValueError, match="known presets: \\['big'\\]"):
        _Outer.preset("small")


@pytest.mark.parametrize("width, want", [("single", 3.5), ("double", 7.0), (5.0, 5.0)])
def test_save_figure_writes_journal_width(tmp_path, width, want):
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=(4, 3))
    fig.add_subplot().plot([0, 1], [1, 0])
    png, pdf = data.save_figure(fig, tmp_path / "f", width=width, dpi=100)
    assert Image.open(png).size == (round(want * 100), round(want * 0.75 * 100))
    assert pdf.read_bytes().startswith(b"%PDF")
    fixed, _ = data.save_figure(fig, tmp_path / "g", width=width, height=2.0, dpi=100)
    assert Image.open(fixed).size == (round(want * 100), 200)


def test_save_figure_rejects_bad_sizes_before_writing(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    with pytest.raises(ValueError, match="width"):
        data.save_figure(fig, tmp_path / "f", width="triple")
    with pytest.raises(ValueError, match="height needs width"):
        data.save_figure(fig, tmp_path / "f", height=2.0)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------ the training core
def test_lr_factor_warmup_then_cosine_or_constant():
    import math

    f = [data.lr_factor(s, 10, warmup_steps=4) for s in range(12)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]  # linear warm-up, then the cosine starts at 1 ...
    assert f[4] == 1.0 and f[7] == pytest.approx(0.5) and f[10] == f[11] == 0.0  # ... over the other 6 steps
    assert all(a >= b for a, b in zip(f[4:], f[5:]))
    assert data.lr_factor(10, 10, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert data.lr_factor(3, 10, warmup_steps=2, schedule="constant") == 1.0
    assert data.lr_factor(2, 8) == 0.5 * (1 + math.cos(math.pi * 2 / 8))  # no warm-up: cosine over all steps
    with pytest.raises(ValueError, match="schedule"):
        data.lr_factor(0, 10, schedule="linear")
    with pytest.raises(TypeError, match="step"):
        data.lr_factor(1.5, 10)


def test_optimizer_step_sets_lr_and_clips_the_global_norm():
    import torch

    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = torch.optim.SGD([w], lr=123.0)
    data.optimizer_step(opt, (w ** 2).sum() / 2, lr=0.5)  # gradient (3, 4), no clipping
    assert w.detach().tolist() == [1.5, 2.0] and opt.param_groups[0]["lr"] == 0.5
    data.optimizer_step(opt, (w ** 2).sum() / 2, lr=1.0, grad_clip=0.5)  # gradient (1.5, 2) clipped to norm 0.5
    assert w.detach().tolist() == pytest.approx([1.2, 1.6])
    with pytest.raises(TypeError, match="loss"):
        data.optimizer_step(opt, 1.0, lr=0.1)
    with pytest.raises(ValueError, match="grad_clip"):
        data.optimizer_step(opt, (w ** 2).sum(), lr=0.1, grad_clip=-1.0)


def test_checkpoint_round_trip_and_resume_checks(tmp_path):
    import torch

    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    data.optimizer_step(opt, net(torch.ones(1, 3)).sum(), lr=0.1)
    g = torch.Generator().manual_seed(7)
    cfg = {"train": {"lr": 0.1, "steps": (2, 3), "device": "cpu"}, "seed": 1}
    path = data.save_checkpoint(tmp_path / "c.pt", model=net, optimizer=opt, step=4, config=cfg, seed=1,
                                generators={"g": g}, history=[1.0, 0.5])
    assert not list(tmp_path.glob(".*.tmp"))
    state = data.load_checkpoint(path, config={**cfg, "train": {**cfg["train"], "device": "cuda"}},
                                 runtime=["train.device"])
    assert state["format"] == data.CHECKPOINT_FORMAT and state["world_size"] == 1 and state["history"] == [1.0, 0.5]
    assert state["provenance"]["git_commit"] and state["provenance"]["lcl_workbench_version"]
    expect = torch.rand(3, generator=g)
    other, other_opt = torch.nn.Linear(3, 2), torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    assert data.resume_state(state, model=other, optimizer=other_opt, generators={"g": g}) == 4
    assert torch.equal(torch.rand(3, generator=g), expect)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), other.state_dict().values()))
    # the same checks for every trainer: the differing fields are named (tuples and lists compare equal: TOML)
    with pytest.raises(ValueError, match=r"differs in \['train\.steps'\] \(\[2, 3\] there, \[2, 4\] here\)"):
        data.load_checkpoint(path, config={**cfg, "train": {**cfg["train"], "steps": [2, 4]}})
    with pytest.raises(ValueError, match=r"differs in \['train\.extra'\]"):
        data.load_checkpoint(path, config={**cfg, "train": {**cfg["train"], "extra": 1}})
    with pytest.raises(ValueError, match="do not fit the model"):
        data.resume_state(state, model=torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="holds no state of the generator"):
        data.resume_state(state, model=other, generators={"h": g})
    with pytest.raises(ValueError, match="core checkpoint names"):
        data.save_checkpoint(tmp_path / "d.pt", model=net, optimizer=None, step=0, config={}, seed=0, step_=1,
                             world_size=2)
    # an unversioned file (an earlier trainer's) is read, but not resumed
    torch.save({"model": net.state_dict(), "config": cfg}, tmp_path / "old.pt")
    assert set(data.load_checkpoint(tmp_path / "old.pt")) == {"model", "config"}
    with pytest.raises(ValueError, match="format 'unversioned'"):
        data.load_checkpoint(tmp_path / "old.pt", config=cfg)
    (tmp_path / "bad.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated"):
        data.load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        data.load_checkpoint(tmp_path / "none.pt")


def test_checkpoint_of_another_world_size_is_refused(tmp_path, monkeypatch):
    import torch

    import data._training as training

    path = data.save_checkpoint(tmp_path / "c.pt", model=torch.nn.Linear(1, 1), optimizer=None, step=0,
                                config={}, seed=0)
    monkeypatch.setattr(training, "rank_and_world", lambda: (0, 2))
    with pytest.raises(ValueError, match="written by 1 processes, this run has 2"):
        data.load_checkpoint(path, config={})
    monkeypatch.setattr(training, "rank_and_world", lambda: (1, 2))  # only rank 0 writes
    assert data.save_checkpoint(tmp_path / "r1.pt", model=torch.nn.Linear(1, 1), optimizer=None, step=0,
                                config={}, seed=0) is None
    assert not (tmp_path / "r1.pt").exists()


def test_validate_device_accepts_this_machines_devices_and_names_the_setting():
    import torch

    assert data.validate_device("cpu") == torch.device("cpu")
    assert data.validate_device(torch.device("cpu"), "x") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^train\.device 'gpu' is not a torch device"):
        data.validate_device("gpu", "train.device")
    with pytest.raises(ValueError, match=r"--device 'meta' is not supported"):
        data.validate_device("meta", "--device")
    with pytest.raises(TypeError, match="device must be a device name"):
        data.validate_device(0)
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    # a CUDA device this machine does not have: no CUDA at all, or an index past the last one
    with pytest.raises(ValueError, match="CUDA is not available" if n == 0 else "CUDA device"):
        data.validate_device(f"cuda:{n}", "device")
