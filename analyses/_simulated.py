"""A simulated primate V1/V2 recording (offline default for FreemanZiemba2013): energy units and V2 units that
pool products of V1 afferents, with Poisson trials."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import xarray as xr

import data
from data._checks import check_float, check_int, check_nbytes, check_seed

__all__ = ["SimulatedRecordingConfig", "simulated_recording", "validate_simulated_config"]

#: Upper bounds of a simulated recording's sizes (beyond them the arrays would not fit in memory anyway).
MAX_UNITS = 1_000_000
MAX_REPETITIONS = 100_000
MAX_TIME_BINS = 100_000


@dataclasses.dataclass(frozen=True)
class SimulatedRecordingConfig(data.Config):
    """Parameters of the simulated V1/V2 population.

    V1 units are complex cells: the energy ``E = |z|^2`` of a quadrature pair (an analytic log-Gabor filter at
    one spatial frequency and orientation), pooled by a small Gaussian at the unit's position: ``drive = pool(E)``.
    V2 units take ``v2_pairs_per_unit`` pairs ``(a, b)`` of *different* V1 channels (another orientation at the
    same frequency, or an adjacent frequency), and pool over a Gaussian ``v2_pool_factor`` times wider the
    products ``P = pool(sum_pairs (E_a E_b)^(p / 2))`` (``p = v2_exponent``) and the plain energies
    ``L = pool(sum_pairs (E_a + E_b) / 2)``; ``drive = w P / <P> + (1 - w) L / <L>`` with ``w`` drawn from
    ``v2_product_weight`` and ``<.>`` the mean over the stimulus set. The products are (at least) fourth-order
    statistics: they grow with the co-occurrence of energy across orientation and scale, which natural textures
    have and phase-randomized noise (same power spectrum, hence the same expected energy) lacks. V1 energy is
    second order, so its mean over positions is identical for an image and its phase-randomized noise
    (Parseval). Nothing reads the ``texture_type`` label.

    Rates: ``baseline + driven_rate * drive / <drive>`` per unit (contrast gain adapted to the stimulus
    ensemble; label-free), with log-normal per-unit baseline and driven rates. Trials are Poisson spike counts
    in the response window (or in time bins, with a latency and a transient temporal profile).

    Parameters
    ----------
    n_v1, n_v2
        Number of units per area (FreemanZiemba2013: 102 V1, 103 V2).
    spatial_frequencies
        Preferred spatial frequencies in cycles/degree (at most a quarter of the sampling rate).
    n_orientations
        Preferred orientations, evenly spaced over 180 degrees.
    bandwidth_octaves
        Radial full-width at half-maximum of the log-Gabor filters.
    v1_pool_wavelengths
        Sigma of the V1 energy pooling, in wavelengths of the unit's preferred frequency.
    v2_pool_factor
        Sigma of the V2 pooling relative to the V1 pooling of its coarser afferent.
    v2_pairs_per_unit
        Pairs of V1 channels whose energy products a V2 unit sums.
    v2_exponent
        Exponent ``p`` of the V2 subunit ``(|z_a| |z_b|)^p = (E_a E_b)^(p / 2)`` (``p = 2``: plain energy
        product; larger ``p``: an expansive output nonlinearity, more sensitive to sparse co-activation).
    v2_product_weight
        Range ``(low, high)`` of each V2 unit's weight ``w`` on the product term (drawn uniformly).
    position_extent
        Unit centers are drawn uniformly in the central ``position_extent`` fraction of the image.
    n_repetitions
        Trials per stimulus.
    window_ms
        Response window; counts are divided by its length (spikes/s).
    time_bin_ms
        If given, return a ``time_bin`` dim from 0 to ``duration_ms`` in bins of this width instead of one
        window average.
    duration_ms
        Length of the recorded epoch with ``time_bin_ms``.
    latency_ms
        Response latency of V1 and V2 (with ``time_bin_ms``).
    baseline_rate
        Median spontaneous rate (spikes/s); per unit log-normal with sigma 0.5.
    driven_rate
        Median driven rate at the ensemble-mean drive (spikes/s); per unit log-normal with sigma 0.5.
    seed
        Seed of unit parameters and Poisson trials (the recording's root seed when used on its own; in the main job
        it is not set: the job writes ``data.derive_seed(root, "neural")`` here).

    Raises
    ------
    TypeError, ValueError
        On construction, naming the field: the checks of :func:`validate_simulated_config` that need no
        stimuli (types, ranges; at most 10^6 units per area, 10^5 repetitions, 10^5 time bins).

    Examples
    --------
    >>> import analyses
    >>> c = analyses.SimulatedRecordingConfig(n_v1=10, n_v2=10, n_repetitions=4)
    >>> c.n_v1 + c.n_v2
    20
    """

    n_v1: int = 102
    n_v2: int = 103
    spatial_frequencies: tuple[float, ...] = (1.0, 2.0, 4.0)
    n_orientations: int = 4
    bandwidth_octaves: float = 1.5
    v1_pool_wavelengths: float = 0.75
    v2_pool_factor: float = 2.0
    v2_product_weight: tuple[float, float] = (0.5, 1.0)
    v2_pairs_per_unit: int = 4
    v2_exponent: float = 3.0
    position_extent: float = 0.5
    n_repetitions: int = 20
    window_ms: tuple[float, float] = (50.0, 200.0)
    time_bin_ms: float | None = None
    duration_ms: float = 300.0
    latency_ms: tuple[float, float] = (45.0, 60.0)
    baseline_rate: float = 4.0
    driven_rate: float = 20.0
    seed: int = 0

    def validate(self) -> None:
        _check_fields(self)


def validate_simulated_config(config: SimulatedRecordingConfig, stimuli: xr.Dataset | None = None
                              ) -> SimulatedRecordingConfig:
    """Check a :class:`SimulatedRecordingConfig` (and, if given, that the stimuli can carry its frequencies).

    Parameters
    ----------
    config
        The config.
    stimuli
        A grayscale stimulus set; its size and ``degrees`` bound the spatial frequencies.

    Returns
    -------
    SimulatedRecordingConfig
        ``config`` itself.

    Raises
    ------
    TypeError
        For a field of the wrong type (a string for a number, a bool for an integer).
    ValueError
        Naming the problem (a value out of range, frequencies the stimuli cannot carry, a recording that would
        not fit in memory).

    Examples
    --------
    >>> import analyses
    >>> analyses.validate_simulated_config(analyses.SimulatedRecordingConfig(n_repetitions=1))
    Traceback (most recent call last):
    ...
    ValueError: n_repetitions must be an integer >= 2 (split-half ceilings need repetitions), got 1
    """
    if not isinstance(config, SimulatedRecordingConfig):
        raise TypeError(f"expected a SimulatedRecordingConfig, got {type(config).__name__}")
    c = config
    c.validate()  # the constructor's checks again, for a config changed after construction
    if stimuli is not None:
        data.validate_stimuli(stimuli)
        if stimuli["image"].ndim != 3:
            raise ValueError("the simulated recording takes grayscale stimuli (stimulus_id, y, x)")
        n = min(stimuli.sizes["y"], stimuli.sizes["x"])
        cycles_per_image = [f * float(stimuli.attrs["degrees"]) for f in c.spatial_frequencies]
        if max(cycles_per_image) > n / 4:
            raise ValueError(
                f"spatial frequency {max(c.spatial_frequencies)} c/deg is {max(cycles_per_image):.1f} cycles per "
                f"image, above a quarter of the sampling rate ({n / 4:.1f}) for {n} px over "
                f"{stimuli.attrs['degrees']} deg; lower it or use larger images")
        if min(cycles_per_image) < 1:
            raise ValueError(f"spatial frequency {min(c.spatial_frequencies)} c/deg is below one cycle per image")
        n_bins = 1 if c.time_bin_ms is None else int(np.ceil(c.duration_ms / c.time_bin_ms))
        n_stim = stimuli.sizes["stimulus_id"]
        check_nbytes("n_repetitions", c.n_repetitions,
                     8.0 * n_stim * c.n_repetitions * (c.n_v1 + c.n_v2) * n_bins
                     + 16.0 * n_stim * len(c.spatial_frequencies) * c.n_orientations * n * n,
                     what=f"the recording of {c.n_v1 + c.n_v2} units x {n_stim} stimuli x {c.n_repetitions} "
                          f"repetitions x {n_bins} time bins and its filter outputs")
    return config


def _pair(name: str, value: object) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair of numbers, got {value!r:.60}")
    return (check_float(f"{name}[0]", value[0]), check_float(f"{name}[1]", value[1]))


def _check_fields(c: SimulatedRecordingConfig) -> None:
    """The checks of :func:`validate_simulated_config` that need no stimuli (run on construction too)."""
    for field in ("n_v1", "n_v2"):
        check_int(field, getattr(c, field), low=0, high=MAX_UNITS)
    if c.n_v1 + c.n_v2 == 0:
        raise ValueError("n_v1 + n_v2 must be positive")
    if isinstance(c.n_repetitions, bool) or not isinstance(c.n_repetitions, (int, np.integer)) \
            or c.n_repetitions < 2:
        raise ValueError(f"n_repetitions must be an integer >= 2 (split-half ceilings need repetitions), "
                         f"got {c.n_repetitions!r}")
    check_int("n_repetitions", c.n_repetitions, high=MAX_REPETITIONS)
    sfs = c.spatial_frequencies
    if isinstance(sfs, (str, bytes)) or not isinstance(sfs, (tuple, list)):
        raise TypeError(f"spatial_frequencies must be a tuple of numbers, got {sfs!r:.60}")
    if not sfs or len(sfs) > 64:
        raise ValueError(f"spatial_frequencies must hold 1 to 64 frequencies, got {len(sfs)}")
    for f in sfs:
        check_float("spatial_frequencies", f, low=0.0, low_open=True)
    if len(set(sfs)) != len(sfs):
        raise ValueError(f"spatial_frequencies has duplicates: {sfs}")
    check_int("n_orientations", c.n_orientations, low=1, high=360)
    if c.n_v2 and len(sfs) * c.n_orientations < 2:
        raise ValueError("V2 units need at least two V1 channels (spatial frequencies x orientations)")
    for field in ("bandwidth_octaves", "v1_pool_wavelengths", "v2_pool_factor", "v2_exponent"):
        check_float(field, getattr(c, field), low=0.0, low_open=True)
    lo, hi = _pair("v2_product_weight", c.v2_product_weight)
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f"v2_product_weight must be (low, high) with 0 <= low <= high <= 1, got {(lo, hi)}")
    check_int("v2_pairs_per_unit", c.v2_pairs_per_unit, low=1, high=10_000)
    check_float("position_extent", c.position_extent, low=0.0, high=1.0, low_open=True)
    w0, w1 = _pair("window_ms", c.window_ms)
    if not 0 <= w0 < w1:
        raise ValueError(f"window_ms must be (start, end) with 0 <= start < end, got {c.window_ms}")
    check_float("duration_ms", c.duration_ms, low=0.0, low_open=True)
    if c.time_bin_ms is not None:
        check_float("time_bin_ms", c.time_bin_ms, low=0.0, low_open=True)
        if c.duration_ms < w1:
            raise ValueError(f"duration_ms ({c.duration_ms}) must cover the response window {c.window_ms}")
        if c.duration_ms / c.time_bin_ms > MAX_TIME_BINS:
            raise ValueError(f"time_bin_ms={c.time_bin_ms} gives {c.duration_ms / c.time_bin_ms:.3g} time bins over "
                             f"duration_ms={c.duration_ms}; at most {MAX_TIME_BINS} are allowed")
    lat = _pair("latency_ms", c.latency_ms)
    if any(v < 0 for v in lat):
        raise ValueError(f"latency_ms must be (V1, V2) non-negative, got {c.latency_ms}")
    check_float("baseline_rate", c.baseline_rate, low=0.0)
    check_float("driven_rate", c.driven_rate, low=0.0, low_open=True)
    check_seed("seed", c.seed)


def _filters(n_y: int, n_x: int, degrees: float, c: SimulatedRecordingConfig) -> tuple[np.ndarray, list]:
    """Analytic log-Gabor filters in the Fourier domain, ``(channels, n_y, n_x)``, and (sf, orientation) pairs."""
    # frequencies in cycles/degree: the image width spans `degrees`, so one pixel is degrees / n_x degrees
    fy = np.fft.fftfreq(n_y, d=degrees / n_x)[:, None]
    fx = np.fft.fftfreq(n_x, d=degrees / n_x)[None, :]
    rho = np.hypot(fx, fy)
    phi = np.arctan2(fy, fx)
    sigma_log = c.bandwidth_octaves * np.log(2) / (2 * np.sqrt(2 * np.log(2)))
    sigma_theta = np.pi / c.n_orientations / 1.5
    filters, channels = [], []
    with np.errstate(divide="ignore"):
        log_rho = np.log(rho)
    for f in c.spatial_frequencies:
        radial = np.where(rho > 0, np.exp(-((log_rho - np.log(f)) ** 2) / (2 * sigma_log ** 2)), 0.0)
        for k in range(c.n_orientations):
            theta = np.pi * k / c.n_orientations
            d = np.angle(np.exp(1j * (phi - theta)))  # wrapped to (-pi, pi]: one lobe -> analytic filter
            filters.append(radial * np.exp(-(d ** 2) / (2 * sigma_theta ** 2)))
            channels.append((float(f), float(np.degrees(theta))))
    return np.stack(filters), channels


def _energies(images: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Complex-cell energy maps ``(n_images, channels, y, x)``."""
    spectra = np.fft.fft2(images)[:, None]
    z = np.fft.ifft2(spectra * filters[None])
    return (z.real ** 2 + z.imag ** 2)


