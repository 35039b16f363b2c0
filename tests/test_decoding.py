"""decoding: retina, linear decoder, point-wise baseline and metrics (issue 5 acceptance); the enhancer and the study
are in tests/test_decoding_study.py."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import data
import decoding
from _tolerance import assert_close_within, gamma, unit_roundoff
from decoding import (
    LinearDecoder,
    MosaicConfig,
    PointwiseNonlinearity,
    Retina,
    RetinaConfig,
)


def tiny_retina(**kw) -> Retina:
    """4 x 4 image; ON mosaic 2 x 2 (spacing 2 px, cells at 1 and 3), OFF mosaic 1 x 1 (cell at 2, 2)."""
    cfg = dict(
        image_size=4,
        mosaics=(MosaicConfig("on", 2, +1, center_sigma=0.5, surround_sigma=1.0, surround_weight=0.5),
                 MosaicConfig("off", 1, -1, center_sigma=0.25, surround_sigma=0.5, surround_weight=0.0)),
        nonlinearity="softplus", gain=2.0, offset=0.3, scale=1.5, background=0.5, noise="poisson",
    )
    cfg.update(kw)
    return Retina(RetinaConfig(**cfg), dtype=torch.float64)


# ----------------------------------------------------------------------------------------------------------------
# Acceptance 1: a tiny retina whose firing rates are computed by hand.


def test_tiny_retina_impulse_rate_by_hand():
    # Identity nonlinearity, no surround, no background: the response to a unit impulse in pixel (0, 0), whose
    # centre is (0.5, 0.5), is the centre Gaussian at the cell. ON cell (1, 1), sigma = 0.5 * 2 px = 1 px:
    # d^2 = 0.5, exp(-0.25) / (2 pi) = 0.77880078 / 6.28318531 = 0.12394999.
    retina = tiny_retina(
        mosaics=(MosaicConfig("on", 2, +1, center_sigma=0.5, surround_weight=0.0),),
        nonlinearity="identity", gain=1.0, offset=0.0, scale=1.0, background=0.0, noise="none",
    )
    img = np.zeros((1, 4, 4))
    img[0, 0, 0] = 1.0
    r = retina.rates(img)[0]
    assert r[0] == pytest.approx(0.12394999, abs=1e-8)
    # Cell (1, 3) is 2.5 px away in x, 0.5 in y: d^2 = 6.5, exp(-3.25) / (2 pi) = 0.03877421 / 6.28318531
    # = 0.00617111.
    assert r[1] == pytest.approx(0.00617111, abs=1e-8)
    # Cell (3, 3): d^2 = 12.5 -> exp(-6.25) / (2 pi) = 0.00193045 / 6.28318531 = 0.00030724.
    assert r[3] == pytest.approx(0.00030724, abs=1e-8)
    # Cell (3, 1) is the mirror image of cell (1, 3).
    assert r[2] == r[1]


def test_tiny_retina_rates_match_hand_formula():
    retina = tiny_retina()
    img = np.random.default_rng(0).random((3, 4, 4))
    # Cells: ON at (y, x) = (1, 1), (1, 3), (3, 1), (3, 3) (row-major), then OFF at (2, 2).
    cells = [(1, 1, 1.0, 1.0, 2.0, 0.5), (1, 3, 1.0, 1.0, 2.0, 0.5), (3, 1, 1.0, 1.0, 2.0, 0.5),
             (3, 3, 1.0, 1.0, 2.0, 0.5), (2, 2, -1.0, 1.0, 2.0, 0.0)]
    expected = np.zeros((3, 5))
    for n in range(3):
        for c, (cy, cx, pol, sc, ss, w) in enumerate(cells):
            if c == 4:
                sc, ss = 0.25 * 4, 0.5 * 4  # OFF mosaic: spacing 4 px
            g = 0.0
            for i in range(4):
                for j in range(4):
                    d2 = (i + 0.5 - cy) ** 2 + (j + 0.5 - cx) ** 2
                    center = math.exp(-d2 / (2 * sc ** 2)) / (2 * math.pi * sc ** 2)
                    surround = math.exp(-d2 / (2 * ss ** 2)) / (2 * math.pi * ss ** 2)
                    g += (center - w * surround) * (img[n, i, j] - 0.5)
            expected[n, c] = 1.5 * math.log1p(math.exp(2.0 * pol * g + 0.3))
    np.testing.assert_allclose(retina.rates(img), expected, rtol=1e-12, atol=1e-14)
    counts = retina.simulate(img, seed=3)
    assert counts.cell_type.values.tolist() == ["on"] * 4 + ["off"]
    np.testing.assert_array_equal(counts.y.values, [1, 1, 3, 3, 2])
    np.testing.assert_array_equal(counts.x.values, [1, 3, 1, 3, 2])
    np.testing.assert_array_equal(counts.polarity.values, [1, 1, 1, 1, -1])
    assert (counts.values == np.round(counts.values)).all() and (counts.values >= 0).all()


def test_separable_filtering_equals_dense_receptive_fields():
    cfg = decoding.StudyConfig.preset("tiny").retina  # 32 x 32, four mosaics
    retina = Retina(cfg, dtype=torch.float64)
    q = np.arange(32) + 0.5
    py, px = np.meshgrid(q, q, indexing="ij")
    dense = []
    for m in cfg.mosaics:
        sp = 32 / m.grid
        sc, ss = m.center_sigma * sp, m.surround_sigma * sp
        for cy in (np.arange(m.grid) + 0.5) * sp:
            for cx in (np.arange(m.grid) + 0.5) * sp:
                d2 = (py - cy) ** 2 + (px - cx) ** 2
                rf = (np.exp(-d2 / (2 * sc ** 2)) / (2 * np.pi * sc ** 2)
                      - m.surround_weight * np.exp(-d2 / (2 * ss ** 2)) / (2 * np.pi * ss ** 2))
                dense.append(m.polarity * rf.ravel())
    dense = np.array(dense)
    img = np.random.default_rng(1).random((4, 32, 32))
    g = retina.generator_signal(torch.from_numpy(img)).numpy()
    np.testing.assert_allclose(g, (img.reshape(4, -1) - 0.5) @ dense.T, rtol=1e-10, atol=1e-12)
    assert retina.n_cells == sum(m.grid ** 2 for m in cfg.mosaics) == len(dense)


def test_default_retina_geometry_and_mean_count():
    retina = Retina()
    assert retina.n_cells == 5398
    types, n = np.unique(retina.cell_type, return_counts=True)
    assert dict(zip(types.tolist(), n.tolist())) == {"on_parasol": 676, "off_parasol": 1024, "on_midget": 1849,
                                                    "off_midget": 1849}
    photos = data.natural_images(size=256)
    crops = data.sample_patches(photos, 48, 128, seed=0)
    counts = retina.simulate(crops, seed=0)
    assert 4.0 <= float(counts.mean()) <= 5.0  # "mean about 4-5 spikes per cell per image"
    assert counts.dtype == np.float32
    assert "source_image" in counts.coords and counts.source.values[0] == "simulated"
    np.testing.assert_array_equal(counts.source_image.values, crops.source.values)


# ----------------------------------------------------------------------------------------------------------------
# Acceptance 2: Poisson statistics.


def test_spike_counts_are_poisson():
    """Over T = 4000 seeded trials of one image, per cell (85 cells, rates 0.2 - 20): the count mean is within
    5 standard errors (sqrt(rate / T)) of the rate, the variance within 5 standard errors
    (sqrt((rate + 2 rate^2) / T)) of the rate, and P(count = 0) within 5 binomial standard errors of exp(-rate).
    With 85 cells x 3 checks the chance of a false alarm is below 1e-4."""
    cfg = dataclasses.replace(decoding.StudyConfig.preset("tiny").retina, gain=10.0, scale=3.0)
    retina = Retina(cfg)
    img = data.sample_patches(data.natural_images(size=64, names=["camera"]), 1, 32, seed=2)["image"].values
    rate = retina.rates(img)[0].astype(np.float64)
    assert rate.min() < 1.0 < 8.0 < rate.max()  # a wide range of rates is tested
    trials = 4000
    counts = retina.simulate(np.repeat(img, trials, axis=0), seed=11).values.astype(np.float64)
    mean, var = counts.mean(0), counts.var(0, ddof=1)
    assert np.all(np.abs(mean - rate) < 5 * np.sqrt(rate / trials))
    assert np.all(np.abs(var - rate) < 5 * np.sqrt((rate + 2 * rate ** 2) / trials))
    p0 = np.exp(-rate)
    assert np.all(np.abs((counts == 0).mean(0) - p0) < 5 * np.sqrt(p0 * (1 - p0) / trials) + 1e-12)
    # Pooled over cells, the standardised mean errors behave like N(0, 1).
    z = (mean - rate) / np.sqrt(rate / trials)
    assert abs(z.mean()) < 5 / np.sqrt(len(z)) and 0.5 < (z ** 2).mean() < 1.6


def test_spikes_seeded_and_batch_invariant():
    # The noise is batch-invariant by construction (one generator per block of 64 images). The rates it draws from
    # are not, to rounding: another batch size or thread count may round the GEMM differently (float32: 3 of the
    # 51300 rates differ by 1 ulp here with 2 threads), and a Poisson draw flips with a probability of about the
    # absolute rate change (1e-6 for 1 ulp of a rate near 10), shifting the rest of that block's stream. float64
    # rates (changes of 1e-15) make that negligible for this exact comparison.
    retina = Retina(decoding.StudyConfig.preset("tiny").retina, dtype=torch.float64)
    imgs = np.random.default_rng(0).random((150, 32, 32)).astype(np.float32)
    a = retina.simulate(imgs, seed=5, batch_size=64).values
    b = retina.simulate(imgs, seed=5, batch_size=1000, n_threads=1).values
    c = retina.simulate(imgs, seed=6).values
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.3
    np.testing.assert_array_equal(retina.simulate(imgs[:64], seed=5).values, a[:64])


# ----------------------------------------------------------------------------------------------------------------
# Acceptance 3: a linear, noise-free retina is inverted to numerical precision.


def linear_retina(grid_on: int = 8, grid_off: int = 4) -> Retina:
    mos = (MosaicConfig("on", grid_on, +1, center_sigma=0.5, surround_sigma=1.5, surround_weight=0.55),
           MosaicConfig("off", grid_off, -1, center_sigma=0.6, surround_sigma=1.8, surround_weight=0.55))
    return Retina(RetinaConfig(image_size=8, mosaics=mos, nonlinearity="identity", gain=1.0, offset=0.0,
                               scale=1.0, noise="none"), dtype=torch.float64)


def test_linear_retina_full_rank_and_exact_recovery():
    retina = linear_retina()
    basis = np.eye(64).reshape(64, 8, 8)
    enc = retina.generator_signal(torch.from_numpy(basis)).numpy()  # (64 pixels, 80 cells)
    assert np.linalg.matrix_rank(enc) == 64  # full column rank: more cells than pixels
    rng = np.random.default_rng(0)
    train, test = rng.random((200, 8, 8)), rng.random((20, 8, 8))
    dec = LinearDecoder(alpha=0.0, dtype="float64").fit(retina.simulate(train), train)
    rec = dec.predict(retina.simulate(test))
    assert np.abs(rec - test).max() < 1e-9
    # A tiny ridge (relative 1e-12) is still exact to ~1e-8; a finite ridge is not.
    dec = LinearDecoder(alpha=1e-12, dtype="float64").fit(retina.simulate(train), train)
    assert np.abs(dec.predict(retina.simulate(test)) - test).max() < 1e-6
    dec = LinearDecoder(alpha=0.1, dtype="float64").fit(retina.simulate(train), train)
    assert np.abs(dec.predict(retina.simulate(test)) - test).max() > 1e-3


def test_too_few_cells_cannot_recover():
    retina = linear_retina(grid_on=4, grid_off=2)  # 20 cells < 64 pixels
    rng = np.random.default_rng(0)
    train, test = rng.random((200, 8, 8)), rng.random((20, 8, 8))
    dec = LinearDecoder(alpha=0.0, dtype="float64").fit(retina.simulate(train), train)
    assert np.abs(dec.predict(retina.simulate(test)) - test).max() > 0.1


def test_ridge_matches_sklearn_and_chunking():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    counts = rng.poisson(4.0, (120, 30)).astype(np.float64)
    images = rng.random((120, 3, 5))
    dec = LinearDecoder(alpha=0.3, dtype="float64", chunk_size=7).fit(counts, images)
    ref = Ridge(alpha=dec.lambda_, fit_intercept=True).fit(counts, images.reshape(120, -1))
    np.testing.assert_allclose(dec.coef_, ref.coef_.T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dec.intercept_, ref.intercept_, rtol=1e-8, atol=1e-10)
    new = rng.poisson(4.0, (9, 30))
    np.testing.assert_allclose(dec.predict(new).reshape(9, -1), ref.predict(new), rtol=1e-8, atol=1e-10)
    other = LinearDecoder(alpha=0.3, dtype="float64", chunk_size=1000).fit(counts, images)
    np.testing.assert_allclose(other.coef_, dec.coef_, rtol=1e-10, atol=1e-12)
    assert dec.lambda_ == pytest.approx(0.3 * np.trace(np.cov(counts.T, bias=True) * 120) / 30)
    # float32 products agree to their rounding bound (tests/_tolerance.py), propagated through the float64 solve:
    # Gram and cross products of 120 centred (float32-cast) samples off by gamma_122 |R|^T |R| and |R|^T |X|, the
    # relative ridge moving with the Gram's trace, |coef error| <= |A^-1| (E_cross + E_gram |coef|), then a float32
    # prediction (30 products, mean, bias); the float64 side's rounding is negligible. Bound 1.2e-4 to 3.4e-4 here
    # (the former atol=1e-4 was below it); measured 1.7e-7.
    f32 = LinearDecoder(alpha=0.3).fit(counts, images)
    u = unit_roundoff(np.float32)
    R, X = counts - counts.mean(0), images.reshape(120, -1) - images.reshape(120, -1).mean(0)
    A = R.T @ R + dec.lambda_ * np.eye(30)
    coef = np.linalg.solve(A, R.T @ X)
    e_gram, e_cross = (gamma(np.float32, 120 + 2) * np.abs(R).T @ np.abs(m) for m in (R, X))
    e_coef = (np.abs(np.linalg.inv(A)) @ (e_cross + (e_gram + 0.3 * np.trace(e_gram) / 30 * np.eye(30)) @ np.abs(coef))
              + u * np.abs(coef))
    e_pred = (np.abs(R) @ e_coef + gamma(np.float32, 30 + 3) * (np.abs(R) @ np.abs(coef) + images.mean(0).ravel())
              + 2 * u * (counts + counts.mean(0)) @ np.abs(coef))
    assert_close_within(f32.predict(counts).reshape(120, -1), dec.predict(counts).reshape(120, -1), e_pred)
    # alpha is relative, so scaling the counts changes nothing.
    scaled = LinearDecoder(alpha=0.3, dtype="float64").fit(10 * counts, images)
    np.testing.assert_allclose(scaled.predict(10 * counts), dec.predict(counts), atol=1e-9)


def test_pointwise_is_monotone_bounded_and_helps():
    rng = np.random.default_rng(0)
    truth = rng.random((20, 16, 16))
    lin = 2.0 * truth - 0.5 + 0.05 * rng.normal(size=truth.shape)  # miscalibrated linear output
    f = PointwiseNonlinearity(max_samples=3000).fit(lin, truth)
    out = f.transform(lin)
    assert out.min() >= 0 and out.max() <= 1
    grid = np.linspace(-2, 3, 200)
    assert np.all(np.diff(f.transform(grid)) >= 0)
    assert decoding.mse(truth, out).mean() < 0.1 * decoding.mse(truth, lin).mean()


# ----------------------------------------------------------------------------------------------------------------
# Metrics.


def test_metrics_known_values_and_data_range():
    from skimage.metrics import structural_similarity

    a = np.zeros((2, 8, 8))
    b = np.full((2, 8, 8), 0.1)
    np.testing.assert_allclose(decoding.mse(a, b), [0.01, 0.01])
    np.testing.assert_allclose(decoding.psnr(a, b), [20.0, 20.0])
    assert decoding.psnr(a[0], b[0], data_range=255.0) == pytest.approx(20 + 20 * np.log10(255))
    assert decoding.psnr(a[0], a[0]) == np.inf
    rng = np.random.default_rng(0)
    x = rng.random((3, 32, 32))
    y = np.clip(x + 0.2 * rng.normal(size=x.shape), -0.5, 1.5)  # overshoots [0, 1]
    s = decoding.ssim(x, y)
    ref = [structural_similarity(x[i], y[i], data_range=1.0) for i in range(3)]
    np.testing.assert_allclose(s, ref)
    # data_range is the reference domain's, not inferred from the (overshooting) reconstruction.
    inferred = [structural_similarity(x[i], y[i], data_range=y[i].max() - y[i].min()) for i in range(3)]
    assert not np.allclose(s, inferred)
    assert decoding.ssim(x[0], x[0]) == pytest.approx(1.0)


@pytest.mark.parametrize("fn", [decoding.mse, decoding.psnr, decoding.ssim])
def test_metrics_bad_input(fn):
    with pytest.raises(ValueError, match="differ in shape"):
        fn(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    with pytest.raises(ValueError, match="NaN"):
        fn(np.zeros((8, 8)), np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="images must be"):
        fn(np.zeros(8), np.zeros(8))


def test_metrics_bad_data_range():
    with pytest.raises(ValueError, match="data_range"):
        decoding.psnr(np.zeros((8, 8)), np.zeros((8, 8)), data_range=0)
    with pytest.raises(ValueError, match="data_range"):
        decoding.ssim(np.zeros((8, 8)), np.zeros((8, 8)), data_range=-1.0)


def test_metrics_accept_stimulus_sets():
    rng = np.random.default_rng(1)
    x = rng.random((2, 16, 16))
    y = np.clip(x + 0.05 * rng.normal(size=x.shape), 0, 1)
    stim = data.stimulus_set(x, stimulus_id=["a", "b"])
    for fn in (decoding.mse, decoding.psnr, decoding.ssim):
        np.testing.assert_array_equal(fn(stim, y), fn(x, y))
    with pytest.raises(ValueError, match="'image' variable"):
        decoding.mse(stim.rename(image="pixels"), y)


# ----------------------------------------------------------------------------------------------------------------
# Acceptance 5: bad input.


@pytest.mark.parametrize("images, match", [
    (np.zeros((2, 64, 64)), "128 x 128"),
    (np.zeros((2, 128, 64)), "square"),
    (np.zeros((128, 128)), r"shape \(n, y, x\)"),
    (np.zeros((1, 128, 128, 3)), "colour"),
    (np.full((1, 128, 128), 1.5), r"\[0, 1\]"),
    (np.full((1, 128, 128), -0.1), r"\[0, 1\]"),
    (np.full((1, 128, 128), np.nan), "NaN"),
    (np.full((1, 128, 128), np.inf), "inf"),
    (np.zeros((0, 128, 128)), "empty batch"),
    (torch.full((1, 128, 128), float("nan")), "NaN"),
])
def test_retina_rejects_bad_images(images, match):
    with pytest.raises(ValueError, match=match):
        Retina().simulate(images)


def test_retina_rejects_bad_types_and_colour_sets():
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        Retina().simulate([[[0.0] * 128] * 128])
    with pytest.raises(TypeError, match="numeric"):
        Retina().simulate(np.full((1, 128, 128), "a"))
    colour = data.stimulus_set(np.zeros((1, 128, 128, 3)))
    with pytest.raises(ValueError, match="grayscale"):
        Retina().simulate(colour)
    with pytest.raises(ValueError, match="seed"):
        Retina().simulate(np.zeros((1, 128, 128)), seed=-1)


def test_mosaic_larger_than_image_rejected():
    with pytest.raises(ValueError, match="larger than the image"):
        RetinaConfig(image_size=16, mosaics=(MosaicConfig("on_parasol", 26),))
    with pytest.raises(ValueError, match="larger than the image"):
        RetinaConfig(image_size=32, mosaics=(MosaicConfig("on", 10, spacing=4.0),))
    RetinaConfig(image_size=40, mosaics=(MosaicConfig("on", 10, spacing=4.0),))  # fits exactly


@pytest.mark.parametrize("kw, err, match", [
    ({"nonlinearity": "tanh"}, ValueError, "nonlinearity"),
    ({"noise": "gaussian"}, ValueError, "noise"),
    ({"nonlinearity": "identity"}, ValueError, "non-negative rates"),
    ({"scale": 0.0}, ValueError, "scale"),
    ({"mosaics": ()}, ValueError, "at least one mosaic"),
    ({"mosaics": (MosaicConfig("a", 4), MosaicConfig("a", 2))}, ValueError, "unique"),
])
def test_retina_config_errors(kw, err, match):
    with pytest.raises(err, match=match):
        RetinaConfig(image_size=16, **{"mosaics": (MosaicConfig("a", 4),), **kw})


def test_mosaic_config_errors():
    with pytest.raises(ValueError, match="polarity"):
        MosaicConfig("a", 4, polarity=0)
    with pytest.raises(ValueError, match="center_sigma"):
        MosaicConfig("a", 4, center_sigma=-1.0)
    with pytest.raises(TypeError, match="grid"):
        MosaicConfig("a", 4.5)


def test_decoder_rejects_bad_input():
    rng = np.random.default_rng(0)
    counts, images = rng.poisson(4, (10, 6)).astype(float), rng.random((10, 4, 4))
    with pytest.raises(ValueError, match="10 count rows but 9 images"):
        LinearDecoder().fit(counts, images[:9])
    bad = counts.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LinearDecoder().fit(bad, images)
    with pytest.raises(ValueError, match="empty"):
        LinearDecoder().fit(counts[:0], images[:0])
    with pytest.raises(ValueError, match="alpha"):
        LinearDecoder(alpha=-1).fit(counts, images)
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearDecoder().predict(counts)
    dec = LinearDecoder().fit(counts, images)
    with pytest.raises(ValueError, match="fitted on 6"):
        dec.predict(counts[:, :5])
    with pytest.raises(TypeError, match="counts must be"):
        dec.predict(counts.tolist())


def test_decoder_checks_stimulus_ids():
    retina = Retina(decoding.StudyConfig.preset("tiny").retina)
    stims = data.stimulus_set(np.random.default_rng(0).random((5, 32, 32)))
    counts = retina.simulate(stims)
    LinearDecoder().fit(counts, stims)
    with pytest.raises(ValueError, match="stimulus_id"):
        LinearDecoder().fit(counts, stims.isel(stimulus_id=[1, 0, 2, 3, 4]))
