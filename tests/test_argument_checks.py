"""Argument checks before work, scale-safe numerics and degenerate data (issue #15, point 2).

Each measured failure of the issue has a test here: the call now raises a ``ValueError``/``TypeError`` naming the
argument before any work, or returns the documented finite answer.
"""

from __future__ import annotations

import time
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import xarray as xr

import analyses
import data
import decoding
import geometry
from data import _checks
from geometry import _mftma, _simulated

# --- the shared checks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, error, match", [
    (True, TypeError, "n must be an integer, got True"),
    (2.5, TypeError, "n must be an integer"),
    ("3", TypeError, "n must be an integer, got '3'"),
    (None, TypeError, "n must be an integer"),
    (0, ValueError, "n must be a positive integer, got 0"),
    (-1, ValueError, "n must be a positive integer, got -1"),
])
def test_check_int_names_the_argument(value, error, match):
    with pytest.raises(error, match=match):
        _checks.check_int("n", value, low=1)


def test_check_int_accepts_numpy_integers_and_returns_python_ints():
    out = _checks.check_int("n", np.int64(3), low=1, high=3)
    assert out == 3 and type(out) is int
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 3\], got 4"):
        _checks.check_int("n", 4, low=1, high=3)


@pytest.mark.parametrize("value, error, match", [
    (float("nan"), ValueError, "x must be a number, got NaN"),
    (float("inf"), ValueError, "x must be a finite number"),
    ("1", TypeError, "x must be a real number, got '1'"),
    (1 + 2j, TypeError, "x must be a real number"),
    (False, TypeError, "x must be a real number, got False"),
    (-0.5, ValueError, "x must be a finite number >= 0, got -0.5"),
])
def test_check_float_names_the_argument(value, error, match):
    with pytest.raises(error, match=match):
        _checks.check_float("x", value, low=0.0)


def test_wrong_types_are_also_value_errors_for_callers_of_the_earlier_checks():
    with pytest.raises(ValueError):  # the hand-written checks this replaces raised ValueError for n_t=2.5
        geometry.validate_settings(n_t=2.5)
    with pytest.raises(TypeError):
        geometry.validate_settings(n_t=2.5)


def test_check_bool_path_and_array():
    assert _checks.check_bool("b", np.bool_(True)) is True
    with pytest.raises(TypeError, match="b must be True or False, got 1"):
        _checks.check_bool("b", 1)
    with pytest.raises(TypeError, match="p must be a path"):
        _checks.check_path("p", None)
    with pytest.raises(TypeError, match="a must hold real numbers, got complex"):
        _checks.check_array("a", np.ones(3) * 1j)
    with pytest.raises(TypeError, match="a must hold real numbers, got dtype <U1"):
        _checks.check_array("a", np.array(["x"]))
    with pytest.raises(ValueError, match="a contains NaN"):
        _checks.check_array("a", [1.0, np.nan])
    with pytest.raises(ValueError, match="a has values beyond the range of float32"):
        _checks.check_array("a", [1.0, 1e300], dtype=np.float32)


def test_memory_limit_follows_the_environment(monkeypatch):
    monkeypatch.setenv("LCL_WORKBENCH_MAX_GB", "0.5")
    assert _checks.memory_limit() == 2 ** 29
    with pytest.raises(ValueError, match=r"n=9 is too large: .* 0.5 GiB limit"):
        _checks.check_nbytes("n", 9, 2 ** 30)
    monkeypatch.setenv("LCL_WORKBENCH_MAX_GB", "lots")
    with pytest.raises(ValueError, match="LCL_WORKBENCH_MAX_GB"):
        _checks.memory_limit()


# --- decoding.LinearDecoder -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted_decoder():
    rng = np.random.default_rng(0)
    return decoding.LinearDecoder().fit(rng.poisson(4, (30, 10)), rng.random((30, 2, 2))), rng.poisson(4, (5, 10))


@pytest.mark.parametrize("batch_size", [-1, 0])
def test_predict_rejects_non_positive_batch_sizes(fitted_decoder, batch_size):
    dec, counts = fitted_decoder
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {batch_size}"):
        dec.predict(counts, batch_size=batch_size)


