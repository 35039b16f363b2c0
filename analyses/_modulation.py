"""Texture modulation index (Freeman et al. 2013): (R_texture - R_noise) / (R_texture + R_noise) per unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

import data
from data._checks import check_array, check_bool, check_choice, check_float, check_int, check_seed

from ._assemblies import RESPONSE_WINDOW_MS, average_time

__all__ = ["texture_modulation", "modulation_index", "responsive_units", "bootstrap_mean_ci", "record_units",
           "READOUTS"]

READOUTS = ("center", "mean")
#: Range of bootstrap draws accepted by :func:`bootstrap_mean_ci` and :func:`texture_modulation`.
N_BOOT_RANGE = (10, 1_000_000)


def record_units(model: Any, stimuli: xr.Dataset, layers: Sequence[str] = ("stage1", "stage2"), *,
                 readout: str = "center", receptive_fields: Mapping[str, tuple[int, int]] | None = None,
                 regions: Mapping[str, str] | None = None, batch_size: int = 16, device: Any = None,
                 progress: bool = False) -> dict[str, xr.DataArray]:
    """Model units for the texture protocol: one unit per channel of each layer.

    ``readout="center"`` (the default, as Brain-Score's Marques2020 benchmarks do) takes, in every channel, the
    unit whose receptive field is centred on the stimulus (:func:`data.center_index`); ``"mean"`` averages each
    channel over space. For an :class:`lcl.V1V2` the receptive fields of ``stage1`` / ``stage2`` come from the
    architecture; other models pass ``receptive_fields`` (``layer -> (size, stride)`` in input pixels).

    Parameters
    ----------
    model
        A ``torch.nn.Module``.
    stimuli
        The stimulus set (square images, the stimulus at the centre).
    layers
        Modules to record.
    readout
        ``"center"`` or ``"mean"``.
    receptive_fields
        Receptive fields of the layers (``"center"`` only); default: from an :class:`lcl.V1V2`.
    regions
        ``layer -> region`` labels (default: the layer names).
    batch_size, device, progress
        As :func:`data.record` (``device``: the torch device to run on, default the model's).

    Returns
    -------
    dict of str to xarray.DataArray
        One assembly ``(presentation, neuroid)`` per layer, a neuroid per channel.

    Raises
    ------
    TypeError
        For a ``readout`` that is not a string, a ``progress`` that is not ``True``/``False``, and as
        :func:`data.record`.
    ValueError
        For an unknown ``readout``, and as :func:`data.record` (unknown layers, a bad batch size ...).

    Examples
    --------
    >>> import numpy as np, torch, data, lcl, analyses
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> m = lcl.V1V2(lcl.ModelConfig(stage1=lcl.StageConfig(channels=4), stage2=lcl.StageConfig(channels=6)))
    >>> s = data.stimulus_set(np.random.default_rng(0).random((2, 64, 64)))
    >>> units = analyses.record_units(m, s)
    >>> units["stage2"].sizes["neuroid"], float(units["stage2"].center_offset_px[0]) <= m.rf(2).stride / 2
    (6, True)
    """
    import lcl

    check_choice("readout", readout, READOUTS)
    progress = check_bool("progress", progress)
    layers = list(layers)
    if readout == "center" and receptive_fields is None and isinstance(model, lcl.V1V2):
        receptive_fields = {name: tuple(model.rf(int(name[-1]))) for name in layers if name in ("stage1", "stage2")}
    return data.record(model, stimuli, layers, pool=readout, batch_size=batch_size,
                       receptive_fields=receptive_fields if readout == "center" else None,
                       regions=regions or {name: name for name in layers}, device=device, progress=progress)

TEXTURE, NOISE = "texture", "noise"


def modulation_index(r_texture: np.ndarray | float, r_noise: np.ndarray | float) -> np.ndarray:
    """``(r_texture - r_noise) / (r_texture + r_noise)``, NaN where both are 0.

    Parameters
    ----------
    r_texture, r_noise
        Non-negative mean responses.

    Returns
    -------
    numpy.ndarray
        Index in [-1, 1].

    Raises
    ------
    TypeError
        For responses that are not real numbers (strings, complex values, ``None``).
    ValueError
        For negative, NaN or infinite responses (the index is defined for rates, not for signed features), or
        shapes that do not broadcast together.

    Examples
    --------
    >>> import analyses
    >>> float(analyses.modulation_index(30.0, 10.0))
    0.5
    """
    t = check_array("r_texture", r_texture, min_size=0, allow_bool=True)
    n = check_array("r_noise", r_noise, min_size=0, allow_bool=True)
    try:
        np.broadcast_shapes(t.shape, n.shape)
    except ValueError:
        raise ValueError(f"r_texture and r_noise must have shapes that broadcast together, got {t.shape} and "
                         f"{n.shape}") from None
    if (t < 0).any() or (n < 0).any():
        raise ValueError("the modulation index needs non-negative responses (firing rates or rectified features); "
                         f"found minimum {min(t.min(), n.min()):.4g}")
    total = t + n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (t - n) / np.where(total > 0, total, 1.0), np.nan)


def responsive_units(responses: np.ndarray, groups: np.ndarray | None = None, *, min_peak: float = 0.01,
                     min_range: float = 0.01) -> np.ndarray:
    """Which units respond to the stimulus set: the documented criterion of :func:`texture_modulation`.

    ``responses`` are per-stimulus mean responses ``(stimulus, unit)``. A unit is responsive when

    1. its peak (largest response over stimuli) is at least ``min_peak`` times the largest peak among the units
       of its group (region or layer): it is not silent, and
    2. its responses vary over stimuli: ``max - min >= min_range * peak`` (a unit with a constant output, such
       as a rectified channel that never crosses threshold and sits at its floor, carries no selectivity).

    Parameters
    ----------
    responses
        ``(stimulus, unit)`` non-negative mean responses.
    groups
        ``(unit,)`` group labels (regions); the peak criterion is relative within each group. ``None``: one group.
    min_peak, min_range
        Fractions in [0, 1).

    Returns
    -------
    numpy.ndarray
        ``(unit,)`` booleans.

    Raises
    ------
    TypeError
        For ``responses`` that are not real numbers (strings, complex values, ``None``).
    ValueError
        For ``responses`` that are not 2-D with at least one stimulus or hold NaN/inf, a ``min_peak`` or
        ``min_range`` outside [0, 1), ``groups`` without one label per unit.

    Examples
    --------
    >>> import numpy as np, analyses
    >>> r = np.array([[10.0, 0.001, 5.0], [20.0, 0.001, 5.0]])   # unit 1 silent, unit 2 constant
    >>> analyses.responsive_units(r).tolist()
    [True, False, False]
    """
    r = check_array("responses", responses, min_size=0)
    if r.ndim != 2 or r.shape[0] < 1:
        raise ValueError(f"responses must be (stimulus, unit) with at least one stimulus, got shape {r.shape}")
    for name, v in (("min_peak", min_peak), ("min_range", min_range)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ValueError(f"{name} must be a number in [0, 1), got {v!r}")
    groups = np.zeros(r.shape[1], dtype=int) if groups is None else np.asarray(groups)
    if groups.shape != (r.shape[1],):
        raise ValueError(f"groups must have one label per unit ({r.shape[1]}), got shape {groups.shape}")
    peak, low = r.max(axis=0), r.min(axis=0)
    keep = np.zeros(r.shape[1], dtype=bool)
    for g in np.unique(groups):
        sel = groups == g
        top = peak[sel].max()
        keep[sel] = (top > 0) & (peak[sel] >= min_peak * top) & (peak[sel] - low[sel] >= min_range * peak[sel]) \
            & (peak[sel] > low[sel])
    return keep


def bootstrap_mean_ci(values: np.ndarray | list[np.ndarray], *, n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile bootstrap interval; hierarchical over groups (e.g. seeds) when given a list.

    With one array, units are resampled with replacement. With a list of arrays (one per seed or animal), each
    bootstrap draw resamples the groups, then the units within each drawn group, and averages the group means,
    so the interval covers the spread between seeds as well as between units.

    Parameters
    ----------
    values
        Finite values, or a list of arrays of finite values (one per group).
    n_boot
        Bootstrap draws.
    level
        Coverage of the interval.
    seed
        Seed of the draws.

    Returns
    -------
    tuple of float
        ``(mean, low, high)``; the mean is the mean of the group means (plain mean for one array).

    Raises
    ------
    TypeError
        For values that are not real numbers (strings, complex values, ``None``), an ``n_boot`` or ``seed`` that
        is not an integer, a ``level`` that is not a real number.
    ValueError
        For empty, non-1-D or non-finite values, an ``n_boot`` outside [10, 1e6], a ``level`` outside (0, 1), a
        negative ``seed``.

    Examples
    --------
    >>> import numpy as np, analyses
    >>> m, lo, hi = analyses.bootstrap_mean_ci(np.random.default_rng(0).normal(1.0, 1.0, 400))
    >>> lo < 1.0 < hi, round(hi - lo, 1)
    (True, 0.2)
    """
    if isinstance(values, np.ndarray):
        groups = [check_array("values", values, finite=False, min_size=0)]
    elif isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise TypeError(f"values must be an array or a list of arrays, got {type(values).__name__}")
    else:
        groups = [check_array(f"values[{i}]", v, finite=False, min_size=0) for i, v in enumerate(values)]
    if not groups or any(g.ndim != 1 or g.size == 0 for g in groups):
        raise ValueError("bootstrap_mean_ci needs non-empty 1-D arrays of values")
    if any(not np.isfinite(g).all() for g in groups):
        raise ValueError("bootstrap_mean_ci needs finite values (drop undefined units first)")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or not 10 <= n_boot <= 1_000_000:
        raise ValueError(f"n_boot must be an integer in [10, 1e6], got {n_boot!r}")
    level = check_float("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    seed = check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    mean = float(np.mean([g.mean() for g in groups]))
    draws = np.empty(n_boot)
    for b in range(n_boot):
        picked = groups if len(groups) == 1 else [groups[i] for i in rng.integers(0, len(groups), len(groups))]
        draws[b] = np.mean([g[rng.integers(0, g.size, g.size)].mean() for g in picked])
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(lo), float(hi)


def texture_modulation(assembly: xr.DataArray, *, window_ms: tuple[float, float] | None = RESPONSE_WINDOW_MS,
                       min_peak: float = 0.01, min_range: float = 0.01, n_boot: int = 2000, seed: int = 0
                       ) -> xr.Dataset:
    """Per-unit texture modulation index, per texture family and averaged, with per-region summaries.

    Reads Brain-Score's FreemanZiemba2013 coordinate names, so model, simulated and recorded data go through
    the same code: ``texture_family`` and ``texture_type`` (``"texture"`` / ``"noise"``) on presentation. For
    each unit and family, ``R_texture`` and ``R_noise`` are mean responses over all presentations of that
    family and type (all samples and repetitions); time bins are first averaged over ``window_ms`` (50-200 ms
    as Brain-Score does). The per-family index is ``(R_tex - R_noise) / (R_tex + R_noise)``; a unit's index
    (``modulation``) is the mean of its per-family indices over the families where it is defined (Freeman et
    al. 2013); ``modulation_pooled`` is the index of the responses averaged over all families. A unit with
    ``R_tex + R_noise = 0`` has an undefined (NaN) index for that family.

    Only responsive units enter the region summaries (:func:`responsive_units` on the per-stimulus mean
    responses: a peak of at least ``min_peak`` of the region's largest, and responses that vary over stimuli by at
    least ``min_range`` of the unit's peak); ``n_units``, ``n_responsive`` and ``frac_responsive`` report how
    many were kept, and every unit keeps its index and its ``responsive`` flag. Per region: mean, median, standard
    error, fraction of units with index > 0 and a percentile bootstrap interval of the mean over units.

    Parameters
    ----------
    assembly
        Assembly with non-negative responses, ``(presentation, neuroid[, time_bin])``. A ``region`` coordinate
        on neuroid (``"V1"``, ``"V2"``, a model layer ...) groups the summaries; without one, all units form
        region ``"all"``.
    window_ms
        Response window for assemblies with time bins.
    min_peak, min_range
        The responsive-unit criterion (see :func:`responsive_units`); 0 and 0 keep every unit whose responses
        are not constant.
    n_boot, seed
        Bootstrap draws (over units) for ``region_ci_low`` / ``region_ci_high`` (95 %) and their seed.

    Returns
    -------
    xarray.Dataset
        ``modulation (neuroid)``, ``modulation_pooled (neuroid)``, ``modulation_family (neuroid, family)``,
        ``response_texture``/``response_noise (neuroid, family)`` with the assembly's neuroid coordinates (its
        ``region`` renamed ``unit_region``);
        ``responsive (neuroid)``; ``region_mean``, ``region_sem``, ``region_median``, ``region_frac_positive``,
        ``region_ci_low``, ``region_ci_high``, ``n_units``, ``n_responsive``, ``frac_responsive``, ``n_defined``
        (responsive units with a defined index) ``(region)`` and ``region_family_mean (region, family)``;
        coordinate ``family`` holds the family names.

    Raises
    ------
    TypeError
        For an ``n_boot`` or ``seed`` that is not an integer, a ``min_peak`` or ``min_range`` that is not a real
        number.
    ValueError
        If ``texture_family``/``texture_type`` are missing, a family lacks textures or noise, or responses are
        negative; for an ``n_boot`` outside [10, 1e6], a negative ``seed``, a ``min_peak`` or ``min_range``
        outside [0, 1).

    Examples
    --------
    >>> import numpy as np, data, analyses
    >>> a = data.assembly(np.array([[30.0, 5.0], [10.0, 5.0]]), stimulus_id=["t", "n"],
    ...                   neuroid_id=["u0", "u1"], texture_family=["brick", "brick"],
    ...                   texture_type=["texture", "noise"], region=["V2", "V1"])
    >>> r = analyses.texture_modulation(a)
    >>> r.modulation.values.tolist()
    [0.5, 0.0]
    >>> float(r.region_mean.sel(region="V2"))
    0.5
    >>> int(r.n_responsive.sel(region="V1"))   # u1 answers 5.0 to everything: not responsive
    0
    """
    data.validate_assembly(assembly)
    n_boot = check_int("n_boot", n_boot, low=N_BOOT_RANGE[0], high=N_BOOT_RANGE[1])
    seed = check_seed("seed", seed)
    for name, v in (("min_peak", min_peak), ("min_range", min_range)):
        check_float(name, v, low=0.0, high=1.0, high_open=True)
    for coord in ("texture_family", "texture_type"):
        if coord not in assembly.coords or assembly[coord].dims != ("presentation",):
            raise ValueError(f"texture_modulation needs a {coord!r} coordinate on presentation "
                             "(Brain-Score FreemanZiemba2013 names)")
    a = average_time(assembly, window_ms)
    kinds = np.asarray(a["texture_type"].values).astype(str)
    unknown = sorted(set(kinds) - {TEXTURE, NOISE})
    if unknown:
        raise ValueError(f"texture_type values must be 'texture' or 'noise'; found {unknown}")
    fams_raw = np.asarray(a["texture_family"].values)
    fam_str = fams_raw.astype(str)
    _, first = np.unique(fam_str, return_index=True)
    families = [str(f) for f in fam_str[np.sort(first)]]
    values = np.asarray(a.values, dtype=np.float64)
    if (values < 0).any():
        raise ValueError("texture_modulation needs non-negative responses (firing rates or rectified features); "
                         f"found minimum {values.min():.4g}")
    n_u, n_f = values.shape[1], len(families)
    r_tex = np.empty((n_u, n_f))
    r_noise = np.empty((n_u, n_f))
    for j, fam in enumerate(families):
        for kind, out in ((TEXTURE, r_tex), (NOISE, r_noise)):
            rows = (fam_str == fam) & (kinds == kind)
            if not rows.any():
                raise ValueError(f"texture family {fam!r} has no {kind!r} presentations")
            out[:, j] = values[rows].mean(axis=0)
    per_family = modulation_index(r_tex, r_noise)
    defined = np.isfinite(per_family)
    with np.errstate(invalid="ignore"):
        unit_index = np.where(defined.any(axis=1),
                              np.nansum(np.where(defined, per_family, 0), axis=1) / np.maximum(defined.sum(1), 1),
                              np.nan)
    pooled = modulation_index(r_tex.mean(axis=1), r_noise.mean(axis=1))

    if "region" in a.coords and a["region"].dims == ("neuroid",):
        unit_region = np.asarray(a["region"].values).astype(str)
    else:
        unit_region = np.array(["all"] * n_u)
    ids = np.asarray(a["stimulus_id"].values).astype(str)
    _, inverse = np.unique(ids, return_inverse=True)
    per_stimulus = np.zeros((inverse.max() + 1, n_u))
    np.add.at(per_stimulus, inverse, values)
    per_stimulus /= np.bincount(inverse)[:, None]
    responsive = responsive_units(per_stimulus, unit_region, min_peak=min_peak, min_range=min_range)
    _, first = np.unique(unit_region, return_index=True)
    regions = unit_region[np.sort(first)]
    stats: dict[str, list[float]] = {k: [] for k in ("mean", "sem", "median", "frac_positive", "ci_low", "ci_high",
                                                     "n_units", "n_responsive", "n_defined")}
    fam_mean = []
    for reg in regions:
        in_reg = unit_region == reg
        idx = unit_index[in_reg & responsive]
        ok = idx[np.isfinite(idx)]
        stats["n_units"].append(int(in_reg.sum()))
        stats["n_responsive"].append(int((in_reg & responsive).sum()))
        stats["n_defined"].append(len(ok))
        stats["mean"].append(ok.mean() if len(ok) else np.nan)
        stats["median"].append(np.median(ok) if len(ok) else np.nan)
        stats["sem"].append(ok.std(ddof=1) / np.sqrt(len(ok)) if len(ok) > 1 else np.nan)
        stats["frac_positive"].append(float((ok > 0).mean()) if len(ok) else np.nan)
        lo, hi = bootstrap_mean_ci(ok, n_boot=n_boot, seed=seed)[1:] if len(ok) > 1 else (np.nan, np.nan)
        stats["ci_low"].append(lo)
        stats["ci_high"].append(hi)
        pf = per_family[in_reg & responsive]
        counts = np.isfinite(pf).sum(axis=0)
        sums = np.where(np.isfinite(pf), pf, 0.0).sum(axis=0)
        fam_mean.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))

    # The assembly's `region` (per unit) becomes `unit_region`: `region` names the summary dim here.
    neuroid_coords = {("unit_region" if name == "region" else name): ("neuroid", np.asarray(c.values))
                      for name, c in a.coords.items() if c.dims == ("neuroid",)}
    ds = xr.Dataset(
        {
            "modulation": (("neuroid",), unit_index),
            "modulation_pooled": (("neuroid",), pooled),
            "modulation_family": (("neuroid", "family"), per_family),
            "response_texture": (("neuroid", "family"), r_tex),
            "response_noise": (("neuroid", "family"), r_noise),
            "responsive": (("neuroid",), responsive),
            **{f"region_{k}": (("region",), np.array(stats[k], dtype=np.float64))
               for k in ("mean", "sem", "median", "frac_positive", "ci_low", "ci_high")},
            **{k: (("region",), np.array(stats[k], dtype=np.int64)) for k in ("n_units", "n_responsive", "n_defined")},
            "frac_responsive": (("region",), np.array(stats["n_responsive"]) / np.array(stats["n_units"])),
            "region_family_mean": (("region", "family"), np.array(fam_mean).reshape(len(regions), n_f)),
        },
        coords={**neuroid_coords, "family": ("family", families), "region": ("region", regions)},
        attrs={"analysis": "texture_modulation",
               "definition": "(R_texture - R_noise) / (R_texture + R_noise); unit index = mean over families",
               "responsive_criterion": f"peak >= {min_peak} x the region's largest peak and (max - min) over "
                                       f"stimuli >= {min_range} x peak (per-stimulus mean responses)",
               "interval": f"95 % percentile bootstrap over responsive units ({n_boot} draws, seed {seed})",
               **({"window_start_ms": float(window_ms[0]), "window_end_ms": float(window_ms[1])}
                  if "time_bin" in assembly.dims and window_ms is not None else {})},
    )
    return ds
