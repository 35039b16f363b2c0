"""Neural predictivity in Brain-Score's convention (FreemanZiemba2013): cross-validated PLS/ridge regression,
Pearson r per neuroid, split-half (Spearman-Brown) ceiling."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import xarray as xr

import data
from data._checks import check_float, check_int, check_seed, check_str

from ._assemblies import RESPONSE_WINDOW_MS, average_repetitions, average_time
from ._consistency import (MAX_SPLITS, _constant_columns, _nanmedian, _neuroid_coords, _pearson_columns, _regions,
                           _report_constant, _split_half_ceiling, brainscore_order)

__all__ = ["PredictivityConfig", "neural_predictivity", "validate_predictivity_config"]

REGRESSIONS = ("pls", "ridge")
#: What the result's variables are (also in every saved result).
SCORE_CONVENTION = ("Brain-Score FreemanZiemba2013: stimuli sorted by stimulus_id; r per neuroid on held-out "
                    "stimuli, median over neuroids, mean over splits (raw; raw_sem: ddof=0); ceiling: split-half "
                    "consistency over repetitions (ShuffleSplit halves), Spearman-Brown corrected; "
                    "score = raw^2 / ceiling (Brain-Score since 2026-01-13); "
                    "score_legacy = (raw / ceiling)^2 (Brain-Score up to 2.3.12)")


@dataclasses.dataclass(frozen=True)
class PredictivityConfig(data.Config):
    """Brain-Score's FreemanZiemba2013 predictivity protocol (defaults) and its options.

    Parameters
    ----------
    regression
        ``"pls"`` (sklearn ``PLSRegression(n_components, scale=False)``, as Brain-Score) or ``"ridge"``
        (``RidgeCV`` over ``ridge_alphas`` with one alpha per neuroid, chosen by leave-one-out on the training
        stimuli).
    n_components
        PLS components (Brain-Score: 25). Must not exceed the training stimuli or model features.
    ridge_alphas
        Candidate ridge penalties.
    n_splits
        Shuffle splits (Brain-Score: 10).
    train_size
        Fraction of stimuli used for training in each split (Brain-Score: 0.9; test = the rest).
    stratify
        Presentation coordinate to stratify the splits by when the neural assembly has it (Brain-Score:
        ``texture_type``); ``None`` for plain shuffle splits.
    ceiling_splits
        Random split-halves of the repetitions for the ceiling.
    window_ms
        Response window averaged when assemblies have time bins (Brain-Score: 50-200 ms).
    seed
        ``random_state`` of the stimulus splits and of the repetition split-halves (Brain-Score: 1), in
        ``[0, 2**32 - 1]``.

    Raises
    ------
    TypeError, ValueError
        On construction, naming the field: the checks of :func:`validate_predictivity_config` without
        ``n_stimuli``.

    Examples
    --------
    >>> import analyses
    >>> analyses.PredictivityConfig(regression="ridge").n_splits
    10
    """

    regression: str = "pls"
    n_components: int = 25
    ridge_alphas: tuple[float, ...] = tuple(float(10.0 ** k) for k in range(-3, 7))
    n_splits: int = 10
    train_size: float = 0.9
    stratify: str | None = "texture_type"
    ceiling_splits: int = 10
    window_ms: tuple[float, float] = RESPONSE_WINDOW_MS
    seed: int = 1

    def validate(self) -> None:
        _check_fields(self)


def _check_fields(c: PredictivityConfig) -> None:
    check_str("regression", c.regression)
    if c.regression not in REGRESSIONS:
        raise ValueError(f"unknown regression {c.regression!r}; choose one of {REGRESSIONS}")
    for field in ("n_components", "n_splits", "ceiling_splits"):
        v = getattr(c, field)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{field} must be a positive integer, got {v!r}")
    check_int("n_splits", c.n_splits, high=MAX_SPLITS)
    check_int("ceiling_splits", c.ceiling_splits, high=MAX_SPLITS)
    train_size = check_float("train_size", c.train_size)
    if not 0 < train_size < 1:
        raise ValueError(f"train_size must lie in (0, 1), got {c.train_size}")
    alphas = c.ridge_alphas
    if isinstance(alphas, (str, bytes)) or not isinstance(alphas, (tuple, list)):
        raise TypeError(f"ridge_alphas must be a tuple of positive numbers, got {alphas!r:.60}")
    if not alphas:
        raise ValueError(f"ridge_alphas must be positive, got {alphas}")
    for a in alphas:
        check_float("ridge_alphas", a, low=0.0, low_open=True)
    check_str("stratify", c.stratify, none=True)
    if c.window_ms is not None:
        w = c.window_ms
        if isinstance(w, (str, bytes)) or not isinstance(w, (tuple, list)) or len(w) != 2:
            raise TypeError(f"window_ms must be (start, end) in ms or None, got {w!r:.60}")
        start, end = check_float("window_ms[0]", w[0]), check_float("window_ms[1]", w[1])
        if not start < end:
            raise ValueError(f"window_ms must be (start, end) with start < end, got {c.window_ms}")
    check_seed("seed", c.seed, high=2 ** 32 - 1)  # scikit-learn's random_state


def validate_predictivity_config(config: PredictivityConfig, n_stimuli: int | None = None) -> PredictivityConfig:
    """Check a :class:`PredictivityConfig`; return it unchanged.

    Parameters
    ----------
    config
        The config.
    n_stimuli
        If given, also check that every split leaves at least 3 test and 2 training stimuli, and (PLS) at most
        as many components as training stimuli.

    Returns
    -------
    PredictivityConfig

    Raises
    ------
    TypeError
        For a field of the wrong type (a string for a number), a non-integer ``n_stimuli``.
    ValueError
        Naming the problem (unknown regression, bad sizes, more than 10000 splits).

    Examples
    --------
    >>> import analyses
    >>> analyses.validate_predictivity_config(analyses.PredictivityConfig(regression="svm"))
    Traceback (most recent call last):
    ...
    ValueError: unknown regression 'svm'; choose one of ('pls', 'ridge')
    """
    if not isinstance(config, PredictivityConfig):
        raise TypeError(f"expected a PredictivityConfig, got {type(config).__name__}")
    c = config
    c.validate()  # the constructor's checks again, for a config changed after construction
    n_stimuli = check_int("n_stimuli", n_stimuli, low=1, none=True)
    if n_stimuli is not None:
        n_train = int(math.floor(c.train_size * n_stimuli))
        n_test = n_stimuli - n_train
        if n_test < 3 or n_train < 2:
            raise ValueError(f"{n_stimuli} stimuli give {n_train} train / {n_test} test stimuli per split; Pearson r "
                             "on held-out stimuli needs at least 3 test stimuli (lower train_size or add stimuli)")
        if c.regression == "pls" and c.n_components > n_train:
            raise ValueError(f"n_components={c.n_components} exceeds the {n_train} training stimuli per split; "
                             "lower n_components")
    return config



def _splits(n: int, c: PredictivityConfig, labels: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    test_size = 1.0 - c.train_size
    if labels is not None:
        splitter = StratifiedShuffleSplit(n_splits=c.n_splits, train_size=c.train_size, test_size=test_size,
                                          random_state=c.seed)
        return list(splitter.split(np.zeros(n), labels))
    splitter = ShuffleSplit(n_splits=c.n_splits, train_size=c.train_size, test_size=test_size,
                            random_state=c.seed)
    return list(splitter.split(np.zeros(n)))


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: PredictivityConfig
                 ) -> np.ndarray:
    if c.regression == "pls":
        from sklearn.cross_decomposition import PLSRegression

        model = PLSRegression(n_components=c.n_components, scale=False)
    else:
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=np.asarray(c.ridge_alphas), alpha_per_target=True)
    with warnings.catch_warnings():
        # PLS warns when a Y column is constant on the training set; its prediction is then constant (r = NaN).
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(x_train, y_train)
        pred = model.predict(x_test)
    return np.asarray(pred).reshape(len(x_test), -1)


def _row_space(x: np.ndarray) -> np.ndarray:
    """``x`` expressed in an orthonormal basis of its row space: ``(n, rank)`` instead of ``(n, n_features)``.

    Exact for the regressions used here: PLS without feature scaling and ridge depend on the features only through
    inner products of stimulus rows (and of training means, which lie in the row space), so predictions for any
    train/test split are unchanged, while layers with many more features than stimuli cost ``rank`` columns.
    """
    n, n_features = x.shape
    if n_features <= n:
        return x
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    rank = int(np.sum(s > s[0] * max(x.shape) * np.finfo(np.float64).eps)) if s.size and s[0] > 0 else 1
    return u[:, :rank] * s[:rank]


def neural_predictivity(model_assembly: xr.DataArray, neural_assembly: xr.DataArray,
                        config: PredictivityConfig | None = None) -> xr.Dataset:
    """How well model features predict each neuroid, in Brain-Score's convention for FreemanZiemba2013.

    Neural responses are averaged over the response window (time bins) and over repetitions, and the stimuli
    sorted as Brain-Score sorts them (:func:`brainscore_order`); the model assembly is aligned to them by
    ``stimulus_id`` (its repetitions/time bins averaged too). For each of ``n_splits`` shuffle splits of the
    stimuli (90 % train, stratified by ``texture_type``; sklearn's ``StratifiedShuffleSplit`` with
    ``random_state=seed``, as Brain-Score), a PLS (25 components) or ridge regression is fit from all model
    features to the neuroids of one region at a time; Pearson r between predicted and measured held-out
    responses is computed per neuroid. ``raw`` = median over neuroids, mean over splits; ``raw_sem`` its
    standard error over splits (ddof 0, as Brain-Score). ``ceiling`` = :func:`split_half_ceiling`.
    ``score`` = raw^2 / ceiling, what Brain-Score reports since 13 January 2026 (the ceiling is a split-half
    reliability, which bounds explained variance); ``score_legacy`` = (raw / ceiling)^2, its formula up to
    version 2.3.12.

    Parameters
    ----------
    model_assembly
        Features ``(presentation, neuroid[, time_bin])`` for (at least) every neural stimulus.
    neural_assembly
        Recording with a ``repetition`` coordinate (needed for the ceiling) and optionally ``region``.
    config
        :class:`PredictivityConfig`.

    Returns
    -------
    xarray.Dataset
        Per region: ``raw``, ``raw_sem`` (over splits), ``ceiling``, ``score``, ``score_legacy``,
        ``raw_split (split, region)``, ``ceiling_split (ceiling_split, region)``; per neuroid: ``r
        (split, neuroid)``, ``r_mean (neuroid)``, ``consistency (ceiling_split, neuroid)``; attrs: config (JSON),
        ``n_stimuli``, ``n_features``, ``stratified_by``.

    Raises
    ------
    TypeError
        Before any fitting: assemblies that are not ``xarray.DataArray`` objects of real numbers, a config that is not
        a :class:`PredictivityConfig`.
    ValueError
        Before any fitting: bad config, neural stimuli missing from the model assembly, no repetitions, no
        ``config.stratify`` coordinate on the neural presentations (set ``stratify=None`` for plain splits),
        ``n_components`` above the training stimuli or model features; model features that are all constant
        across the stimuli (or across the training stimuli of a split); neural responses that are all constant
        across the stimuli (after averaging over the response window and the repetitions).

    Warns
    -----
    RuntimeWarning
        When some (not all) neuroids respond identically to every stimulus: their ``r``, ``r_mean`` and
        ``consistency`` are NaN and they are left out of the medians (a region whose neuroids are all constant
        gets NaN scores). ``r`` of a split is also NaN, without a warning, where a neuroid's held-out responses
        or predictions happen to be constant.

    Examples
    --------
    >>> import numpy as np, data, analyses
    >>> rng = np.random.default_rng(0)
    >>> feats = rng.normal(size=(60, 5))
    >>> signal = feats @ rng.normal(size=(5, 4))
    >>> trials = np.concatenate([signal + 0.3 * rng.normal(size=signal.shape) for _ in range(4)])
    >>> ids = [f"s{i}" for i in range(60)]
    >>> neural = data.assembly(trials, stimulus_id=ids * 4, neuroid_id=list("abcd"),
    ...                        repetition=np.repeat(np.arange(4), 60))
    >>> model = data.assembly(feats, stimulus_id=ids, neuroid_id=[f"f{i}" for i in range(5)])
    >>> r = analyses.neural_predictivity(model, neural, analyses.PredictivityConfig(n_components=5, stratify=None))
    >>> bool(r.score.sel(region="all") > 0.8)
    True
    >>> bool(np.isclose(r.score.sel(region="all"), r.raw.sel(region="all") ** 2 / r.ceiling.sel(region="all")))
    True
    """
    c = validate_predictivity_config(config if config is not None else PredictivityConfig())
    data.validate_assembly(model_assembly)
    data.validate_assembly(neural_assembly)
    if "repetition" not in neural_assembly.coords:
        raise ValueError("the neural assembly has no 'repetition' coordinate: the split-half ceiling needs "
                         "repeated trials of each stimulus")
    y_asm = average_repetitions(average_time(neural_assembly, c.window_ms))
    y_asm = y_asm.isel(presentation=brainscore_order(y_asm["stimulus_id"].values))
    x_asm = model_assembly
    if "time_bin" in x_asm.dims:
        x_asm = average_time(x_asm, None)
    if len(np.unique(np.asarray(x_asm["stimulus_id"].values).astype(str))) != x_asm.sizes["presentation"]:
        x_asm = average_repetitions(x_asm)
    y_ids = np.asarray(y_asm["stimulus_id"].values).astype(str)
    x_ids = np.asarray(x_asm["stimulus_id"].values).astype(str)
    pos = {s: i for i, s in enumerate(x_ids)}
    missing = [s for s in y_ids if s not in pos]
    if missing:
        raise ValueError(f"{len(missing)} neural stimuli are missing from the model assembly, e.g. {missing[:3]}")
    x = np.asarray(x_asm.values, dtype=np.float64)[[pos[s] for s in y_ids]]
    y = np.asarray(y_asm.values, dtype=np.float64)
    n, n_features = x.shape
    x = _row_space(x)
    labels = None
    if c.stratify is not None:
        if c.stratify not in y_asm.coords or y_asm[c.stratify].dims != ("presentation",):
            raise ValueError(f"the neural assembly has no presentation coordinate {c.stratify!r} to stratify the "
                             "splits by (for Brain-Score files it may live in the stimulus CSV: "
                             "data.from_brainscore merges it); set PredictivityConfig(stratify=None) for plain "
                             "shuffle splits")
        labels = np.asarray(y_asm[c.stratify].values).astype(str)
    validate_predictivity_config(c, n_stimuli=n)
    n_train = int(math.floor(c.train_size * n))
    n_test = n - n_train
    if c.regression == "pls" and c.n_components > min(n_train, n_features):
        raise ValueError(f"n_components={c.n_components} exceeds min(training stimuli={n_train}, model features="
                         f"{n_features}); lower n_components")
    if _constant_columns(x).all():
        raise ValueError("model_assembly: every model feature is constant across the neural stimuli; constant "
                         "features predict nothing (a dead layer, or the wrong stimuli?)")
    constant = _constant_columns(y)
    if constant.all():
        raise ValueError("neural_assembly: every neuroid's response (averaged over the response window and the "
                         "repetitions) is the same for every stimulus; there is nothing to predict")
    splits = _splits(n, c, labels)
    for k, (train, _) in enumerate(splits):
        if _constant_columns(x[train]).all():
            raise ValueError(f"model_assembly: every model feature is constant across the training stimuli of "
                             f"split {k}; constant features predict nothing")
    _report_constant(constant, np.asarray(y_asm["neuroid_id"].values), "stimulus")
    ceiling = _split_half_ceiling(neural_assembly, c.ceiling_splits, c.seed, c.window_ms, warn_constant=False)

    unit_region, regions = _regions(y_asm)
    r = np.full((len(splits), y.shape[1]), np.nan)
    for k, (train, test) in enumerate(splits):
        for reg in regions:
            cols = np.flatnonzero(unit_region == reg)
            pred = _fit_predict(x[train], y[train][:, cols], x[test], c)
            r[k, cols] = _pearson_columns(pred, y[test][:, cols])
    raw_split = np.stack([_nanmedian(r[:, unit_region == reg], axis=1) for reg in regions], axis=1)
    raw = raw_split.mean(axis=0)
    # Brain-Score's error: the standard deviation over splits with ddof = 0 (xarray's default), over sqrt(splits)
    raw_sem = raw_split.std(axis=0, ddof=0) / np.sqrt(len(splits))
    ceil = ceiling["ceiling"].sel(region=regions).values
    with np.errstate(invalid="ignore", divide="ignore"):
        score = raw ** 2 / ceil
        score_legacy = (raw / ceil) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r_mean = np.nanmean(r, axis=0)
    return xr.Dataset(
        {"raw": (("region",), raw), "raw_sem": (("region",), raw_sem), "ceiling": (("region",), ceil),
         "score": (("region",), score), "score_legacy": (("region",), score_legacy),
         "raw_split": (("split", "region"), raw_split),
         "ceiling_split": (("ceiling_split", "region"), ceiling["ceiling_split"].sel(region=regions).values),
         "r": (("split", "neuroid"), r), "r_mean": (("neuroid",), r_mean),
         "consistency": (("ceiling_split", "neuroid"), ceiling["consistency"].values)},
        coords={**_neuroid_coords(y_asm), "region": ("region", regions)},
        attrs={"analysis": "neural_predictivity",
               "predictivity_config": json.dumps(dataclasses.asdict(c), sort_keys=True),
               "n_stimuli": int(n), "n_features": int(n_features), "n_train": int(n_train), "n_test": int(n_test),
               "stratified_by": c.stratify if labels is not None else "none",
               "convention": SCORE_CONVENTION},
    )