def _gaussian_weights(n_y: int, n_x: int, centers: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Normalized Gaussian pooling weights ``(units, n_y * n_x)``; centers and sigmas in pixels."""
    if len(centers) == 0:
        return np.zeros((0, n_y * n_x))
    yy, xx = np.mgrid[0:n_y, 0:n_x]
    d2 = (yy[None] - centers[:, 0, None, None]) ** 2 + (xx[None] - centers[:, 1, None, None]) ** 2
    w = np.exp(-d2 / (2 * sigmas[:, None, None] ** 2)).reshape(len(centers), -1)
    return w / w.sum(axis=1, keepdims=True)


def _drives(stimuli: xr.Dataset, c: SimulatedRecordingConfig, rng: np.random.Generator
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Noise-free drives ``(stimuli, units)`` and per-unit metadata."""
    imgs = np.asarray(stimuli["image"].values, dtype=np.float64)
    n_s, n_y, n_x = imgs.shape
    degrees = float(stimuli.attrs["degrees"])
    px_per_deg = n_x / degrees
    filters, channels = _filters(n_y, n_x, degrees, c)
    n_c = len(channels)
    sfs = sorted(c.spatial_frequencies)

    def centers(n: int) -> np.ndarray:
        half = c.position_extent / 2
        return np.stack([rng.uniform(0.5 - half, 0.5 + half, n) * (n_y - 1),
                         rng.uniform(0.5 - half, 0.5 + half, n) * (n_x - 1)], axis=1)

    # V1: one channel each.
    v1_ch = rng.integers(0, n_c, c.n_v1)
    v1_pos = centers(c.n_v1)
    v1_sigma = np.array([c.v1_pool_wavelengths / channels[k][0] for k in v1_ch], dtype=float) * px_per_deg
    # V2: each unit pools products of `v2_pairs_per_unit` pairs of different V1 channels at the same frequency
    # (other orientation) or adjacent frequencies (any orientation).
    pairs = [(a, b) for a in range(n_c) for b in range(a + 1, n_c)
             if abs(sfs.index(channels[a][0]) - sfs.index(channels[b][0])) <= 1]
    k = c.v2_pairs_per_unit
    v2_pairs = np.array([[pairs[i] for i in rng.choice(len(pairs), size=k, replace=len(pairs) < k)]
                         for _ in range(c.n_v2)], dtype=int).reshape(c.n_v2, k, 2)
    v2_pos = centers(c.n_v2)
    v2_sigma = np.array([c.v2_pool_factor * c.v1_pool_wavelengths / min(channels[a][0] for a in p.ravel())
                         for p in v2_pairs], dtype=float).reshape(c.n_v2) * px_per_deg
    v2_w = rng.uniform(*c.v2_product_weight, c.n_v2)
    w1 = _gaussian_weights(n_y, n_x, v1_pos, v1_sigma)
    w2 = _gaussian_weights(n_y, n_x, v2_pos, v2_sigma)

    v1 = np.empty((n_s, c.n_v1))
    product = np.empty((n_s, c.n_v2))
    linear = np.empty((n_s, c.n_v2))
    # Each distinct pair's product map is computed once and pooled for every V2 unit with one matrix product
    # (V2 units share pairs: a few dozen distinct pairs serve hundreds of pair slots).
    used = np.zeros((0, 2), dtype=int)
    if c.n_v2:
        used, slot = np.unique(v2_pairs.reshape(-1, 2), axis=0, return_inverse=True)
        slot = slot.reshape(c.n_v2, -1)
    batch = max(1, int(2e7 // ((n_c + len(used)) * n_y * n_x)))
    for s0 in range(0, n_s, batch):
        e = _energies(imgs[s0:s0 + batch], filters).reshape(-1, n_c, n_y * n_x)
        pooled1 = e @ w1.T                                            # (images, channels, V1 units)
        v1[s0:s0 + batch] = pooled1[:, v1_ch, np.arange(c.n_v1)]
        if c.n_v2:
            maps = (e[:, used[:, 0]] * e[:, used[:, 1]]) ** (c.v2_exponent / 2)
            pooled_p = maps @ w2.T                                    # (images, pairs, V2 units)
            pooled_e = e @ w2.T                                       # (images, channels, V2 units)
            units = np.arange(c.n_v2)
            product[s0:s0 + batch] = pooled_p[:, slot, units[:, None]].sum(axis=2)
            linear[s0:s0 + batch] = 0.5 * (pooled_e[:, v2_pairs[:, :, 0], units[:, None]]
                                           + pooled_e[:, v2_pairs[:, :, 1], units[:, None]]).sum(axis=2)
    for name, d in (("V1", v1), ("V2 products", product), ("V2 energies", linear)):
        if d.size and (d.mean(axis=0) <= 0).any():
            raise ValueError(f"some simulated {name} get no drive from these stimuli (blank images?)")
    # Each term in units of its ensemble mean (contrast gain adapted to the stimulus set; label-free).
    v2 = (v2_w * product / product.mean(axis=0) + (1 - v2_w) * linear / linear.mean(axis=0)) if c.n_v2 else product
    drive = np.concatenate([v1 / v1.mean(axis=0) if c.n_v1 else v1, v2], axis=1)
    describe = [f"{channels[k][0]:g}cpd-{channels[k][1]:g}deg" for k in range(n_c)]
    meta = {
        "region": np.array(["V1"] * c.n_v1 + ["V2"] * c.n_v2),
        "preferred_sf": np.array([channels[k][0] for k in v1_ch] + [np.nan] * c.n_v2),
        "preferred_orientation": np.array([channels[k][1] for k in v1_ch] + [np.nan] * c.n_v2),
        "afferents": np.array([describe[k] for k in v1_ch]
                              + ["+".join(f"{describe[a]}*{describe[b]}" for a, b in p) for p in v2_pairs]),
        "rf_x_deg": np.concatenate([v1_pos[:, 1], v2_pos[:, 1]]) / px_per_deg,
        "rf_y_deg": np.concatenate([v1_pos[:, 0], v2_pos[:, 0]]) / px_per_deg,
        "pool_sigma_deg": np.concatenate([v1_sigma, v2_sigma]) / px_per_deg,
        "product_weight": np.concatenate([np.zeros(c.n_v1), v2_w]),
    }
    return drive, meta


def _temporal_profile(t_ms: np.ndarray, latency: float, window: tuple[float, float]) -> np.ndarray:
    """Transient-plus-sustained response profile, scaled so that its mean over the window is 1."""
    def raw(t: np.ndarray) -> np.ndarray:
        s = np.clip(t - latency, 0, None)
        tau = 25.0
        return (1 - np.exp(-s / 8.0)) * (0.5 + 1.5 * np.exp(-s / tau))
    grid = np.linspace(window[0], window[1], 301)
    return raw(t_ms) / raw(grid).mean()


def simulated_recording(stimuli: xr.Dataset, config: SimulatedRecordingConfig | None = None) -> xr.DataArray:
    """A simulated V1/V2 recording of a stimulus set, with Poisson trials (see :class:`SimulatedRecordingConfig`).

    The offline stand-in for FreemanZiemba2013: every neuroid carries ``source="simulated"`` and ``region``
    ``"V1"``/``"V2"``; every presentation carries ``repetition`` and the stimulus set's metadata
    (``texture_family``, ``texture_type``, ``sample`` ...). Units respond to images only: the texture/noise
    difference of V2 comes from its product (fourth-order) pooling of V1 energies.

    Parameters
    ----------
    stimuli
        Grayscale stimulus set (``degrees`` attribute sets the spatial scale).
    config
        :class:`SimulatedRecordingConfig`; default: 102 V1 + 103 V2 units, 20 repetitions, 50-200 ms window.

    Returns
    -------
    xarray.DataArray
        Assembly ``(presentation, neuroid)`` in spikes/s (stimulus-major, repetitions inner), or
        ``(presentation, neuroid, time_bin)`` with ``time_bin_start``/``time_bin_end`` (ms) when
        ``config.time_bin_ms`` is set. Neuroid coords: ``region``, ``source``, ``preferred_sf``,
        ``preferred_orientation``, ``afferents``, ``rf_x_deg``, ``rf_y_deg``, ``pool_sigma_deg``,
        ``product_weight`` (and ``latency_ms`` with time bins); only noisy trials are stored, as in a recording.

    Raises
    ------
    ValueError
        From :func:`validate_simulated_config`, before any work.

    Examples
    --------
    >>> import numpy as np, data, analyses
    >>> imgs = np.random.default_rng(0).random((3, 32, 32))
    >>> s = data.stimulus_set(imgs, texture_type=["texture", "noise", "noise"])
    >>> a = analyses.simulated_recording(s, analyses.SimulatedRecordingConfig(
    ...     n_v1=4, n_v2=3, n_repetitions=2, spatial_frequencies=(2.0,)))
    >>> a.dims, a.shape
    (('presentation', 'neuroid'), (6, 7))
    >>> sorted(set(a.region.values.tolist())), str(a.source.values[0])
    (['V1', 'V2'], 'simulated')
    """
    c = validate_simulated_config(config if config is not None else SimulatedRecordingConfig(), stimuli)
    ss = np.random.SeedSequence(c.seed)
    unit_seq, trial_seq = ss.spawn(2)
    rng = np.random.default_rng(unit_seq)
    drive, meta = _drives(stimuli, c, rng)
    n_s, n_u = drive.shape
    baseline = c.baseline_rate * rng.lognormal(0.0, 0.5, n_u)
    driven = c.driven_rate * rng.lognormal(0.0, 0.5, n_u)
    rate = baseline + driven * drive  # (stimuli, units), spikes/s in the response window
    trials = np.random.default_rng(trial_seq)
    reps = c.n_repetitions
    stim_idx = np.repeat(np.arange(n_s), reps)
    repetition = np.tile(np.arange(reps), n_s)
    coords = {name: ("presentation", np.asarray(v.values)[stim_idx]) for name, v in stimuli.coords.items()
              if v.dims == ("stimulus_id",) and name != "stimulus_id"}
    coords["repetition"] = ("presentation", repetition)
    neuroid_coords = {k: ("neuroid", v) for k, v in meta.items()}
    neuroid_coords["source"] = ("neuroid", np.array(["simulated"] * n_u))
    ids = [f"{r}_{i:03d}" for i, r in enumerate(meta["region"])]
    attrs = {"description": "simulated V1/V2 recording (energy units; V2 pools products of V1 energies); "
                            "Poisson trials",
             "simulation_config": json.dumps(dataclasses.asdict(c), sort_keys=True),
             "units": "spikes/s"}
    if c.time_bin_ms is None:
        window_s = (c.window_ms[1] - c.window_ms[0]) / 1000.0
        counts = trials.poisson(rate[stim_idx] * window_s)
        values = counts / window_s
        attrs.update({"window_start_ms": float(c.window_ms[0]), "window_end_ms": float(c.window_ms[1])})
    else:
        starts = np.arange(0.0, c.duration_ms, c.time_bin_ms)
        ends = np.minimum(starts + c.time_bin_ms, c.duration_ms)
        mids, widths = (starts + ends) / 2, (ends - starts) / 1000.0
        latency = np.where(meta["region"] == "V1", c.latency_ms[0], c.latency_ms[1])
        profile = np.stack([_temporal_profile(mids, lat, c.window_ms) for lat in latency])  # (units, bins)
        lam = baseline[None, :, None] + (rate - baseline)[stim_idx][:, :, None] * profile[None]
        values = trials.poisson(lam * widths[None, None]) / widths[None, None]
        neuroid_coords["latency_ms"] = ("neuroid", latency)
        coords["time_bin_start"] = ("time_bin", starts)
        coords["time_bin_end"] = ("time_bin", ends)
    return data.assembly(values.astype(np.float32), stimulus_id=np.asarray(stimuli["stimulus_id"].values)[stim_idx],
                         neuroid_id=ids, attrs=attrs, **coords, **neuroid_coords)
