"""The main job's steps. Each is a module-level function (run as a submitit job by :mod:`analyses._run`) that
writes its outputs atomically, skips them when they exist, and returns the results it made as ``name -> path``
(names as in :mod:`analyses._manifest`).

Making: :func:`step_stimuli`, :func:`step_train`, :func:`step_decoding`, :func:`step_neural`, :func:`step_v2net`.
Measuring (on every :class:`~analyses._represent.Representation`): :func:`step_modulation`,
:func:`step_predictivity`, :func:`step_geometry`; :func:`step_measure` represents one source and runs them.
Every seed is derived from the run's root seed by :func:`data.derive_seed` (see :class:`analyses.PipelineConfig`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import data
import decoding
import geometry
import lcl

from ._manifest import Manifest
from ._modulation import texture_modulation
from ._pipeline_config import MODELS, PipelineConfig, read_neural
from ._predictivity import neural_predictivity
from ._represent import NEURAL, Representation, represent
from ._simulated import SimulatedRecordingConfig, simulated_recording
from ._texture_config import TextureStimuliConfig
from ._textures import texture_stimuli


# ----------------------------------------------------------------------------------------------- seeds, threads
def stimuli_config(config: PipelineConfig) -> TextureStimuliConfig:
    """The stimuli of the run: ``config.stimuli`` with the seed ``derive_seed(seed, "stimuli")``."""
    return config.stimuli.replace(seed=data.derive_seed(config.seed, "stimuli"))


def simulated_config(config: PipelineConfig) -> SimulatedRecordingConfig:
    """The simulated recording of the run, with the seed ``derive_seed(seed, "neural")``."""
    return config.neural.simulated.replace(seed=data.derive_seed(config.seed, "neural"))


def model_config(config: PipelineConfig, name: str) -> lcl.LCLConfig:
    """The LCL config of model ``name``: its :data:`MODELS` changes, seed ``derive_seed(seed, "lcl")`` (the same
    for every model) and the run's device."""
    changes = MODELS[name] or {}
    run = {"seed": data.derive_seed(config.seed, "lcl"), "train": {"device": config.device}}
    return config.lcl.replace(**changes).replace(**run)


def decoding_config(config: PipelineConfig) -> decoding.StudyConfig:
    """The decoding study of the run, with the root seed ``derive_seed(seed, "decoding")``."""
    return config.decoding.replace(seed=data.derive_seed(config.seed, "decoding"))


def recognition_config(config: PipelineConfig) -> lcl.RecognitionConfig:
    """The LCL-V2Net task of the run, with the seed ``derive_seed(seed, "v2net")`` and the run's device."""
    return data.update_config(config.recognition,
                              {"seed": data.derive_seed(config.seed, "v2net"), "device": config.device})


def derived_seeds(config: PipelineConfig) -> dict[str, int]:
    """The seeds the making steps use, by name (written into ``config.json``; the measuring steps' seeds are in
    their result files)."""
    return {"stimuli": stimuli_config(config).seed, "lcl": model_config(config, config.models[0]).seed,
            "neural": simulated_config(config).seed, "decoding": decoding_config(config).seed,
            "v2net": recognition_config(config).seed}


def _threads(n: int) -> None:
    """Hold this job to ``n`` threads: torch's and the BLAS/OpenMP pools numpy and scikit-learn use.

    Jobs share the machine's cores; a BLAS pool of its own default size in every job oversubscribes them, and
    OpenBLAS's spinning threads then slow a job down many-fold (the simulated recording took 535 s instead of
    about 30 s in a demo run next to other busy processes).
    """
    import torch
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    torch.set_num_threads(n)
    threadpool_limits(limits=n)


# ----------------------------------------------------------------------------------------------- making
def step_stimuli(config: PipelineConfig, out: str) -> dict[str, str]:
    """Job: the stimulus set (synthesized textures + noise, or the neural file's own stimuli)."""
    _threads(config.jobs.threads_per_job)
    path = Path(out) / "results" / "stimuli.nc"
    if not path.is_file():
        if config.neural.stimulus_csv:
            stimuli = data.read_brainscore_stimuli(config.neural.stimulus_csv, config.neural.stimulus_zip)
            data.save(stimuli, path, config=config.neural)
        else:
            # The synthesis is the longest job of its phase: split its families over as many processes as the job
            # may use (a local run's job slots, a Slurm job's CPUs); the stimuli do not depend on it.
            j = config.jobs
            workers = j.slurm_cpus_per_task if j.executor == "slurm" else j.max_parallel
            c = stimuli_config(config)
            stimuli = texture_stimuli(c, cache_dir=Path(out) / "cache",
                                      workers=max(1, min(int(workers), len(c.families))))
            data.save(stimuli, path, config=c, seed=c.seed)
    return {"stimuli": str(path)}


def step_train(config: PipelineConfig, name: str, out: str) -> dict[str, str]:
    """Job: train one LCL model (resuming from its checkpoint) or build the untrained control."""
    _threads(config.jobs.threads_per_job)
    folder = Path(out) / "models" / name
    model_file = folder / "model.pt"
    result = {f"model:{name}": str(folder)}
    if model_file.is_file():
        return result
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model_config(config, name)
    if MODELS[name] is None:
        import torch

        # the weights training starts from, with the same data-driven input centring as a trained stage
        model = lcl.Trainer(cfg).center_inputs()
        state = {k: v.cpu() for k, v in model.state_dict().items()}
        with data.atomic_write(model_file) as tmp:
            torch.save({"model": state, "config": cfg.to_dict(),
                        "provenance": data.provenance(cfg, cfg.seed)}, tmp)
        return result
    lcl.train(cfg, folder, resume=(folder / "checkpoint.pt").is_file())
    return result


