"""Batch jobs through submitit: each study step is a job (local executor by default, Slurm when configured)."""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from data._checks import check_float, check_int, check_path, check_str

__all__ = ["JobStep", "JobFailure", "JobsFailedError", "run_jobs", "EXECUTORS"]

EXECUTORS = ("local", "slurm", "debug")


@dataclasses.dataclass(frozen=True)
class JobStep:
    """One study step: ``function(*args, **kwargs)`` run as a job.

    ``function`` must be importable in a fresh process (a module-level function of an installed package);
    submitit pickles it with its arguments.

    Parameters
    ----------
    function
        The callable.
    args
        Positional arguments.
    kwargs
        Keyword arguments.
    name
        Label used in reports (default: ``module.qualname`` of the function).

    Raises
    ------
    TypeError
        For a ``function`` that is not callable, ``args`` that is not a tuple or list, ``kwargs`` that is not a
        mapping with string keys, a ``name`` that is not a string.

    Examples
    --------
    >>> import math, analyses
    >>> analyses.JobStep(math.sqrt, (16,)).label
    'math.sqrt'
    """

    function: Callable[..., Any]
    args: tuple = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    name: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.function):
            raise TypeError(f"function must be callable, got {self.function!r}")
        if not isinstance(self.args, (tuple, list)):
            raise TypeError(f"args must be a tuple of positional arguments, got {type(self.args).__name__}")
        object.__setattr__(self, "args", tuple(self.args))
        if not isinstance(self.kwargs, Mapping) or not all(isinstance(k, str) for k in self.kwargs):
            raise TypeError(f"kwargs must be a mapping of argument names to values, got {self.kwargs!r}")
        check_str("name", self.name, none=True)

    @property
    def label(self) -> str:
        """The step's name, or ``module.qualname`` of its function."""
        if self.name:
            return self.name
        mod = getattr(self.function, "__module__", None) or "?"
        qual = getattr(self.function, "__qualname__", None) or repr(self.function)
        return f"{mod}.{qual}"


@dataclasses.dataclass(frozen=True)
class JobFailure:
    """A failed step: its index, label, job id, error summary and the remote traceback.

    Parameters
    ----------
    index
        Position of the step (``>= 0``).
    label, job_id, summary, traceback
        Strings: the step's label, the scheduler's job id, a one-line error summary and the full traceback.

    Raises
    ------
    TypeError, ValueError
        For a negative or non-integer ``index`` or a non-string field.

    Examples
    --------
    >>> import analyses
    >>> f = analyses.JobFailure(2, "divide", "123", "ZeroDivisionError: division by zero", "Traceback ...")
    >>> f.summary
    'ZeroDivisionError: division by zero'
    """

    index: int
    label: str
    job_id: str
    summary: str
    traceback: str

    def __post_init__(self) -> None:
        check_int("index", self.index, low=0)
        for name in ("label", "job_id", "summary", "traceback"):
            check_str(name, getattr(self, name))


class JobsFailedError(RuntimeError):
    """Raised by :func:`run_jobs` when any step fails; lists every failed step with its error.

    Parameters
    ----------
    failures
        The failed steps (at least one).
    results
        Results in step order, ``None`` for failed steps.
    n_steps
        Number of steps run (at least ``len(failures)``).

    Attributes
    ----------
    failures : list of JobFailure
    results : list
        Results in step order, ``None`` for failed steps.

    Examples
    --------
    >>> import analyses
    >>> err = analyses.JobsFailedError([analyses.JobFailure(0, "s", "1", "ValueError: x", "tb")], [None], 1)
    >>> print(str(err).splitlines()[0])
    1 of 1 job(s) failed:
    """

    def __init__(self, failures: list[JobFailure], results: list[Any], n_steps: int):
        if not isinstance(failures, (list, tuple)) or not failures \
                or not all(isinstance(f, JobFailure) for f in failures):
            raise TypeError(f"failures must be a non-empty list of JobFailure, got {failures!r:.80}")
        if not isinstance(results, (list, tuple)):
            raise TypeError(f"results must be a list, got {type(results).__name__}")
        check_int("n_steps", n_steps, low=len(failures))
        failures, results = list(failures), list(results)
        self.failures = failures
        self.results = results
        lines = [f"{len(failures)} of {n_steps} job(s) failed:"]
        for f in failures:
            lines.append(f"- step {f.index} {f.label!r} (job {f.job_id}): {f.summary}")
            tail = [ln for ln in f.traceback.strip().splitlines() if ln.strip()][-12:]
            lines.extend("    " + ln for ln in tail)
        super().__init__("\n".join(lines))


def _as_step(item: Any, i: int) -> JobStep:
    if isinstance(item, JobStep):
        step = item
    elif callable(item):
        step = JobStep(item)
    elif isinstance(item, (tuple, list)) and item and callable(item[0]) and len(item) <= 3:
        fn = item[0]
        args = item[1] if len(item) > 1 else ()
        kwargs = item[2] if len(item) > 2 else {}
        if not isinstance(args, (tuple, list)) or not isinstance(kwargs, Mapping):
            raise ValueError(f"step {i}: expected (function, args tuple[, kwargs dict]), got {item!r}")
        step = JobStep(fn, tuple(args), dict(kwargs))
    else:
        raise ValueError(f"step {i}: expected a JobStep, a callable or (function, args[, kwargs]); got {item!r}")
    if not callable(step.function):
        raise ValueError(f"step {i}: {step.function!r} is not callable")
    return step


