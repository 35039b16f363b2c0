"""The main job: train LCL models (and their ablations), compare them with (simulated or recorded) primate V1/V2
data, measure population geometry, run the decoding study, and write results, figures and a report.

Every step (:mod:`analyses._steps`) is a module-level function run as a submitit job (:func:`analyses.run_jobs`):
local processes by default, a Slurm job array when configured. Steps hand each other a manifest of named results
(:mod:`analyses._manifest`), saved as ``manifest.json`` after every phase. Each step writes its outputs atomically
and skips them when they exist, so an interrupted run resumes where it stopped (LCL training resumes from its
checkpoint).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import data
from data._checks import check_path

from ._jobs import JobStep, run_jobs
from ._manifest import Manifest
from ._pipeline_config import PipelineConfig, validate_pipeline_config
from ._pipeline_figures import plot
from ._report import write_report
from ._represent import sources
from ._steps import derived_seeds, step_decoding, step_measure, step_neural, step_stimuli, step_train, step_v2net

__all__ = ["run"]


def _run_steps(steps: list[JobStep], config: PipelineConfig, out: Path, phase: str, manifest: Manifest
               ) -> None:
    """Run one phase's steps as a job array and record the results they return in the manifest."""
    j = config.jobs
    slurm: dict[str, Any] | None = None
    if j.executor == "slurm":
        slurm = {"slurm_cpus_per_task": j.slurm_cpus_per_task, "slurm_mem_gb": j.slurm_mem_gb}
        if j.slurm_partition:
            slurm["slurm_partition"] = j.slurm_partition
        if j.slurm_gpus_per_node:
            slurm["slurm_gpus_per_node"] = j.slurm_gpus_per_node
    print(f"[{phase}] {len(steps)} job(s) on executor {j.executor!r}: " + ", ".join(s.label for s in steps),
          flush=True)
    for results in run_jobs(steps, executor=j.executor, folder=out / "jobs" / phase, slurm_params=slurm,
                            timeout_min=j.timeout_min, max_parallel=j.max_parallel):
        manifest.add(results)
    manifest.save()


def run(config: PipelineConfig | None = None, out: str | os.PathLike = "outputs/demo") -> Path:
    """Run the main job; write results (netCDF/JSON), figures (PNG + PDF), ``manifest.json`` and ``report.md``
    into ``out``.

    Phase 1 (one job array): the stimuli, each LCL model's training, the decoding study. Phase 2: the neural
    recording. Phase 3 (one job array): per source (each model, the pixels, the neural data), represent it and
    measure texture modulation, neural predictivity and geometry on its representations. Then figures and the
    report. Steps whose outputs exist are skipped, so re-running an interrupted job resumes it.

    Parameters
    ----------
    config
        The job (default: ``PipelineConfig.preset("demo")``, the embedded default).
    out
        Output folder.

    Returns
    -------
    pathlib.Path
        The output folder.

    Raises
    ------
    TypeError
        For an ``out`` that is not a path (str or ``os.PathLike``), a ``config`` that is not a
        :class:`PipelineConfig` or ``None``.
    ValueError
        From :func:`validate_pipeline_config`, before any work.

    Examples
    --------
    >>> import analyses
    >>> analyses.run(analyses.PipelineConfig.preset("demo"), "outputs/demo")  # doctest: +SKIP
    """
    out = check_path("out", out)
    config = validate_pipeline_config(PipelineConfig.preset("demo") if config is None else config)
    (out / "results").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with data.atomic_write(out / "config.json") as tmp:
        tmp.write_text(json.dumps({"config": config.to_dict(), "derived_seeds": derived_seeds(config),
                                   **{k: v for k, v in data.provenance().items() if k != "config"}},
                                  indent=2, default=list))
    o = str(out.resolve())  # the steps (in other processes and working directories) return absolute paths
    manifest = Manifest(out)
    timings: dict[str, float] = {}
    # The stimulus synthesis (one core, ~9 min for the protocol) is the longest job: start it first, so the
    # training jobs fill the other slots around it.
    phase1 = [JobStep(step_stimuli, (config, o), name="stimuli")]
    phase1 += [JobStep(step_train, (config, name, o), name=f"train {name}") for name in config.models]
    if config.run_decoding:
        phase1.append(JobStep(step_decoding, (config, o), name="decoding"))
    t = time.perf_counter()
    _run_steps(phase1, config, out, "phase1", manifest)
    timings["phase1_train_stimuli_decoding"] = time.perf_counter() - t
    t = time.perf_counter()
    manifest.add(step_neural(config, o, manifest)).save()
    timings["phase2_neural"] = time.perf_counter() - t
    phase3 = [JobStep(step_measure, (config, o, source, manifest), name=f"measure {source}")
              for source in sources(config)]
    if config.run_v2net:
        phase3.append(JobStep(step_v2net, (config, o, manifest), name="v2net"))
    t = time.perf_counter()
    _run_steps(phase3, config, out, "phase3", manifest)
    timings["phase3_analyses"] = time.perf_counter() - t
    t = time.perf_counter()
    figures = plot(out)
    manifest = Manifest.load(out)  # with the figures plot added
    timings["figures"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    timings_file = out / "results" / "timings.json"
    with data.atomic_write(timings_file) as tmp:
        tmp.write_text(json.dumps(timings, indent=2))
    manifest.add({"timings": timings_file}).save()
    write_report(out)
    print(f"done in {timings['total']:.0f} s: {len(figures)} figure files; report: {out / 'report.md'}", flush=True)
    return out