def step_decoding(config: PipelineConfig, out: str) -> dict[str, str]:
    """Job: the decoding study (retina -> linear -> point-wise / enhanced)."""
    _threads(config.jobs.threads_per_job)
    folder = Path(out) / "decoding"
    results = folder / "results.nc"
    if not results.is_file():
        decoding.run_study(decoding_config(config), out_dir=folder, resume=(folder / "enhancer.pt").is_file(),
                           device=config.device, progress=True)
    return {"decoding": str(results)}


def step_neural(config: PipelineConfig, out: str, manifest: Manifest) -> dict[str, str]:
    """Job: the primate recording for the stimuli (simulated, or read from the file)."""
    _threads(config.jobs.threads_per_job)
    path = Path(out) / "results" / "neural.nc"
    if not path.is_file():
        stimuli = data.load(manifest.path("stimuli"))
        if config.neural.source == "simulated":
            cfg = simulated_config(config)
            data.save(simulated_recording(stimuli, cfg), path, config=cfg, seed=cfg.seed)
        else:
            assembly = read_neural(config.neural.path)
            missing = set(assembly["stimulus_id"].values.tolist()) - set(stimuli["stimulus_id"].values.tolist())
            if missing:
                raise ValueError(f"{len(missing)} neural stimulus_id(s) are not in the stimulus set, "
                                 f"e.g. {sorted(missing)[:3]}")
            data.save(assembly, path, config=config.neural)
    return {NEURAL: str(path)}


def step_v2net(config: PipelineConfig, out: str, manifest: Manifest) -> dict[str, str]:
    """Job: LCL-V2Net and its baselines under corruptions (:func:`lcl.corruption_benchmark`)."""
    _threads(config.jobs.threads_per_job)
    folder = Path(out) / "v2net"
    results = folder / "corruptions.nc"
    if not results.is_file():
        rc = recognition_config(config)
        lcl.corruption_benchmark(lcl.load_model(manifest.path("model:lcl")), rc.backend, rc, folder)
    return {"v2net": str(results)}


# ----------------------------------------------------------------------------------------------- measuring
def _measured(kind: str, rep: Representation, out: str, compute: Any, config: PipelineConfig, seed: int
              ) -> dict[str, str]:
    """Save ``compute()`` as the result ``kind:label`` (with the run's config and the step's seed) unless its file
    exists."""
    name = f"{kind}:{rep.label}"
    path = Path(out) / "results" / f"{kind}_{rep.file_label}.nc"
    if not path.is_file():
        data.save(compute(), path, config=config, seed=seed)
    return {name: str(path)}


def step_modulation(config: PipelineConfig, rep: Representation, out: str) -> dict[str, str]:
    """Step: texture modulation of ``rep.units`` (bootstrap seed ``derive_seed(seed, "modulation", label)``)."""
    seed = data.derive_seed(config.seed, "modulation", rep.file_label)
    return _measured("modulation", rep, out, lambda: texture_modulation(rep.units, seed=seed,
                                                                          **config.modulation.kwargs()),
                     config, seed)


def step_predictivity(config: PipelineConfig, rep: Representation, neural: xr.DataArray, out: str
                      ) -> dict[str, str]:
    """Step: neural predictivity of ``rep.features`` (Brain-Score's fixed split seed, see PipelineConfig)."""
    return _measured("predictivity", rep, out, lambda: neural_predictivity(rep.features, neural, config.predictivity),
                     config, config.predictivity.seed)


def step_geometry(config: PipelineConfig, rep: Representation, out: str) -> dict[str, str]:
    """Step: capacity, radius, dimension, alignment and decodability of the texture-family manifolds of
    ``rep.features`` (seed ``derive_seed(seed, "geometry", label)``)."""
    seed = data.derive_seed(config.seed, "geometry", rep.file_label)

    def compute() -> xr.Dataset:
        a = rep.features
        tex = a.isel(presentation=np.flatnonzero(a["texture_type"].values == "texture"))
        g = config.geometry
        n = tex.sizes["neuroid"]
        if n > g.max_features:  # seeded subsample of the features, without replacement
            tex = tex.isel(neuroid=np.sort(np.random.default_rng(seed).choice(n, g.max_features, replace=False)))
        cap = geometry.capacity(tex, by="texture_family", kappa=g.kappa, n_t=g.n_t,
                                center_correlation=g.center_correlation, seed=seed)
        ali = geometry.alignment(tex, by="texture_family")
        dec = geometry.decodability(tex, by="texture_family", cv=min(g.cv, config.stimuli.n_samples))
        summary = {name: float(var) for ds in (cap, ali, dec) for name, var in ds.data_vars.items() if var.ndim == 0}
        per_manifold = cap[[v for v in cap.data_vars if cap[v].dims == ("manifold",)]]
        result = per_manifold.assign({k: ((), v) for k, v in summary.items()})
        result.attrs = {"representation": rep.file_label, "n_features": int(tex.sizes["neuroid"]),
                        "n_points": int(tex.sizes["presentation"])}
        return result

    return _measured("geometry", rep, out, compute, config, seed)


def step_measure(config: PipelineConfig, out: str, source: str, manifest: Manifest) -> dict[str, str]:
    """Job: represent ``source`` (:func:`~analyses._represent.represent`), then run the measurement steps on
    each of its representations: modulation (on its units), predictivity and geometry (on its features)."""
    _threads(config.jobs.threads_per_job)
    neural = data.load(manifest.path(NEURAL))
    results: dict[str, str] = {}
    for rep in represent(config, source, manifest):
        if rep.units is not None:
            results.update(step_modulation(config, rep, out))
        if rep.features is not None and rep.predict:
            results.update(step_predictivity(config, rep, neural, out))
        if rep.features is not None:
            results.update(step_geometry(config, rep, out))
    return results