def test_predict_rejects_non_integer_batch_sizes(fitted_decoder):
    dec, counts = fitted_decoder
    for bad in (True, 2.5, "8"):
        with pytest.raises(TypeError, match="batch_size must be an integer"):
            dec.predict(counts, batch_size=bad)
    assert dec.predict(counts, batch_size=2).shape == (5, 2, 2)


def test_linear_decoder_constructor_checks_its_parameters():
    with pytest.raises(ValueError, match="alpha"):
        decoding.LinearDecoder(alpha=float("nan"))
    with pytest.raises(TypeError, match="chunk_size"):
        decoding.LinearDecoder(chunk_size=True)
    with pytest.raises(ValueError, match="dtype"):
        decoding.LinearDecoder(dtype="float16")


# --- complex and non-numeric data -----------------------------------------------------------------------------


def _complex_assembly() -> xr.DataArray:
    values = np.random.default_rng(0).normal(size=(6, 3)) * (1 + 1j)
    return xr.DataArray(values, dims=("presentation", "neuroid"),
                        coords={"stimulus_id": ("presentation", [f"s{i}" for i in range(6)]),
                                "neuroid_id": ("neuroid", ["a", "b", "c"]),
                                "category": ("presentation", list("aabbcc"))})


def test_assemblies_reject_complex_values():
    with pytest.raises(TypeError, match="assembly values must hold real numbers, got complex"):
        data.validate_assembly(_complex_assembly())
    with pytest.raises(TypeError, match="complex"):
        data.assembly(np.ones((2, 2)) * 1j, stimulus_id=["a", "b"], neuroid_id=["x", "y"])
    with pytest.raises(TypeError, match="real numbers"):
        data.validate_assembly(_complex_assembly().astype(str))


def test_stimulus_sets_reject_complex_values():
    with pytest.raises(TypeError, match="images must hold real numbers, got complex"):
        data.stimulus_set(np.full((2, 4, 4), 0.5 + 0j))
    s = data.stimulus_set(np.full((2, 4, 4), 0.5))
    s["image"] = s["image"].astype(complex)
    with pytest.raises(TypeError, match="stimulus images must hold real numbers"):
        data.validate_stimuli(s)


@pytest.mark.parametrize("measure", [
    lambda a: geometry.capacity(a, n_t=5, center_correlation="keep"),
    lambda a: geometry.alignment(a),
    lambda a: geometry.simulated_capacity(a, n_dichotomies=1),
    lambda a: geometry.decodability(a, cv=2),
    lambda a: analyses.texture_modulation(a.assign_coords(texture_family=("presentation", ["f"] * 6),
                                                          texture_type=("presentation", ["texture", "noise"] * 3))),
])
def test_complex_assemblies_never_lose_their_imaginary_part(measure):
    with pytest.raises(TypeError, match="complex"):
        measure(_complex_assembly())


def test_metrics_reject_complex_images():
    with pytest.raises(TypeError, match="reference must hold real numbers, got complex"):
        decoding.metrics.mse(np.zeros((8, 8)) + 1j, np.zeros((8, 8)))
    with pytest.raises(TypeError, match="reconstruction must hold real numbers"):
        decoding.metrics.ssim(np.zeros((8, 8)), np.full((8, 8), "a"))


# --- scale-invariant geometry ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifolds():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(6, 10)) + 3 * np.eye(10)[i] for i in range(4)]


SCALE_INVARIANT = {
    "capacity": (lambda ms: geometry.capacity(ms, n_t=20, n_reps=2),
                 ("capacity", "radius", "dimension", "center_correlation", "manifold_capacity")),
    "simulated_capacity": (lambda ms: geometry.simulated_capacity(ms, n_dichotomies=5),
                           ("capacity", "n_c", "separable_fraction")),
    "alignment": (lambda ms: geometry.alignment(ms),
                  ("center_alignment", "axis_alignment", "center_axis_alignment", "center_correlation")),
    "decodability": (lambda ms: geometry.decodability(ms, cv=2), ("accuracy", "fold_accuracy")),
}


