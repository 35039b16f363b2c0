"""Texture / spectrally matched noise stimuli: exact spectral match, phase scrambling, PS statistics, cache."""

from __future__ import annotations

import numpy as np
import pytest

import analyses
import data

# synthesis checks on bare stimuli (no aperture, no canvas); the protocol's canvas is tested in test_texture_protocol
SMALL = dict(families=("gravel", "brick"), n_samples=1, size=32, n_scales=2, max_iter=6, aperture=False, canvas=1.0)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Synthesis of 32-px images is fastest on one thread (and the machine is shared)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_stimuli(tmp_path_factory):
    cfg = analyses.TextureStimuliConfig(**SMALL)
    return analyses.texture_stimuli(cfg, cache_dir=tmp_path_factory.mktemp("cache")), cfg


@pytest.mark.parametrize("shape", [(32, 32), (33, 31)])
def test_phase_randomize_keeps_amplitude_spectrum_exactly(shape):
    img = np.random.default_rng(0).random(shape) ** 3 - 0.4  # skewed, non-Gaussian, negative mean
    noise = analyses.phase_randomize(img, seed=1)
    assert noise.shape == img.shape and noise.dtype == np.float64
    np.testing.assert_allclose(np.abs(np.fft.fft2(noise)), np.abs(np.fft.fft2(img)), rtol=1e-10, atol=1e-10)
    assert noise.mean() == pytest.approx(img.mean(), abs=1e-12)  # DC phase kept
    # the same seed gives the same noise, another seed another one
    np.testing.assert_array_equal(noise, analyses.phase_randomize(img, seed=1))
    assert not np.allclose(noise, analyses.phase_randomize(img, seed=2))


def test_phase_randomize_scrambles_phase():
    img = np.random.default_rng(3).random((64, 64))
    noise = analyses.phase_randomize(img, seed=4)
    fi, fn = np.fft.fft2(img), np.fft.fft2(noise)
    dphi = np.angle(fn * np.conj(fi))[np.abs(fi) > 1e-9].ravel()
    # uniformly scrambled phase differences: mean resultant length ~ 1/sqrt(n)
    assert abs(np.mean(np.exp(1j * dphi))) < 0.05
    # pixel values no longer correlate with the original
    assert abs(np.corrcoef(img.ravel(), noise.ravel())[0, 1]) < 0.1
    with pytest.raises(ValueError, match="2-D"):
        analyses.phase_randomize(np.zeros((2, 4, 4)))


def test_raised_cosine_aperture_profile():
    size, ramp = 64, 0.5
    w = analyses.raised_cosine_aperture(size, ramp)
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - c, xx - c) / (size / 2)
    assert np.all(w[r <= 1 - ramp] == 1.0)
    assert np.all(w[r >= 1] == 0.0)
    band = (r > 1 - ramp) & (r < 1)
    expected = 0.5 * (1 + np.cos(np.pi * (r[band] - (1 - ramp)) / ramp))
    np.testing.assert_allclose(w[band], expected)


@pytest.mark.parametrize("kwargs, message", [
    (dict(families=("carpet",)), "unknown texture family source 'carpet'"),
    (dict(families=("/no/such/file.png",)), "image file not found"),
    (dict(size=60), "divisible by 2\\*\\*n_scales"),
    (dict(size=32, n_scales=3), "too small for n_scales=3"),
    (dict(families=("page",), size=128, n_scales=4), "smaller than size=128"),
    (dict(families=("brick", "brick")), "duplicate texture family"),
    (dict(n_samples=0), "n_samples must be a positive integer"),
    (dict(families=()), "families is empty"),
])
def test_validate_texture_config_rejects_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        analyses.validate_texture_config(analyses.TextureStimuliConfig(**kwargs))


def test_texture_config_from_toml_dict_rejects_unknown_keys():
    cfg = data.config_from_dict(analyses.TextureStimuliConfig, {"families": ["brick"], "n_samples": 2})
    assert cfg.families == ("brick",) and cfg.n_samples == 2
    with pytest.raises(ValueError, match="unknown config key"):
        data.config_from_dict(analyses.TextureStimuliConfig, {"n_sample": 2})


