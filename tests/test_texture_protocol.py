"""The texture-selectivity protocol (Freeman et al. 2013; Brain-Score Marques2020): exact oracles for the read-out.

- a constructed population with known per-family responses gives the known index;
- the centre read-out is the unit whose receptive field is centred on the image (the model's output on the centred
  receptive-field-sized crop, which is exact for unpadded layers);
- the responsive criterion drops exactly the constructed silent and constant units, and says how many it dropped.
"""

import numpy as np
import pytest
import xarray as xr
import torch

import analyses
import data
import lcl


def _population(r_tex: np.ndarray, r_noise: np.ndarray, n_samples: int = 3, regions=None) -> "xr.DataArray":
    """Assembly whose unit u answers r_tex[u, f] to every texture of family f and r_noise[u, f] to its noise."""
    n_u, n_f = r_tex.shape
    rows, fam, kind, ids = [], [], [], []
    for f in range(n_f):
        for k, resp in (("texture", r_tex), ("noise", r_noise)):
            for s in range(n_samples):
                rows.append(resp[:, f])
                fam.append(f"fam{f}")
                kind.append(k)
                ids.append(f"fam{f}-{k}-{s}")
    regions = regions if regions is not None else ["V2"] * n_u
    return data.assembly(np.array(rows), stimulus_id=ids, neuroid_id=[f"u{u}" for u in range(n_u)],
                         texture_family=fam, texture_type=kind, region=list(regions))


def test_constructed_population_gives_the_known_index():
    rng = np.random.default_rng(0)
    r_noise = rng.uniform(1.0, 10.0, (40, 12))
    target = rng.uniform(-0.5, 0.8, (40, 12))                      # wanted per-family index
    r_tex = r_noise * (1 + target) / (1 - target)                  # (t - n) / (t + n) = target exactly
    ds = analyses.texture_modulation(_population(r_tex, r_noise), n_boot=500)
    np.testing.assert_allclose(ds.modulation_family.values, target, rtol=0, atol=1e-12)
    unit = target.mean(axis=1)
    np.testing.assert_allclose(ds.modulation.values, unit, atol=1e-12)
    r = ds.sel(region="V2")
    assert float(r.region_mean) == pytest.approx(unit.mean(), abs=1e-12)
    assert float(r.region_median) == pytest.approx(np.median(unit), abs=1e-12)
    assert float(r.region_frac_positive) == pytest.approx((unit > 0).mean(), abs=1e-12)
    assert int(r.n_responsive) == 40 and float(r.frac_responsive) == 1.0
    # the bootstrap interval brackets the mean and has about the width of +-1.96 standard errors
    lo, hi = float(r.region_ci_low), float(r.region_ci_high)
    sem = unit.std(ddof=1) / np.sqrt(unit.size)
    assert lo < unit.mean() < hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * sem, rel=0.25)


def test_responsive_criterion_drops_exactly_the_silent_and_constant_units():
    rng = np.random.default_rng(1)
    n_u, n_f = 30, 12
    r_noise = rng.uniform(1.0, 10.0, (n_u, n_f))
    r_tex = r_noise * rng.uniform(0.8, 1.6, (n_u, n_f))
    silent = np.zeros(n_u, bool)
    silent[[2, 5, 11, 17]] = True
    constant = np.zeros(n_u, bool)
    constant[[3, 20]] = True
    r_tex[silent] = r_noise[silent] = 1e-3            # the floor of sqrt(eps): a rectified channel that never fires
    r_tex[constant] = r_noise[constant] = 4.0          # a unit that answers everything alike
    regions = ["V1"] * 15 + ["V2"] * 15
    ds = analyses.texture_modulation(_population(r_tex, r_noise, regions=regions), n_boot=200)
    np.testing.assert_array_equal(ds.responsive.values, ~(silent | constant))
    for reg, sl in (("V1", slice(0, 15)), ("V2", slice(15, 30))):
        keep = ~(silent | constant)[sl]
        r = ds.sel(region=reg)
        assert int(r.n_units) == 15 and int(r.n_responsive) == keep.sum()
        assert float(r.frac_responsive) == pytest.approx(keep.mean())
        assert float(r.region_mean) == pytest.approx(ds.modulation.values[sl][keep].mean(), abs=1e-12)
    # with both thresholds at 0 only units whose responses are exactly constant (silent ones too) are dropped
    loose = analyses.texture_modulation(_population(r_tex, r_noise, regions=regions), min_peak=0.0,
                                        min_range=0.0, n_boot=200)
    assert int(loose.n_responsive.sum()) == n_u - constant.sum() - silent.sum()
    # a unit that responds weakly (2 % of the largest peak) is kept at min_peak=0.01 and dropped at 0.05
    r_tex[0] = r_tex[0] / r_tex.max() * 0.02 * r_tex.max()
    r_noise[0] = r_tex[0] * 0.9
    weak = _population(r_tex, r_noise, regions=regions)
    assert bool(analyses.texture_modulation(weak, n_boot=200).responsive[0])
    assert not bool(analyses.texture_modulation(weak, min_peak=0.05, n_boot=200).responsive[0])