@pytest.mark.parametrize("name", sorted(SCALE_INVARIANT))
@pytest.mark.parametrize("scale", [1e200, 1e-300])
def test_scale_invariant_measures_are_scale_invariant(manifolds, name, scale):
    measure, variables = SCALE_INVARIANT[name]
    ref = measure(manifolds)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow / invalid-value warnings on the way
        out = measure([m * scale for m in manifolds])
    for v in variables:
        assert np.isfinite(out[v].values).all(), (name, v)
        # the data at 1e200 are rounded differently from the data at 1: results agree to rounding, amplified
        # for capacity by the iterative center-correlation search
        np.testing.assert_allclose(out[v].values, ref[v].values, rtol=1e-6, atol=1e-12, err_msg=f"{name}.{v}")


@pytest.mark.parametrize("name", sorted(SCALE_INVARIANT))
def test_power_of_two_scales_give_identical_results(manifolds, name):
    measure, variables = SCALE_INVARIANT[name]
    ref = measure(manifolds)
    for exponent in (600, -990):
        out = measure([np.ldexp(m, exponent) for m in manifolds])
        for v in variables:
            np.testing.assert_array_equal(out[v].values, ref[v].values, err_msg=f"{name}.{v} at 2**{exponent}")


def test_separable_is_scale_invariant():
    pts = np.array([[0.0, 0.0], [1.0, 0.1], [0.0, 1.0], [1.0, 1.2]])
    y = np.array([-1, 1, -1, 1])
    for scale in (1.0, 1e200, 1e-300):
        assert geometry.separable(pts * scale, y)
    assert not geometry.separable(np.array([[0.0], [1e200], [2e200]]), np.array([-1, 1, -1]))
    with pytest.raises(ValueError, match="labels must be -1 or \\+1"):
        geometry.separable(pts, np.array([0, 1, 0, 1]))


def test_manifold_geometry_refuses_values_that_overflow():
    with pytest.raises(ValueError, match=r"points\[0\] has coordinates up to 1e\+200"):
        geometry.manifold_geometry([np.full((2, 2), 1e200), np.zeros((2, 2))], n_t=5)


def test_analytic_capacities_at_huge_margins_are_finite():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert geometry.gardner_capacity(1e300) == 0.0
        assert geometry.subspace_capacity(3, kappa=1e300) == 0.0
    with pytest.raises(TypeError, match="dimension must be an integer"):
        geometry.ball_capacity(1.5)


# --- wrong types before any work -----------------------------------------------------------------------------


@pytest.fixture()
def no_geometry_work(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(_mftma, "nnls_batched", boom)
    monkeypatch.setattr(_mftma, "center_structure", boom)
    monkeypatch.setattr(_mftma, "_anchor_analysis", boom)
    monkeypatch.setattr(_simulated, "_fraction", boom)


@pytest.mark.parametrize("call, error, match", [
    (lambda ms: geometry.decodability(ms, C="1"), TypeError, "C must be a real number, got '1'"),
    (lambda ms: geometry.decodability(ms, C=float("nan")), ValueError, "C must be a number, got NaN"),
    (lambda ms: geometry.decodability(ms, seed=2 ** 40), ValueError, "seed must be an integer in"),
    (lambda ms: geometry.capacity(ms, n_reps="3"), TypeError, "n_reps must be an integer, got '3'"),
    (lambda ms: geometry.capacity(ms, n_reps=10 ** 6), ValueError, "n_reps must be an integer in"),
    (lambda ms: geometry.capacity(ms, center_rtol=float("nan")), ValueError, "center_rtol"),
    (lambda ms: geometry.capacity(ms, solver=None), TypeError, "solver must be a string"),
    (lambda ms: geometry.capacity(ms, dtype="float64"), TypeError, "dtype must be torch.float32 or torch.float64"),
    (lambda ms: geometry.capacity(ms, device=3), TypeError, "device must be a device name"),
    (lambda ms: geometry.simulated_capacity(ms, balanced="no"), TypeError, "balanced must be True or False"),
    (lambda ms: geometry.simulated_capacity(ms, n_dichotomies=True), TypeError, "n_dichotomies must be an integer"),
])
def test_bad_settings_fail_before_any_work(no_geometry_work, manifolds, call, error, match):
    with pytest.raises(error, match=match):
        call(manifolds)


# --- sizes that would not fit in memory or time ---------------------------------------------------------------


def test_absurd_sizes_are_refused_at_once(no_geometry_work, manifolds):
    stimuli = data.natural_images(size=32, names=["camera"])
    calls = [
        (lambda: geometry.simulated_capacity(manifolds, max_dimension=10 ** 7),
         "max_dimension=10000000 exceeds the number of features N=10"),
        (lambda: data.sample_patches(stimuli, 10 ** 9, 8), r"n=1000000000 is too large: .* GiB of memory"),
        (lambda: geometry.capacity(manifolds, n_t=10 ** 9), r"n_t=1000000000 is too large: .* GiB of memory"),
        (lambda: geometry.manifold_geometry(manifolds, n_t=10 ** 9), r"n_t=1000000000 is too large"),
        (lambda: geometry.simulated_capacity(manifolds, n_dichotomies=10 ** 9), "n_dichotomies must be an integer"),
    ]
    for call, match in calls:
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match=match):
            call()
        assert time.perf_counter() - t0 < 2.0


