"""The whole study: crops split by photograph, spikes, linear / point-wise / enhanced decoding, metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

import data
from data._checks import check_array, check_bool, check_device, check_float, check_int, check_path, check_seed

from . import metrics
from ._config import StudyConfig, StudyDataConfig, validate_study_config
from ._enhancer import Enhancer, train_enhancer
from ._linear import LinearDecoder, PointwiseNonlinearity
from ._retina import Retina

__all__ = [
    "split_by_source", "study_photographs", "make_datasets", "evaluate", "run_study", "load_results", "summary_table",
    "METHODS",
]

METHODS = ("linear", "pointwise", "enhanced")


def split_by_source(photos: xr.Dataset, test_sources: tuple[str, ...] | list[str] = (), *, n_test: int = 4,
                    seed: int = 0) -> tuple[xr.Dataset, xr.Dataset]:
    """Split a set of photographs into train and test photographs by their ``source`` name.

    Parameters
    ----------
    photos
        Stimulus set with a ``source`` coordinate (e.g. ``data.natural_images()``).
    test_sources
        Names of the test photographs; empty: ``n_test`` names drawn with ``seed``.
    n_test
        Number of test photographs to draw when ``test_sources`` is empty.
    seed
        Seed of the draw.

    Returns
    -------
    train, test : xarray.Dataset
        Disjoint stimulus sets; every photograph is in exactly one.

    Raises
    ------
    TypeError
        For ``test_sources`` that are not photograph names, non-integer ``n_test`` or ``seed``.
    ValueError
        For unknown names, no ``source`` coordinate, or a split that leaves either side empty.

    Examples
    --------
    >>> import data
    >>> from decoding import split_by_source
    >>> photos = data.natural_images(size=32, names=["camera", "moon", "coins"])
    >>> train, test = split_by_source(photos, ["moon"])
    >>> train.source.values.tolist(), test.source.values.tolist()
    (['camera', 'coins'], ['moon'])
    """
    data.validate_stimuli(photos)
    if isinstance(test_sources, (str, bytes)) or not isinstance(test_sources, (tuple, list)) \
            or not all(isinstance(t, str) for t in test_sources):
        raise TypeError(f"test_sources must be a list or tuple of photograph names, got {test_sources!r}")
    n_test = check_int("n_test", n_test)
    seed = check_seed("seed", seed)
    if "source" not in photos.coords:
        raise ValueError("photographs need a 'source' coordinate naming each photograph")
    sources = photos["source"].values.astype(str)
    names = sorted(set(sources.tolist()))
    if test_sources:
        unknown = sorted(set(test_sources) - set(names))
        if unknown:
            raise ValueError(f"unknown test photograph(s) {unknown}; available: {names}")
        test = sorted(set(test_sources))
    else:
        if not 0 < n_test < len(names):
            raise ValueError(f"n_test must be in [1, {len(names) - 1}] for {len(names)} photographs, got {n_test}")
        test = sorted(np.random.default_rng(seed).choice(names, n_test, replace=False).tolist())
    is_test = np.isin(sources, test)
    if is_test.all():
        raise ValueError("every photograph is a test photograph: nothing left to train on")
    return photos.isel(stimulus_id=~is_test), photos.isel(stimulus_id=is_test)


def _d4(images: np.ndarray, codes: np.ndarray) -> np.ndarray:
    out = images.copy()
    for i, t in enumerate(codes):
        img = images[i]
        if t & 1:
            img = img[:, ::-1]
        if t & 2:
            img = img[::-1, :]
        if t & 4:
            img = img.T
        out[i] = img
    return out


def _crops(photos: xr.Dataset, n: int, size: int, seed: int, prefix: str, flips: bool) -> xr.Dataset:
    patches = data.sample_patches(photos, n, size, seed=seed)
    codes = np.random.default_rng(data.derive_seed(seed, "flips")).integers(0, 8, n) if flips \
        else np.zeros(n, dtype=np.int64)
    images = _d4(patches["image"].values, codes)
    patches = patches.assign(image=(patches["image"].dims, images))
    patches = patches.assign_coords(stimulus_id=[f"{prefix}{i:06d}" for i in range(n)],
                                    transform=("stimulus_id", codes))
    return data.validate_stimuli(patches)


def study_photographs(config: StudyDataConfig, *, seed: int = 0) -> tuple[xr.Dataset, xr.Dataset]:
    """A study's photographs, split by source into training and held-out test photographs.

    The bundled photographs (``data.natural_images(config.photo_size)``), or the images of
    ``config.image_folder``, split with :func:`split_by_source` by ``config.test_sources`` (or
    ``config.n_test_sources`` drawn with ``data.derive_seed(seed, "split")``). :func:`make_datasets` crops these.

    Parameters
    ----------
    config
        Data settings.
    seed
        The study's root seed (:attr:`StudyConfig.seed`).

    Returns
    -------
    train, test : xarray.Dataset
        Disjoint sets of whole photographs (``photo_size`` x ``photo_size``).

    Examples
    --------
    >>> from decoding import StudyDataConfig, study_photographs
    >>> train, test = study_photographs(StudyDataConfig(photo_size=64, test_sources=("camera", "moon")))
    >>> test.source.values.tolist()
    ['camera', 'moon']
    """
    if not isinstance(config, StudyDataConfig):
        raise TypeError(f"config must be a StudyDataConfig, got {type(config).__name__}")
    seed = check_seed("seed", seed)
    if config.image_folder:
        photos = data.image_folder(config.image_folder, size=config.photo_size, max_images=config.max_images or None)
    else:
        photos = data.natural_images(size=config.photo_size, min_size=max(256, config.photo_size))
    return split_by_source(photos, config.test_sources, n_test=config.n_test_sources,
                           seed=data.derive_seed(seed, "split"))


def make_datasets(config: StudyDataConfig, image_size: int, *, seed: int = 0) -> dict[str, xr.Dataset]:
    """The study's images: training crops (decoder, enhancer) and test crops, from disjoint photographs.

    The photographs are split by source first (:func:`study_photographs`), then each side is cropped with
    ``data.sample_patches``; training crops get a random flip/transpose each (``transform`` coordinate: bit 0
    left-right, bit 1 up-down, bit 2 transpose).

    Parameters
    ----------
    config
        Data settings.
    image_size
        Side of the crops (the retina's image size).
    seed
        The study's root seed (:attr:`StudyConfig.seed`); the crops of set ``s`` are drawn with
        ``data.derive_seed(seed, "crops", s)``.

    Returns
    -------
    dict
        ``"decoder"``, ``"enhancer"``, ``"test"`` stimulus sets (ids prefixed ``dec``, ``enh``, ``test``).

    Examples
    --------
    >>> from decoding import StudyDataConfig, make_datasets
    >>> sets = make_datasets(StudyDataConfig(photo_size=64, n_decoder=4, n_enhancer=2, n_test=3), 32)
    >>> {k: v.sizes["stimulus_id"] for k, v in sets.items()}
    {'decoder': 4, 'enhancer': 2, 'test': 3}
    >>> set(sets["test"].source.values) & set(sets["decoder"].source.values)
    set()
    """
    if not isinstance(config, StudyDataConfig):
        raise TypeError(f"config must be a StudyDataConfig, got {type(config).__name__}")
    image_size = check_int("image_size", image_size, low=1)
    seed = check_seed("seed", seed)
    if image_size > config.photo_size:
        raise ValueError(f"crop size {image_size} exceeds the photograph size {config.photo_size}")
    train, test = study_photographs(config, seed=seed)
    crop_seed = {name: data.derive_seed(seed, "crops", name) for name in ("decoder", "enhancer", "test")}
    return {
        "decoder": _crops(train, config.n_decoder, image_size, crop_seed["decoder"], "dec", config.flips),
        "enhancer": _crops(train, config.n_enhancer, image_size, crop_seed["enhancer"], "enh", config.flips),
        "test": _crops(test, config.n_test, image_size, crop_seed["test"], "test", False),
    }


def _examples(sources: np.ndarray, n: int) -> np.ndarray:
    """Indices of up to ``n`` test images taken in turn from each source photograph (sorted by name)."""
    queues = [list(np.flatnonzero(sources == name)) for name in sorted(set(sources.tolist()))]
    picked: list[int] = []
    while len(picked) < min(n, len(sources)):
        for q in queues:
            if q and len(picked) < n:
                picked.append(int(q.pop(0)))
    return np.array(picked)


def evaluate(reference: Any, reconstructions: dict[str, Any], *, data_range: float = 1.0,
             stimulus_id: Any = None) -> xr.Dataset:
    """MSE, PSNR and SSIM of each method's reconstructions, per image.

    Parameters
    ----------
    reference
        True images ``(n, y, x)`` (array or stimulus set).
    reconstructions
        ``{method name: array (n, y, x)}``.
    data_range
        Range of the images' domain (1.0 for [0, 1]).
    stimulus_id
        Image ids (default: the stimulus set's, else ``0..n-1``).

    Returns
    -------
    xarray.Dataset
        Variables ``mse``, ``psnr``, ``ssim`` with dims ``(decoder, stimulus_id)``.

    Raises
    ------
    TypeError
        For ``reconstructions`` that is not a mapping of method names to arrays, non-numeric images.
    ValueError
        For no reconstructions, shapes that differ, NaN/inf, a ``data_range`` that is not a positive finite
        number, a ``stimulus_id`` of the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import evaluate
    >>> ref = np.random.default_rng(0).random((2, 16, 16))
    >>> ev = evaluate(ref, {"same": ref, "noisy": ref + 0.1})
    >>> ev.psnr.sel(decoder="noisy").round(6).values.tolist()
    [20.0, 20.0]
    """
    if isinstance(reference, xr.Dataset):
        data.validate_stimuli(reference)
        stimulus_id = reference["stimulus_id"].values if stimulus_id is None else stimulus_id
        reference = reference["image"].values
    ref = check_array("reference", reference, ndim=3)
    if not isinstance(reconstructions, Mapping) or not all(isinstance(k, str) for k in reconstructions):
        raise TypeError(f"reconstructions must be a mapping of method names to arrays, got "
                        f"{type(reconstructions).__name__}")
    if not reconstructions:
        raise ValueError("no reconstructions to evaluate")
    data_range = check_float("data_range", data_range, low=0.0, low_open=True)
    ids = np.arange(len(ref)) if stimulus_id is None else np.asarray(stimulus_id)
    if ids.shape != (len(ref),):
        raise ValueError(f"stimulus_id must hold one id per image ({len(ref)}), got shape {ids.shape}")
    names = list(reconstructions)
    out = {k: np.stack([np.atleast_1d(fn(ref, reconstructions[m], **kw)) for m in names])
           for k, fn, kw in (("mse", metrics.mse, {}), ("psnr", metrics.psnr, {"data_range": data_range}),
                             ("ssim", metrics.ssim, {"data_range": data_range}))}
    return xr.Dataset({k: (("decoder", "stimulus_id"), v) for k, v in out.items()},
                      coords={"decoder": names, "stimulus_id": ids}, attrs={"data_range": float(data_range)})


def run_study(config: StudyConfig | None = None, *, out_dir: str | Path | None = None, resume: bool = False,
              device: str | torch.device = "cpu", progress: bool = True) -> xr.Dataset:
    """Simulate, decode (linear, point-wise, enhanced) and evaluate on held-out photographs.

    Steps: crops split by photograph (:func:`make_datasets`); spike counts from :class:`Retina` (independent
    noise per set); :class:`LinearDecoder` fitted on the decoder crops; linear reconstructions of fresh crops with
    fresh spikes train the :class:`PointwiseNonlinearity` and the :class:`Enhancer`; all three are scored on the
    test crops.

    Parameters
    ----------
    config
        The study (default ``StudyConfig()``; e.g. ``StudyConfig.preset("demo")``). Its ``seed`` is the root of
        every random draw (the tree is in :mod:`decoding._config`).
    out_dir
        If given: the enhancer checkpoint (``enhancer.pt``) and the results (``results.nc``) are written there.
    resume
        Continue the enhancer's training from ``out_dir/enhancer.pt`` (everything before it is deterministic and
        recomputed). Without it, an existing checkpoint there is overwritten.
    device
        Torch device for the retina, the decoder and the enhancer (plain ``"cuda"`` under ``torchrun``: GPU
        ``LOCAL_RANK``).
    progress
        Show progress bars (rank 0 only).

    Distributed (a process group is initialised, e.g. by :func:`data.init_distributed` under ``torchrun``, as
    ``python -m decoding run`` does): every process computes the cheap deterministic steps itself (crops,
    spikes, linear and point-wise decoders; :func:`train_enhancer` checks that all processes got identical
    training pairs), the enhancer trains with ``DistributedDataParallel`` (global batch ``train.batch_size x
    processes``), and every process evaluates the same trained enhancer and returns the same results; only
    rank 0 writes ``enhancer.pt`` and ``results.nc``.

    Returns
    -------
    xarray.Dataset
        ``mse``, ``psnr``, ``ssim`` ``(decoder, stimulus_id)`` with ``source_image`` per test image;
        ``original (example, y, x)`` and ``reconstruction (decoder, example, y, x)`` for ``n_examples`` test
        images; ``train_loss (epoch)``; attributes: provenance, ``config`` (JSON), train/test photographs,
        ``mean_count``, ``world_size`` (processes), ``seconds`` (JSON wall-clock timings per step),
        ``cpu_seconds`` (CPU time of this process per step, summed over threads: comparable across machine loads)
        and ``summary`` (JSON mean metrics per method).

    Raises
    ------
    TypeError
        Before any work, for a ``config`` that is not a :class:`StudyConfig`, a non-path ``out_dir``, a non-bool
        ``resume`` or ``progress``, a ``device`` that is not a device name.
    ValueError
        Before any work, for ``resume`` without ``out_dir`` or an unknown device.

    Examples
    --------
    >>> import decoding
    >>> res = decoding.run_study(decoding.StudyConfig.preset("tiny"), progress=False)  # doctest: +SKIP
    >>> res.psnr.mean("stimulus_id").sel(decoder="enhanced")  # doctest: +SKIP
    """
    config = validate_study_config(StudyConfig() if config is None else config)
    out = check_path("out_dir", out_dir, none=True)
    resume = check_bool("resume", resume)
    check_device("device", device)
    progress = check_bool("progress", progress)
    if resume and out is None:
        raise ValueError("resume needs out_dir (where the checkpoint is)")
    rank, world = data.rank_and_world()
    device = data.process_device(device)
    progress = progress and rank == 0
    timings: dict[str, float] = {}
    cpu_timings: dict[str, float] = {}
    cpu = [time.process_time()]

    def tick(name: str, t0: float) -> float:
        timings[name] = round(time.perf_counter() - t0, 3)
        cpu_timings[name] = round(time.process_time() - cpu[0], 3)
        cpu[0] = time.process_time()
        return time.perf_counter()

    t = time.perf_counter()
    size = config.retina.image_size
    sets = make_datasets(config.data, size, seed=config.seed)
    t = tick("data", t)
    retina = Retina(config.retina).to(device)
    counts = {name: retina.simulate(sets[name], seed=data.derive_seed(config.seed, "retina", name),
                                    batch_size=config.batch_size, progress=progress)
              for name in ("decoder", "enhancer", "test")}
    t = tick("simulate", t)
    dec = LinearDecoder(config.decoder.alpha, chunk_size=config.decoder.chunk_size, dtype=config.decoder.dtype,
                        device=device, progress=progress).fit(counts["decoder"], sets["decoder"])
    t = tick("fit_linear", t)
    lin_enh = dec.predict(counts["enhancer"], batch_size=config.batch_size)
    lin_test = dec.predict(counts["test"], batch_size=config.batch_size)
    t = tick("predict_linear", t)
    enh_images = sets["enhancer"]["image"].values
    pointwise = PointwiseNonlinearity(config.decoder.pointwise_samples,
                                      seed=data.derive_seed(config.seed, "pointwise")).fit(lin_enh, enh_images)
    t = tick("fit_pointwise", t)
    model = Enhancer(config.enhancer, seed=data.derive_seed(config.seed, "enhancer", "weights"))
    history = train_enhancer(model, lin_enh, enh_images, config.train,
                             seed=data.derive_seed(config.seed, "enhancer", "batches"),
                             checkpoint=None if out is None else out / "enhancer.pt", resume=resume,
                             device=device, progress=progress)
    t = tick("train_enhancer", t)
    recon = {"linear": lin_test, "pointwise": pointwise.transform(lin_test),
             "enhanced": model.enhance(lin_test, batch_size=config.batch_size, device=device)}
    test = sets["test"]
    scores = evaluate(test, recon)
    t = tick("evaluate", t)
    ex = _examples(test["source"].values.astype(str), config.n_examples)
    results = scores.assign_coords(source_image=("stimulus_id", test["source"].values.astype(str)))
    results["original"] = (("example", "y", "x"), test["image"].values[ex])
    results["reconstruction"] = (("decoder", "example", "y", "x"), np.stack([recon[m][ex] for m in METHODS]))
    results = results.assign_coords(example=test["stimulus_id"].values[ex],
                                    example_source=("example", test["source"].values[ex].astype(str)))
    results["train_loss"] = (("epoch",), np.asarray(history["train_loss"], dtype=np.float64))
    results = results.assign_coords(epoch=np.asarray(history["epoch"], dtype=np.int64))
    summary = {m: {k: float(results[k].sel(decoder=m).mean()) for k in ("mse", "psnr", "ssim")} for m in METHODS}
    train_sources = sorted(set(sets["decoder"]["source"].values.astype(str)) |
                           set(sets["enhancer"]["source"].values.astype(str)))
    results.attrs.update({
        **data.provenance(config, config.seed),
        "test_sources": json.dumps(sorted(set(test["source"].values.astype(str)))),
        "train_sources": json.dumps(train_sources),
        "n_cells": retina.n_cells,
        "mean_count": float(counts["test"].mean()),
        "linear_lambda": float(dec.lambda_),
        "device": str(device),
        "world_size": world,
        "torch_threads": torch.get_num_threads(),
        "seconds": json.dumps(timings),
        "cpu_seconds": json.dumps(cpu_timings),
        "summary": json.dumps(summary),
    })
    if out is not None and rank == 0:
        data.save(results, out / "results.nc", config=config, seed=config.seed)
    return results


def load_results(path: str | Path) -> xr.Dataset:
    """Read results written by :func:`run_study` (``results.nc``).

    Parameters
    ----------
    path
        The netCDF file.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    TypeError
        If ``path`` is not a path.
    ValueError
        If the file is not a decoding results file.

    Examples
    --------
    >>> import decoding
    >>> decoding.load_results("missing.nc")  # doctest: +SKIP
    """
    path = check_path("path", path)
    res = data.load(path)
    if not isinstance(res, xr.Dataset) or not {"psnr", "ssim", "reconstruction", "original"} <= set(res.data_vars):
        raise ValueError(f"{path} is not a decoding results file (needs psnr, ssim, original, reconstruction)")
    return res


def summary_table(results: xr.Dataset) -> str:
    """Mean (and standard error) of MSE, PSNR and SSIM per method, as text.

    Parameters
    ----------
    results
        Output of :func:`run_study` (or :func:`evaluate`).

    Returns
    -------
    str

    Raises
    ------
    TypeError
        If ``results`` is not an ``xarray.Dataset``.
    ValueError
        If it lacks the ``mse``, ``psnr`` and ``ssim`` variables along ``(decoder, stimulus_id)``.

    Examples
    --------
    >>> import numpy as np
    >>> from decoding import evaluate, summary_table
    >>> ref = np.random.default_rng(0).random((2, 16, 16))
    >>> print(summary_table(evaluate(ref, {"noisy": ref + 0.1})).splitlines()[1])
    noisy         0.01000      20.00 +- 0.00    0.9853 +- 0.0005
    """
    if not isinstance(results, xr.Dataset):
        raise TypeError(f"results must be an xarray.Dataset (from run_study or evaluate), got "
                        f"{type(results).__name__}")
    missing = [v for v in ("mse", "psnr", "ssim") if v not in results.data_vars
               or set(results[v].dims) != {"decoder", "stimulus_id"}]
    if missing:
        raise ValueError(f"results lack the variable(s) {missing} along (decoder, stimulus_id); pass the output "
                         "of decoding.run_study or decoding.evaluate")
    lines = [f"{'decoder':<12} {'MSE':>8} {'PSNR (dB)':>16} {'SSIM':>16}"]
    n = results.sizes["stimulus_id"]
    for m in results["decoder"].values:
        r = results.sel(decoder=m)
        se = lambda v: float(v.std()) / np.sqrt(max(n - 1, 1))  # noqa: E731
        lines.append(f"{m!s:<12} {float(r.mse.mean()):>8.5f} {float(r.psnr.mean()):>10.2f} +- {se(r.psnr):.2f}"
                     f" {float(r.ssim.mean()):>9.4f} +- {se(r.ssim):.4f}")
    return "\n".join(lines)
