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