def test_simulated_capacity_bounds_the_projection_by_memory(monkeypatch, manifolds):
    monkeypatch.setenv("LCL_WORKBENCH_MAX_GB", "1e-6")
    with pytest.raises(ValueError, match="max_dimension=10 is too large"):
        geometry.simulated_capacity(manifolds, max_dimension=10)


# --- neural predictivity on degenerate data -------------------------------------------------------------------


def _predictivity_data(rng, n=30, n_features=5, n_neuroids=4, reps=4):
    feats = rng.normal(size=(n, n_features))
    signal = feats @ rng.normal(size=(n_features, n_neuroids))
    trials = np.concatenate([signal + 0.3 * rng.normal(size=signal.shape) for _ in range(reps)])
    ids = [f"s{i}" for i in range(n)]
    return feats, trials, ids


def _assemblies(feats, trials, ids, reps=4):
    neural = data.assembly(trials, stimulus_id=ids * reps, neuroid_id=[f"n{i}" for i in range(trials.shape[1])],
                           repetition=np.repeat(np.arange(reps), len(ids)))
    model = data.assembly(feats, stimulus_id=ids, neuroid_id=[f"f{i}" for i in range(feats.shape[1])])
    return model, neural


PRED_CONFIG = analyses.PredictivityConfig(n_components=3, n_splits=3, ceiling_splits=3, stratify=None)


@pytest.mark.parametrize("regression", ["pls", "ridge"])
def test_constant_model_features_are_a_clear_error(regression):
    feats, trials, ids = _predictivity_data(np.random.default_rng(1))
    model, neural = _assemblies(np.ones_like(feats), trials, ids)
    cfg = analyses.PredictivityConfig(regression=regression, n_components=3, n_splits=3, ceiling_splits=3,
                                      stratify=None)
    with pytest.raises(ValueError, match="model_assembly: every model feature is constant"):
        analyses.neural_predictivity(model, neural, cfg)


def test_constant_neural_data_are_a_clear_error():
    feats, trials, ids = _predictivity_data(np.random.default_rng(2))
    model, neural = _assemblies(feats, np.full_like(trials, 3.0), ids)
    with pytest.raises(ValueError, match="neural_assembly: every neuroid"):
        analyses.neural_predictivity(model, neural, PRED_CONFIG)
    with pytest.raises(ValueError, match="neural_assembly: every neuroid responds identically"):
        analyses.split_half_ceiling(neural, n_splits=2)