def test_texture_stimuli_structure(small_stimuli):
    s, cfg = small_stimuli
    data.validate_stimuli(s)
    assert s.sizes["stimulus_id"] == 2 * len(cfg.families) * cfg.n_samples
    assert s.image.shape[1:] == (32, 32)
    assert sorted(set(s.texture_type.values.tolist())) == ["noise", "texture"]
    assert set(s.texture_family.values.tolist()) == {"gravel", "brick"}
    assert s.attrs["degrees"] == 4.0
    assert s.source_image.shape == (2, 32, 32)


def test_noise_has_the_texture_amplitude_spectrum(small_stimuli):
    s, _ = small_stimuli
    for fam in ("gravel", "brick"):
        tex = s.image.values[(s.texture_family.values == fam) & (s.texture_type.values == "texture")][0]
        noise = s.image.values[(s.texture_family.values == fam) & (s.texture_type.values == "noise")][0]
        a_t = np.abs(np.fft.fft2(tex.astype(np.float64)))
        a_n = np.abs(np.fft.fft2(noise.astype(np.float64)))
        # stored as float32: match to float32 precision relative to the spectrum's scale
        np.testing.assert_allclose(a_n, a_t, atol=1e-5 * a_t.max())
        assert abs(np.corrcoef(tex.ravel(), noise.ravel())[0, 1]) < 0.3  # phases scrambled


def test_textures_match_ps_statistics_much_better_than_noise(small_stimuli):
    import plenoptic as po
    import torch

    s, cfg = small_stimuli
    model = po.models.PortillaSimoncelli((32, 32), n_scales=cfg.n_scales)
    for f, fam in enumerate(s.source_name.values):
        tex = s.image.values[(s.texture_family.values == fam) & (s.texture_type.values == "texture")][0]
        factor = float(s.contrast_factor.values[s.texture_family.values == fam][0])
        # the reference: the source with the pair's contrast scaling about the (shared) mean
        source = s.source_image.values[f].astype(np.float64)
        target = torch.from_numpy((tex.mean() + factor * (source - tex.mean()))[None, None].astype(np.float32))
        loss = po.loss.portilla_simoncelli_loss_factory(model, target)
        losses = {}
        for kind in ("texture", "noise"):
            img = s.image.values[(s.texture_family.values == fam) & (s.texture_type.values == kind)][0]
            with torch.no_grad():
                losses[kind] = float(loss(model(torch.from_numpy(img[None, None])), model(target)))
        # independent of the stored ps_loss coordinate, which must agree with it
        stored = s.ps_loss.values[(s.texture_family.values == fam) & (s.texture_type.values == "texture")][0]
        assert stored == pytest.approx(losses["texture"], rel=1e-3)
        assert losses["texture"] < losses["noise"] / 5, (fam, losses)


def test_cache_is_reused_without_synthesis(tmp_path, monkeypatch):
    cfg = analyses.TextureStimuliConfig(**{**SMALL, "families": ("gravel",), "max_iter": 2})
    first = analyses.texture_stimuli(cfg, cache_dir=tmp_path)
    files = list(tmp_path.glob("textures-*.nc"))
    assert len(files) == 1

    def no_synthesis(*args, **kwargs):
        raise AssertionError("re-synthesized although the cache holds this config")

    monkeypatch.setattr(analyses._textures, "_synthesize", no_synthesis)
    again = analyses.texture_stimuli(cfg, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.image.values, first.image.values)
    assert again.attrs["cache_key"] == first.attrs["cache_key"]
    other = analyses.TextureStimuliConfig(**{**SMALL, "families": ("gravel",), "max_iter": 2, "seed": 5})
    with pytest.raises(AssertionError, match="re-synthesized"):
        analyses.texture_stimuli(other, cache_dir=tmp_path)  # another config -> another key -> synthesis


def test_aperture_blends_into_the_grey_background():
    import torch

    cfg = analyses.TextureStimuliConfig(**{**SMALL, "families": ("gravel",), "max_iter": 2, "aperture": True})
    torch.set_num_threads(2)
    s = analyses.texture_stimuli(cfg, cache=False, num_threads=1)
    assert torch.get_num_threads() == 2  # the synthesis thread setting is restored
    torch.set_num_threads(1)
    for img in s.image.values:
        # corners are outside the aperture: exactly the background grey, for texture and noise alike
        assert img[0, 0] == np.float32(cfg.background) and img[-1, -1] == np.float32(cfg.background)
