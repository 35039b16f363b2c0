"""Brain-Score's consistency measures of a neural recording: the split-half ceiling over repetitions with the
Spearman-Brown correction, Pearson r per neuroid, and Brain-Score's stimulus order."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

import data
from data._checks import check_float, check_int, check_real_dtype, check_seed

from ._assemblies import RESPONSE_WINDOW_MS, average_repetitions, average_time

__all__ = ["brainscore_order", "split_half_ceiling", "spearman_brown"]

#: Largest number of splits (stimulus splits or ceiling split-halves) accepted: each is a regression fit.
MAX_SPLITS = 10_000


def spearman_brown(r: np.ndarray | float, n: float = 2.0) -> np.ndarray:
    """Spearman-Brown prophecy: reliability of a measure ``n`` times longer, ``n r / (1 + (n - 1) r)``.

    Parameters
    ----------
    r
        Correlation(s) between parts.
    n
        Length factor (2 for a split-half).

    Returns
    -------
    numpy.ndarray
        NaN where ``r`` is NaN (a constant part); ``r = -1 / (n - 1)`` (a zero denominator) gives +-inf.

    Raises
    ------
    TypeError
        For non-numeric or complex ``r``, a non-numeric ``n``.
    ValueError
        For ``n`` that is not a positive finite number, or ``r`` outside [-1, 1].

    Examples
    --------
    >>> import analyses
    >>> float(analyses.spearman_brown(0.5))
    0.6666666666666666
    """
    n = check_float("n", n, low=0.0, low_open=True)
    if isinstance(r, (str, bytes)) or r is None:
        raise TypeError(f"r must be a correlation or an array of them, got {r!r:.40}")
    r = np.asarray(r)
    check_real_dtype("r", r.dtype)
    r = r.astype(np.float64)
    if np.any(np.abs(r[~np.isnan(r)]) > 1):
        raise ValueError("r must hold correlations in [-1, 1] (or NaN)")
    with np.errstate(divide="ignore", invalid="ignore"):
        return n * r / (1 + (n - 1) * r)


def _pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of ``a`` and ``b`` (rows = stimuli); NaN for a constant column."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=0) / np.where(den > 0, den, 1.0), np.nan)


def _nanmedian(x: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(x, axis=axis)


def _regions(a: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    if "region" in a.coords and a["region"].dims == ("neuroid",):
        unit = np.asarray(a["region"].values).astype(str)
    else:
        unit = np.array(["all"] * a.sizes["neuroid"])
    _, first = np.unique(unit, return_index=True)
    return unit, unit[np.sort(first)]


def _neuroid_coords(a: xr.DataArray) -> dict[str, tuple[str, np.ndarray]]:
    return {("unit_region" if n == "region" else n): ("neuroid", np.asarray(c.values))
            for n, c in a.coords.items() if c.dims == ("neuroid",)}


def split_half_ceiling(neural_assembly: xr.DataArray, *, n_splits: int = 10, seed: int = 1,
                       window_ms: tuple[float, float] | None = RESPONSE_WINDOW_MS) -> xr.Dataset:
    """Split-half internal consistency over repetitions with Spearman-Brown correction (Brain-Score ceiling).

    For each of ``n_splits`` random halves of the sorted unique ``repetition`` values, drawn as Brain-Score
    draws them (sklearn ``ShuffleSplit(n_splits, train_size=0.5, random_state=seed)``; for an odd count the
    first half is the smaller), each stimulus' responses are
    averaged within each half; the Pearson r across stimuli between the halves is computed per neuroid and
    corrected with :func:`spearman_brown` (``n = 2``), giving the reliability of the full-repetition mean. The
    ceiling is the median over neuroids (per region), averaged over splits.

    Parameters
    ----------
    neural_assembly
        Assembly with a ``repetition`` coordinate on presentation (time bins are averaged over ``window_ms``).
    n_splits
        Random split-halves.
    seed
        Seed of the split-halves.
    window_ms
        Response window for assemblies with time bins.

    Returns
    -------
    xarray.Dataset
        ``ceiling (region)``, ``ceiling_split (ceiling_split, region)``, ``consistency (ceiling_split, neuroid)``
        (corrected, per neuroid) and ``consistency_uncorrected (ceiling_split, neuroid)``.

    Raises
    ------
    TypeError
        For arguments of the wrong type (a string for ``n_splits`` or ``seed``).
    ValueError
        Without a ``repetition`` coordinate, with fewer than 2 repetitions, if a stimulus is missing from a
        half, for ``n_splits`` outside ``[1, 10000]``, or if every neuroid responds identically to every trial.

    Warns
    -----
    RuntimeWarning
        When some (not all) neuroids respond identically to every trial: their consistency is NaN (a Pearson r
        of constant responses is undefined) and they are left out of the per-region medians. A region whose
        neuroids are all constant gets a NaN ceiling.

    Examples
    --------
    >>> import numpy as np, data, analyses
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.normal(size=(200, 3))
    >>> reps = [signal + rng.normal(size=signal.shape) for _ in range(4)]  # per-trial noise var = signal var
    >>> a = data.assembly(np.concatenate(reps), stimulus_id=np.tile(np.arange(200), 4),
    ...                   neuroid_id=["a", "b", "c"], repetition=np.repeat(np.arange(4), 200))
    >>> c = analyses.split_half_ceiling(a)
    >>> round(float(c.ceiling.sel(region="all")), 1)  # reliability of a 4-trial mean: 1 / (1 + 1/4)
    0.8
    """
    return _split_half_ceiling(neural_assembly, n_splits, seed, window_ms, warn_constant=True)


def _constant_columns(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the columns of a 2-D array whose values are all equal."""
    return ~(values.max(axis=0) > values.min(axis=0))