def test_some_constant_neuroids_get_nan_with_a_warning():
    feats, trials, ids = _predictivity_data(np.random.default_rng(3))
    trials[:, 1] = 2.0
    model, neural = _assemblies(feats, trials, ids)
    with pytest.warns(RuntimeWarning, match=r"1 of 4 neuroids \(n1\) respond identically") as record:
        r = analyses.neural_predictivity(model, neural, PRED_CONFIG)
    assert len([w for w in record if "respond identically" in str(w.message)]) == 1  # one warning, not two
    assert np.isnan(r.r_mean.values[1]) and np.isfinite(r.r_mean.values[[0, 2, 3]]).all()
    assert np.isnan(r.consistency.values[:, 1]).all()
    assert np.isfinite(r.raw.values).all() and np.isfinite(r.ceiling.values).all()
    # the scores are those of the other neuroids alone
    keep = data.assembly(np.delete(trials, 1, axis=1), stimulus_id=ids * 4, neuroid_id=["n0", "n2", "n3"],
                         repetition=np.repeat(np.arange(4), len(ids)))
    alone = analyses.neural_predictivity(model, keep, PRED_CONFIG)
    np.testing.assert_allclose(r.raw.values, alone.raw.values)
    np.testing.assert_allclose(r.ceiling.values, alone.ceiling.values)


def test_predictivity_config_checks_on_construction():
    with pytest.raises(TypeError, match="train_size must be a real number"):
        analyses.PredictivityConfig(train_size="0.9")
    with pytest.raises(ValueError, match="n_splits must be an integer <= 10000"):
        analyses.PredictivityConfig(n_splits=10 ** 9)
    with pytest.raises(TypeError, match="stratify must be a string"):
        analyses.PredictivityConfig(stratify=3)
    with pytest.raises(ValueError, match="n_splits must be an integer <= 10000"):
        analyses.split_half_ceiling(_assemblies(*_predictivity_data(np.random.default_rng(4)))[1], n_splits=10 ** 12)


# --- image folders ---------------------------------------------------------------------------------------------


@pytest.fixture()
def folder(tmp_path):
    for i in range(3):
        iio.imwrite(tmp_path / f"{i}.png", (np.random.default_rng(i).random((20, 24)) * 255).astype(np.uint8))
    return tmp_path


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(size=0), ValueError, "size must be a positive integer, got 0"),
    (dict(size=2.5), TypeError, "size must be an integer, got 2.5"),
    (dict(size=True), TypeError, "size must be an integer, got True"),
    (dict(max_images=-1), ValueError, "max_images must be a positive integer, got -1"),
    (dict(max_images=0), ValueError, "max_images must be a positive integer, got 0"),
    (dict(degrees=float("inf")), ValueError, "degrees must be a finite number"),
])
def test_image_folder_checks_its_arguments(folder, kwargs, error, match):
    with pytest.raises(error, match=match):
        data.image_folder(folder, **{"size": 8, **kwargs})


def test_image_folder_max_images_keeps_that_many_files(folder):
    assert data.image_folder(folder, size=8, max_images=2).sizes["stimulus_id"] == 2
    assert data.image_folder(folder, size=8).sizes["stimulus_id"] == 3


def test_float_images_above_one_are_an_error_not_clipped(tmp_path):
    iio.imwrite(tmp_path / "bright.tif", np.full((10, 12), 2.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"bright.tif has dtype float32 with values in \[2, 2\]"):
        data.read_image(tmp_path / "bright.tif")
    with pytest.raises(ValueError, match="bright.tif"):
        data.image_folder(tmp_path, size=8)


def test_in_range_float_and_16_bit_images_are_read(tmp_path):
    iio.imwrite(tmp_path / "f.tif", np.full((10, 12), 0.25, dtype=np.float32))
    iio.imwrite(tmp_path / "w.png", np.full((10, 12), 65535, dtype=np.uint16))
    assert float(data.read_image(tmp_path / "f.tif").max()) == 0.25
    assert float(data.read_image(tmp_path / "w.png").max()) == 1.0


# --- scale-safe metrics ---------------------------------------------------------------------------------------


def test_metrics_with_a_huge_data_range_are_finite_and_scale_invariant():
    rng = np.random.default_rng(0)
    ref, rec = rng.random((16, 16)), rng.random((16, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert decoding.metrics.psnr(ref * 1e300, rec * 1e300, data_range=1e300) == pytest.approx(
            decoding.metrics.psnr(ref, rec), rel=1e-12)
        assert decoding.metrics.ssim(ref * 1e300, rec * 1e300, data_range=1e300) == pytest.approx(
            decoding.metrics.ssim(ref, rec), rel=1e-9)
