"""Texture modulation index: exact on constructed responses, Brain-Score coordinate names, windows, errors."""

from __future__ import annotations

import numpy as np
import pytest

import analyses
import data


def constructed():
    """Two families x {texture, noise} x 2 samples x 2 repetitions; 3 units with chosen mean rates."""
    # unit rates per (family, type): family A: tex 30, noise 10 / family B: tex 20, noise 20   (unit u0, V2)
    #                               family A: tex 5,  noise 15 / family B: tex 8,  noise 2    (unit u1, V1)
    #                               zero everywhere                                          (unit u2, V1)
    rates = {("A", "texture"): (30, 5, 0), ("A", "noise"): (10, 15, 0),
             ("B", "texture"): (20, 8, 0), ("B", "noise"): (20, 2, 0)}
    rows, ids, fam, kind, sample, rep = [], [], [], [], [], []
    for (f, k), r in rates.items():
        for s in range(2):
            for rp in range(2):
                jitter = 1.0 if rp == 0 else -1.0  # repetitions scatter symmetrically around the rate
                rows.append([max(v + jitter * (v > 0), 0) for v in r])
                ids.append(f"{f}-{k}-{s}")
                fam.append(f)
                kind.append(k)
                sample.append(s)
                rep.append(rp)
    return data.assembly(np.array(rows, dtype=float), stimulus_id=ids, neuroid_id=["u0", "u1", "u2"],
                         texture_family=fam, texture_type=kind, sample=sample, repetition=rep,
                         region=("neuroid", ["V2", "V1", "V1"]))


def test_exact_indices_on_constructed_responses():
    r = analyses.texture_modulation(constructed())
    fam = r.modulation_family
    assert fam.sel(family="A").values[0] == pytest.approx((30 - 10) / 40)
    assert fam.sel(family="B").values[0] == pytest.approx(0.0)
    assert fam.sel(family="A").values[1] == pytest.approx((5 - 15) / 20)
    assert fam.sel(family="B").values[1] == pytest.approx((8 - 2) / 10)
    assert np.isnan(fam.values[2]).all()  # 0 / 0: undefined, not 0
    np.testing.assert_allclose(r.modulation.values[:2], [(0.5 + 0.0) / 2, (-0.5 + 0.6) / 2])
    np.testing.assert_allclose(r.modulation_pooled.values[:2], [(25 - 15) / 40, (6.5 - 8.5) / 15])
    np.testing.assert_allclose(r.response_texture.values[0], [30, 20])
    assert float(r.region_mean.sel(region="V2")) == pytest.approx(0.25)
    assert float(r.region_mean.sel(region="V1")) == pytest.approx(0.05)  # u2 undefined, skipped
    assert int(r.n_defined.sel(region="V1")) == 1
    np.testing.assert_allclose(r.region_family_mean.sel(region="V1").values, [-0.5, 0.6])
    assert list(r.unit_region.values) == ["V2", "V1", "V1"]


def test_brainscore_style_integer_families_and_no_region():
    a = constructed()
    a = a.assign_coords(texture_family=("presentation", np.where(a.texture_family.values == "A", 60, 71)))
    a = a.drop_vars("region")
    r = analyses.texture_modulation(a)
    assert list(r.family.values) == ["60", "71"]
    assert list(r.region.values) == ["all"]
    assert float(r.region_mean.sel(region="all")) == pytest.approx((0.25 + 0.05) / 2)


def test_time_bins_outside_the_window_are_ignored():
    a = constructed()
    values = np.repeat(a.values[:, :, None], 4, axis=2)
    values[:, :, 0] = 1000.0  # 0-50 ms: outside the 50-200 ms window
    values[:, :, 3] = 0.0     # 200-250 ms: outside
    timed = data.assembly(values, stimulus_id=a.stimulus_id.values, neuroid_id=a.neuroid_id.values,
                          texture_family=a.texture_family.values, texture_type=a.texture_type.values,
                          repetition=a.repetition.values, region=("neuroid", a.region.values),
                          time_bin_start=[0, 50, 100, 200], time_bin_end=[50, 100, 200, 250])
    r = analyses.texture_modulation(timed)
    np.testing.assert_allclose(r.modulation.values, analyses.texture_modulation(a).modulation.values)
    assert r.attrs["window_start_ms"] == 50.0


def test_modulation_index_formula():
    np.testing.assert_allclose(analyses.modulation_index([3.0, 1.0, 0.0], [1.0, 3.0, 5.0]), [0.5, -0.5, -1.0])
    assert np.isnan(analyses.modulation_index(0.0, 0.0))
    with pytest.raises(ValueError, match="non-negative"):
        analyses.modulation_index(-1.0, 1.0)


def test_errors_name_the_problem():
    a = constructed()
    with pytest.raises(ValueError, match="'texture_type' coordinate"):
        analyses.texture_modulation(a.drop_vars("texture_type"))
    with pytest.raises(ValueError, match="'texture' or 'noise'"):
        analyses.texture_modulation(a.assign_coords(texture_type=("presentation", ["tex"] * a.sizes["presentation"])))
    with pytest.raises(ValueError, match="non-negative responses"):
        analyses.texture_modulation(a - 100)
    only_b_noise = a.isel(presentation=np.flatnonzero(~((a.texture_family.values == "B")
                                                          & (a.texture_type.values == "noise"))))
    with pytest.raises(ValueError, match="family 'B' has no 'noise'"):
        analyses.texture_modulation(only_b_noise)


def test_results_round_trip_through_netcdf(tmp_path):
    r = analyses.texture_modulation(constructed())
    back = data.load(data.save(r, tmp_path / "mod.nc"))
    np.testing.assert_array_equal(back.modulation_family.values, r.modulation_family.values)
    assert float(back.region_mean.sel(region="V2")) == pytest.approx(0.25)