def _report_constant(constant: np.ndarray, ids: np.ndarray, what: str) -> None:
    if constant.any():
        names = [str(v) for v in ids[constant][:5]]
        warnings.warn(f"{int(constant.sum())} of {constant.size} neuroids ({', '.join(names)}"
                      f"{', ...' if constant.sum() > 5 else ''}) respond identically to every {what}: their "
                      "correlations are NaN and they are left out of the medians", RuntimeWarning, stacklevel=3)


def _split_half_ceiling(neural_assembly: xr.DataArray, n_splits: int, seed: int,
                        window_ms: tuple[float, float] | None, *, warn_constant: bool) -> xr.Dataset:
    data.validate_assembly(neural_assembly)
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer, got {n_splits!r}")
    n_splits = check_int("n_splits", n_splits, high=MAX_SPLITS)
    seed = check_seed("seed", seed)
    if "repetition" not in neural_assembly.coords or neural_assembly["repetition"].dims != ("presentation",):
        raise ValueError("the split-half ceiling needs a 'repetition' coordinate on presentation "
                         "(trials of the same stimulus)")
    a = average_time(neural_assembly, window_ms)
    constant = _constant_columns(np.asarray(a.values, dtype=np.float64))
    if constant.all():
        raise ValueError("neural_assembly: every neuroid responds identically to every trial (in the response "
                         "window); the split-half consistency is undefined")
    if warn_constant:
        _report_constant(constant, np.asarray(a["neuroid_id"].values), "trial")
    reps = np.asarray(a["repetition"].values)
    uniq = np.unique(reps)
    if len(uniq) < 2:
        raise ValueError(f"the split-half ceiling needs at least 2 repetitions, found {len(uniq)}")
    unit_region, regions = _regions(a)
    stim_order = np.asarray(average_repetitions(a)["stimulus_id"].values).astype(str)
    corrected, uncorrected = [], []
    for first, second in _repetition_halves(uniq, n_splits, seed):
        halves = []
        for part in (uniq[first], uniq[second]):
            sub = a.isel(presentation=np.flatnonzero(np.isin(reps, part)))
            m = average_repetitions(sub)
            got = np.asarray(m["stimulus_id"].values).astype(str)
            missing = np.setdiff1d(stim_order, got)
            if len(missing):
                raise ValueError(f"stimuli {missing[:3].tolist()} have no trials in a split-half of the "
                                 f"repetitions {sorted(part.tolist())}; every stimulus needs repetitions in both "
                                 "halves")
            pos = {s: i for i, s in enumerate(got)}
            halves.append(np.asarray(m.values, dtype=np.float64)[[pos[s] for s in stim_order]])
        r = _pearson_columns(*halves)
        uncorrected.append(r)
        corrected.append(spearman_brown(r, 2))
    corrected = np.array(corrected)
    ceiling_split = np.stack([_nanmedian(corrected[:, unit_region == reg], axis=1) for reg in regions], axis=1)
    return xr.Dataset(
        {"ceiling": (("region",), ceiling_split.mean(axis=0)),
         "ceiling_split": (("ceiling_split", "region"), ceiling_split),
         "consistency": (("ceiling_split", "neuroid"), corrected),
         "consistency_uncorrected": (("ceiling_split", "neuroid"), np.array(uncorrected))},
        coords={**_neuroid_coords(a), "region": ("region", regions)},
        attrs={"ceiling": "split-half consistency over repetitions, Spearman-Brown corrected (n=2); median over "
                          "neuroids per split, mean over splits",
               "n_repetitions": int(len(uniq)), "ceiling_seed": int(seed)},
    )


def _repetition_halves(uniq: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split-halves of the sorted unique repetitions, drawn as Brain-Score draws them.

    Brain-Score's ``InternalConsistency`` cross-validates over the unique ``repetition`` values with
    ``ShuffleSplit(n_splits, train_size=0.5, random_state=seed)``: the "train" half (``floor(n / 2)`` values)
    and the "test" half (the rest). Returns index pairs into ``uniq``.
    """
    from sklearn.model_selection import ShuffleSplit

    splitter = ShuffleSplit(n_splits=n_splits, train_size=0.5, test_size=None, random_state=seed)
    return list(splitter.split(np.zeros(len(uniq))))


def brainscore_order(ids: np.ndarray) -> np.ndarray:
    """Indices that put stimuli in Brain-Score's order: sorted by ``stimulus_id`` (numbers as numbers).

    Brain-Score averages repetitions with a group-by over the presentation coordinates, which returns the
    stimuli sorted (``stimulus_id`` leads them in BrainIO assemblies and in :func:`data.assembly`), and builds
    its cross-validation splits on that order, so the same ``random_state`` selects the same test stimuli only
    in that order.

    Parameters
    ----------
    ids
        Stimulus ids, one per stimulus.

    Returns
    -------
    numpy.ndarray
        A stable argsort.

    Raises
    ------
    TypeError, ValueError
        For ids that are not a 1-D array (or hold NaN).

    Examples
    --------
    >>> import numpy as np, analyses
    >>> analyses.brainscore_order(np.array(["b", "a", "c"])).tolist()
    [1, 0, 2]
    >>> analyses.brainscore_order(np.array([10, 9, 100])).tolist()
    [1, 0, 2]
    """
    if isinstance(ids, (str, bytes)) or ids is None:
        raise TypeError(f"ids must be a 1-D array of stimulus ids, got {ids!r:.40}")
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D (one id per stimulus), got shape {ids.shape}")
    if ids.dtype.kind == "f" and np.isnan(ids).any():
        raise ValueError("ids must not contain NaN")
    if ids.dtype.kind not in "biuf":
        ids = ids.astype(str)
    return np.argsort(ids, kind="stable")
