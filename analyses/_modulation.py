"""Texture modulation index (Freeman et al. 2013): (R_texture - R_noise) / (R_texture + R_noise) per unit."""

from __future__ import annotations

import numpy as np
import xarray as xr

import data

from ._assemblies import RESPONSE_WINDOW_MS, average_time

__all__ = ["texture_modulation", "modulation_index"]

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
    ValueError
        For negative responses (the index is defined for rates, not for signed features).

    Examples
    --------
    >>> import analyses
    >>> float(analyses.modulation_index(30.0, 10.0))
    0.5
    """
    t = np.asarray(r_texture, dtype=np.float64)
    n = np.asarray(r_noise, dtype=np.float64)
    if (t < 0).any() or (n < 0).any():
        raise ValueError("the modulation index needs non-negative responses (firing rates or rectified features); "
                         f"found minimum {min(t.min(), n.min()):.4g}")
    total = t + n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (t - n) / np.where(total > 0, total, 1.0), np.nan)


def texture_modulation(assembly: xr.DataArray, *, window_ms: tuple[float, float] | None = RESPONSE_WINDOW_MS
                       ) -> xr.Dataset:
    """Per-unit texture modulation index, per texture family and averaged, with per-region summaries.

    Reads Brain-Score's FreemanZiemba2013 coordinate names, so model, simulated and recorded data go through
    the same code: ``texture_family`` and ``texture_type`` (``"texture"`` / ``"noise"``) on presentation. For
    each unit and family, ``R_texture`` and ``R_noise`` are mean responses over all presentations of that
    family and type (all samples and repetitions); time bins are first averaged over ``window_ms`` (50-200 ms
    as Brain-Score does). The per-family index is ``(R_tex - R_noise) / (R_tex + R_noise)``; a unit's index
    (``modulation``) is the mean of its per-family indices over the families where it is defined (Freeman et
    al. 2013); ``modulation_pooled`` is the index of the responses averaged over all families. A unit with
    ``R_tex + R_noise = 0`` has an undefined (NaN) index for that family; region means skip NaN and
    ``n_defined`` counts the units that entered.

    Parameters
    ----------
    assembly
        Assembly with non-negative responses, ``(presentation, neuroid[, time_bin])``. A ``region`` coordinate
        on neuroid (``"V1"``, ``"V2"``, a model layer ...) groups the summaries; without one, all units form
        region ``"all"``.
    window_ms
        Response window for assemblies with time bins.

    Returns
    -------
    xarray.Dataset
        ``modulation (neuroid)``, ``modulation_pooled (neuroid)``, ``modulation_family (neuroid, family)``,
        ``response_texture``/``response_noise (neuroid, family)`` with the assembly's neuroid coordinates (its
        ``region`` renamed ``unit_region``);
        ``region_mean``, ``region_sem``, ``region_median``, ``n_defined`` ``(region)`` and
        ``region_family_mean (region, family)``; coordinate ``family`` holds the family names.

    Raises
    ------
    ValueError
        If ``texture_family``/``texture_type`` are missing, a family lacks textures or noise, or responses are
        negative.

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
    """
    data.validate_assembly(assembly)
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
    _, first = np.unique(unit_region, return_index=True)
    regions = unit_region[np.sort(first)]
    mean, sem, median, n_def, fam_mean = [], [], [], [], []
    for reg in regions:
        idx = unit_index[unit_region == reg]
        ok = idx[np.isfinite(idx)]
        n_def.append(len(ok))
        mean.append(ok.mean() if len(ok) else np.nan)
        median.append(np.median(ok) if len(ok) else np.nan)
        sem.append(ok.std(ddof=1) / np.sqrt(len(ok)) if len(ok) > 1 else np.nan)
        pf = per_family[unit_region == reg]
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
            "region_mean": (("region",), np.array(mean)),
            "region_sem": (("region",), np.array(sem)),
            "region_median": (("region",), np.array(median)),
            "n_defined": (("region",), np.array(n_def)),
            "region_family_mean": (("region", "family"), np.array(fam_mean).reshape(len(regions), n_f)),
        },
        coords={**neuroid_coords, "family": ("family", families), "region": ("region", regions)},
        attrs={"analysis": "texture_modulation",
               "definition": "(R_texture - R_noise) / (R_texture + R_noise); unit index = mean over families",
               **({"window_start_ms": float(window_ms[0]), "window_end_ms": float(window_ms[1])}
                  if "time_bin" in assembly.dims and window_ms is not None else {})},
    )
    return ds
