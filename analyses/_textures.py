"""Texture and spectrally matched noise stimuli (Freeman et al. 2013) with Portilla-Simoncelli synthesis: the
stimulus set, its seeds, its cache and its assembly (config in ``_texture_config``, image operations in
``_texture_images``)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from typing import Any

import numpy as np
import xarray as xr

import data
from data._checks import check_bool, check_int, check_path

from ._texture_config import MAX_THREADS, TextureStimuliConfig, default_cache_dir, _source_image, \
    validate_texture_config
from ._texture_images import _fit_range, _place, _ps_model, _synthesize, phase_randomize, \
    portilla_simoncelli_loss, raised_cosine_aperture

__all__ = ["texture_stimuli"]

# Bumped whenever the synthesis procedure changes, so that old cache files are not reused.
_SYNTHESIS_VERSION = 3


def _config_key(c: TextureStimuliConfig) -> str:
    from importlib.metadata import version

    payload = {"config": dataclasses.asdict(c), "synthesis_version": _SYNTHESIS_VERSION,
               "plenoptic": version("plenoptic")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def texture_stimuli(config: TextureStimuliConfig | None = None, *, cache_dir: str | os.PathLike | None = None,
                    cache: bool = True, progress: bool = False, num_threads: int | None = 1,
                    workers: int = 1) -> xr.Dataset:
    """Naturalistic textures (Portilla-Simoncelli synthesis) and spectrally matched noise, as one stimulus set.

    For each family source image and each sample, a texture is synthesized with plenoptic's
    Portilla-Simoncelli model (L-BFGS from seeded noise, matching the source's statistics) and a noise image
    is made from it by :func:`phase_randomize` (same Fourier amplitude spectrum, random phases), as in
    Freeman et al. (2013). If a pair leaves [0, 1], both images are scaled in contrast around their common mean
    by the same factor (kept in ``contrast_factor``), which keeps their amplitude spectra equal. An optional
    raised-cosine aperture is applied last to both.

    The result is cached as netCDF in ``cache_dir`` keyed by a hash of the config (and plenoptic version), and
    written atomically, so a re-run loads it instead of synthesizing.

    Parameters
    ----------
    config
        :class:`TextureStimuliConfig`; default: the small embedded default (6 families x 3 samples, 64 px).
    cache_dir
        Cache folder (default :func:`default_cache_dir` / ``textures``).
    cache
        Read and write the cache.
    progress
        Print one line per synthesized sample.
    num_threads
        torch threads during synthesis, restored afterwards (``None``: leave torch's setting). One thread is
        fastest for small images, and on a shared machine extra threads can slow synthesis down ten-fold.
    workers
        Processes synthesizing families side by side (each with ``num_threads`` torch threads). The result does
        not depend on it: every family has its own seeds and the set is assembled in family order. On 2 cores,
        ``workers=2`` halves the synthesis time of the 12-family protocol (measured in
        ``benchmarks/analyses_bench.py``).

    Returns
    -------
    xarray.Dataset
        Stimulus set with ``image (stimulus_id, y, x)`` float32 in [0, 1] (texture samples first, then noise,
        per family); coords ``texture_family``, ``texture_type`` (``"texture"``/``"noise"``), ``sample``,
        ``family_kind`` (``texture``/``photo``/``file``), ``ps_loss`` (Portilla-Simoncelli statistics mismatch
        to the family source scaled by the pair's ``contrast_factor``, before the aperture) and
        ``contrast_factor``; variable ``source_image (family, source_y, source_x)``
        with ``source_name (family)``; attrs ``degrees``, ``synthesis_seconds``, ``cache_key``, ``config``.

    Raises
    ------
    TypeError
        For a ``config`` that is not a :class:`TextureStimuliConfig` or ``None``, a ``cache_dir`` that is not a
        path or ``None``, a ``cache`` or ``progress`` that is not ``True``/``False``, a ``num_threads`` or
        ``workers`` that is not an integer.
    ValueError
        From :func:`validate_texture_config`, before any work; for a ``num_threads`` or ``workers`` below 1 or
        above 4096.

    Examples
    --------
    >>> import analyses, tempfile
    >>> c = analyses.TextureStimuliConfig(families=("brick",), n_samples=1, size=32, n_scales=2, max_iter=2)
    >>> s = analyses.texture_stimuli(c, cache_dir=tempfile.mkdtemp())
    >>> s.texture_type.values.tolist()
    ['texture', 'noise']
    >>> s.image.shape          # the 32 px stimulus sits in a canvas twice its size (``canvas=2.0``)
    (2, 64, 64)
    >>> int(s.attrs["stimulus_pixels"])
    32
    """
    c = validate_texture_config(config if config is not None else TextureStimuliConfig())
    cache_dir = check_path("cache_dir", cache_dir, none=True)
    cache = check_bool("cache", cache)
    progress = check_bool("progress", progress)
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    num_threads = check_int("num_threads", num_threads, low=1, high=MAX_THREADS, none=True)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    workers = check_int("workers", workers, low=1, high=MAX_THREADS)
    key = _config_key(c)
    path = (cache_dir if cache_dir is not None else default_cache_dir() / "textures") / f"textures-{key}.nc"
    if cache and path.is_file():
        ds = data.load(path)
        if ds.attrs.get("cache_key") == key:
            return data.validate_stimuli(ds)
    import torch

    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        stim = _make_stimuli(c, key, progress, workers=workers, num_threads=num_threads)
    finally:
        torch.set_num_threads(threads)
    if cache:
        data.save(stim, path, config=c, seed=c.seed)
    stim.attrs.update({"config": json.dumps(dataclasses.asdict(c), sort_keys=True)})
    return stim


def _family_seeds(c: TextureStimuliConfig, f: int) -> list[list[np.random.SeedSequence]]:
    """Per sample of family ``f``: the seed of its synthesis and the seed of its noise."""
    return [np.random.SeedSequence([c.seed, f, s]).spawn(2) for s in range(c.n_samples)]


@functools.lru_cache(maxsize=2)
def _cached_ps_model(c: TextureStimuliConfig) -> Any:
    return _ps_model(c)


def _synthesize_family(c: TextureStimuliConfig, f: int, src: np.ndarray, num_threads: int | None) -> np.ndarray:
    """The texture samples of family ``f`` from its source ``src`` (runs in a worker process too; same numbers)."""
    import torch

    if num_threads is not None:
        torch.set_num_threads(num_threads)
    return _synthesize(src, c, _cached_ps_model(c), [synth for synth, _ in _family_seeds(c, f)])


def _make_stimuli(c: TextureStimuliConfig, key: str, progress: bool, *, workers: int = 1,
                  num_threads: int | None = 1) -> xr.Dataset:
    """Synthesize every texture sample and its noise; assemble the stimulus set."""
    t0 = time.perf_counter()
    window = raised_cosine_aperture(c.size, c.aperture_ramp) if c.aperture else None
    tex_imgs, noise_imgs, targets, meta = [], [], [], []
    sources, source_names = [], []
    n_fam = len(c.families)
    workers = min(workers, n_fam)
    pool = None
    families = [_source_image(fam, c) for fam in c.families]  # (name, kind, source image), read once
    if workers > 1:
        import concurrent.futures
        import multiprocessing

        # spawn, not fork: forking a process whose torch thread pool is running can deadlock
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        futures = [pool.submit(_synthesize_family, c, f, src, num_threads) for f, (_, _, src) in enumerate(families)]
    try:
        for f, (name, kind, src) in enumerate(families):
            sources.append(src)
            source_names.append(name)
            seqs = _family_seeds(c, f)
            texs = futures[f].result() if pool is not None else _synthesize_family(c, f, src, None)
            _add_family(texs, seqs, src, name, kind, tex_imgs, noise_imgs, targets, meta)
            if progress:
                print(f"texture_stimuli: family {f + 1}/{n_fam} {name}: {c.n_samples} samples "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return _assemble(c, key, t0, window, tex_imgs, noise_imgs, targets, meta, sources, source_names)


def _add_family(texs: np.ndarray, seqs: list, src: np.ndarray, name: str, kind: str,
                tex_imgs: list, noise_imgs: list, targets: list, meta: list) -> None:
    """Noise partners, contrast fitting and bookkeeping of one family's synthesized samples."""
    for s, (tex, (_, noise_seq)) in enumerate(zip(texs, seqs)):
        noise = phase_randomize(tex, np.random.default_rng(noise_seq))
        mean = float(tex.mean())
        tex, noise, factor = _fit_range(tex, noise)
        tex_imgs.append(tex)
        noise_imgs.append(noise)
        # the reference for the PS statistics: the source with the same contrast scaling as the pair
        targets.append(mean + factor * (src - mean))
        meta.append((name, kind, s, factor))


def _assemble(c: TextureStimuliConfig, key: str, t0: float, window: np.ndarray | None, tex_imgs: list,
              noise_imgs: list, targets: list, meta: list, sources: list, source_names: list) -> xr.Dataset:
    """The stimulus set: images in the canvas, PS losses, coordinates."""
    targets = np.stack(targets)
    losses_tex = portilla_simoncelli_loss(np.stack(tex_imgs), targets, n_scales=c.n_scales,
                                          n_orientations=c.n_orientations,
                                          spatial_corr_width=c.spatial_corr_width)
    losses_noise = portilla_simoncelli_loss(np.stack(noise_imgs), targets, n_scales=c.n_scales,
                                            n_orientations=c.n_orientations,
                                            spatial_corr_width=c.spatial_corr_width)
    images, ids, fams, types, samples, kinds, losses, factors = [], [], [], [], [], [], [], []
    for f_name in source_names:
        for kind_label, imgs, ls in (("texture", tex_imgs, losses_tex), ("noise", noise_imgs, losses_noise)):
            for i, (name, kind, s, factor) in enumerate(meta):
                if name != f_name:
                    continue
                images.append(_place(imgs[i], window, c))
                ids.append(f"{name}-{kind_label}-{s:02d}")
                fams.append(name)
                types.append(kind_label)
                samples.append(s)
                kinds.append(kind)
                losses.append(ls[i])
                factors.append(factor)
    seconds = time.perf_counter() - t0
    stim = data.stimulus_set(
        np.clip(np.stack(images), 0.0, 1.0).astype(np.float32), stimulus_id=ids, degrees=c.image_degrees,
        texture_family=fams, texture_type=types, sample=np.array(samples), family_kind=kinds,
        ps_loss=np.array(losses), contrast_factor=np.array(factors),
        attrs={"synthesis_seconds": float(seconds), "cache_key": key,
               "description": "Portilla-Simoncelli textures and spectrally matched noise (Freeman et al. 2013)"})
    stim["source_image"] = (("family", "source_y", "source_x"), np.stack(sources).astype(np.float32))
    stim.attrs.update({"stimulus_degrees": float(c.degrees), "stimulus_pixels": int(c.size)})
    stim["source_name"] = (("family",), np.array(source_names))
    return stim