def _error_summary(exc: BaseException) -> tuple[str, str]:
    """(one-line summary, full text) of a job error; submitit's FailedJobError carries the remote traceback."""
    text = str(exc)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    full = "".join(traceback.format_exception(exc))
    summary = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    for ln in reversed(lines):  # the last "SomeError: message" line of the remote traceback
        head = ln.split(":", 1)[0]
        if head and head.replace(".", "").replace("_", "").isalnum() and head.endswith(("Error", "Exception")):
            summary = ln
            break
    return summary, full


def run_jobs(steps: Sequence[Any], *, executor: str = "local", folder: str | os.PathLike = "jobs",
             slurm_params: Mapping[str, Any] | None = None, timeout_min: float = 60.0,
             max_parallel: int | None = None, poll_s: float = 0.2) -> list[Any]:
    """Run study steps as a submitit job array and return their results in order.

    Every step is submitted (``"local"``: one process per job on this machine through submitit's
    ``LocalExecutor``; ``"slurm"``: one Slurm job array; ``"debug"``: in this process, for debugging). All jobs
    are waited for; if any failed (exception, timeout, killed), a :class:`JobsFailedError` lists each failed step
    with its error summary and traceback, and carries the results of the others. Nothing is dropped silently.

    Parameters
    ----------
    steps
        :class:`JobStep` objects, callables, or ``(function, args[, kwargs])`` tuples. Functions must be
        importable from a fresh process (module-level functions of installed packages).
    executor
        ``"local"``, ``"slurm"`` or ``"debug"``.
    folder
        Where submitit keeps pickles and logs (``%j`` job folders).
    slurm_params
        Extra submitit parameters for Slurm, e.g. ``{"slurm_partition": "gpu", "gpus_per_node": 1,
        "cpus_per_task": 8, "mem_gb": 32}``; rejected for other executors.
    timeout_min
        Per-job time limit in minutes (submitit's local default is only 2 minutes).
    max_parallel
        At most this many jobs at once (local: rolling submission; Slurm: ``slurm_array_parallelism``);
        ``None``: no limit.
    poll_s
        Polling interval for local rolling submission.

    Returns
    -------
    list
        One result per step, in order.

    Raises
    ------
    TypeError
        Before submitting anything: arguments of the wrong type (a non-path ``folder``, a string for a number).
    ValueError
        Before submitting anything: unknown executor, malformed step, Slurm parameters for a non-Slurm executor,
        a ``timeout_min`` that is not a positive finite number, ``poll_s`` outside ``(0, 60]``.
    JobsFailedError
        After all jobs ended, if any failed.

    Examples
    --------
    >>> import math, tempfile, analyses
    >>> analyses.run_jobs([(math.sqrt, (16,)), (math.factorial, (4,))], executor="debug",
    ...                   folder=tempfile.mkdtemp())
    [4.0, 24]
    """
    import submitit

    check_str("executor", executor)
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    if slurm_params is not None and (not isinstance(slurm_params, Mapping)
                                     or not all(isinstance(k, str) for k in slurm_params)):
        raise TypeError(f"slurm_params must be a mapping of submitit parameter names, got {slurm_params!r:.80}")
    if slurm_params and executor != "slurm":
        raise ValueError(f"slurm_params given for executor {executor!r}; they only apply to 'slurm'")
    max_parallel = check_int("max_parallel", max_parallel, low=1, none=True)
    timeout_min = check_float("timeout_min", timeout_min, low=0.0, low_open=True)
    poll_s = check_float("poll_s", poll_s, low=0.0, high=60.0, low_open=True)
    folder = check_path("folder", folder)
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
        raise TypeError(f"steps must be a list of JobStep, callables or (function, args[, kwargs]) tuples, got "
                        f"{type(steps).__name__}")
    items = list(steps)
    if not items:
        raise ValueError("no steps to run")
    jobs_steps = [_as_step(item, i) for i, item in enumerate(items)]

    folder.mkdir(parents=True, exist_ok=True)
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster=executor)
    params: dict[str, Any] = {"timeout_min": int(max(1, round(timeout_min))), "name": "lcl-workbench"}
    if executor == "slurm":
        params.update(dict(slurm_params or {}))
        if max_parallel is not None:
            params["slurm_array_parallelism"] = max_parallel
    ex.update_parameters(**params)

    jobs: list[Any] = [None] * len(jobs_steps)
    if executor == "local" and max_parallel is not None:
        pending = list(range(len(jobs_steps)))
        while pending or any(j is not None and not j.done() for j in jobs):
            active = sum(1 for j in jobs if j is not None and not j.done())
            while pending and active < max_parallel:
                i = pending.pop(0)
                s = jobs_steps[i]
                jobs[i] = ex.submit(s.function, *s.args, **dict(s.kwargs))
                active += 1
            time.sleep(poll_s)
    else:
        with ex.batch():
            for i, s in enumerate(jobs_steps):
                jobs[i] = ex.submit(s.function, *s.args, **dict(s.kwargs))

    results: list[Any] = []
    failures: list[JobFailure] = []
    for i, (job, s) in enumerate(zip(jobs, jobs_steps)):
        try:
            results.append(job.result())
        except Exception as exc:  # noqa: BLE001 - every failure is collected and re-raised below
            summary, text = _error_summary(exc)
            failures.append(JobFailure(i, s.label, str(getattr(job, "job_id", "?")), summary, text))
            results.append(None)
    if failures:
        raise JobsFailedError(failures, results, len(jobs_steps))
    return results