def test_bootstrap_interval_is_hierarchical_over_groups():
    rng = np.random.default_rng(2)
    tight = [rng.normal(0.1, 0.05, 200) for _ in range(3)]
    spread = [rng.normal(m, 0.05, 200) for m in (0.0, 0.1, 0.2)]   # same units, seeds disagree
    _, lo_t, hi_t = analyses.bootstrap_mean_ci(tight, n_boot=500)
    m, lo_s, hi_s = analyses.bootstrap_mean_ci(spread, n_boot=500)
    assert m == pytest.approx(np.mean([s.mean() for s in spread]))
    assert (hi_s - lo_s) > 5 * (hi_t - lo_t)
    with pytest.raises(ValueError, match="finite"):
        analyses.bootstrap_mean_ci(np.array([0.1, np.nan]))


@pytest.mark.parametrize("image_side", [41, 40])
def test_center_unit_is_the_one_whose_receptive_field_is_centred(image_side):
    # two unpadded layers: RF 5 + (3 - 1) * 2 = 9 px, cumulative stride 4
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 5, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(3, 4, 3, stride=2))
    size, stride = 9, 4
    imgs = np.random.default_rng(0).random((3, image_side, image_side))
    s = data.stimulus_set(imgs)
    out = data.record(net, s, ["2"], pool="center", receptive_fields={"2": (size, stride)}, progress=False)["2"]
    i, offset = data.center_index(net(torch.zeros(1, 1, image_side, image_side)).shape[-1], image_side,
                                  (size, stride))
    # unit i covers pixels [4 i, 4 i + 9): run the network on exactly that window -> a 1 x 1 map
    crop = torch.from_numpy(imgs[:, None, 4 * i:4 * i + size, 4 * i:4 * i + size]).float()
    with torch.no_grad():
        direct = net(crop)[:, :, 0, 0].numpy()
    np.testing.assert_array_equal(out.values, direct)
    assert abs(offset) <= stride / 2
    np.testing.assert_array_equal(out.center_offset_px.values, abs(offset))
    if image_side == 41:   # (41 - 9) / 2 = 16 = 4 x 4: exactly centred
        assert (i, offset) == (4, 0.0)


def test_center_readout_of_an_lcl_model_matches_the_centred_crop():
    torch.manual_seed(0)
    m = lcl.V1V2(lcl.ModelConfig(stage1=lcl.StageConfig(channels=4), stage2=lcl.StageConfig(channels=5)))
    rf = m.rf(2)
    side = rf.size + 2 * rf.stride * 5           # the centre unit is exactly centred
    imgs = np.random.default_rng(3).random((2, side, side))
    units = analyses.record_units(m, data.stimulus_set(imgs))
    lo = (side - rf.size) // 2
    with torch.no_grad():
        direct = m(torch.from_numpy(imgs[:, None, lo:lo + rf.size, lo:lo + rf.size]).float())
    assert direct.shape[-1] == 1
    np.testing.assert_array_equal(units["stage2"].values, direct[:, :, 0, 0].numpy())
    assert float(units["stage2"].center_offset_px[0]) == 0.0


def test_center_readout_errors_are_clear():
    net = torch.nn.Conv2d(1, 2, 3)
    s = data.stimulus_set(np.zeros((1, 10, 10)))   # 8-unit map: no middle unit without a receptive field
    with pytest.raises(ValueError, match="no middle unit"):
        data.record(torch.nn.Sequential(net), s, ["0"], pool="center", progress=False)
    with pytest.raises(ValueError, match="not recorded"):
        data.record(torch.nn.Sequential(net), s, ["0"], pool="center", receptive_fields={"1": (3, 1)},
                    progress=False)
    with pytest.raises(ValueError, match="readout"):
        analyses.record_units(net, s, ["0"], readout="peak")


def test_protocol_stimuli_config_and_canvas(tmp_path):
    default = analyses.TextureStimuliConfig()
    assert len(default.families) >= 12 and default.n_samples >= 8 and default.size >= 128
    assert default.aperture and default.canvas == 2.0 and default.image_degrees == 2 * default.degrees
    cfg = analyses.TextureStimuliConfig(families=("gravel",), n_samples=2, size=32, n_scales=2, max_iter=2,
                                        canvas=2.0, background=0.5)
    s = analyses.texture_stimuli(cfg, cache_dir=tmp_path)
    assert s.image.shape == (4, 64, 64) and s.attrs["degrees"] == 8.0
    img = s.image.values
    assert np.all(img[:, :16, :] == np.float32(0.5)) and np.all(img[:, :, -16:] == np.float32(0.5))
    inner = analyses.crop_to_stimulus(s)
    assert inner.image.shape == (4, 32, 32) and inner.attrs["degrees"] == 4.0
    with pytest.raises(ValueError, match="aperture"):
        analyses.validate_texture_config(analyses.TextureStimuliConfig(aperture=False, canvas=2.0))


def test_parallel_synthesis_gives_the_serial_stimuli(tmp_path):
    # Each family has its own seeds and the set is assembled in family order: the number of worker processes
    # cannot change a pixel (each worker runs the same single-threaded float32 operations).
    c = analyses.TextureStimuliConfig(families=("brick", "grass"), n_samples=2, size=32, n_scales=2, max_iter=2)
    serial = analyses.texture_stimuli(c, cache=False)
    parallel = analyses.texture_stimuli(c, cache=False, workers=2)
    np.testing.assert_array_equal(serial.image.values, parallel.image.values)
    np.testing.assert_array_equal(serial.stimulus_id.values, parallel.stimulus_id.values)
    with pytest.raises(ValueError, match="workers"):
        analyses.texture_stimuli(c, cache=False, workers=0)
