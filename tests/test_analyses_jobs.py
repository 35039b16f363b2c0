"""Batch jobs through submitit's local executor: a job array, and failures reported with their errors."""

from __future__ import annotations

import math
import operator

import pytest

import analyses


def test_local_job_array_reports_the_failed_step_with_its_error(tmp_path):
    steps = [
        (math.factorial, (5,)),
        (operator.add, (2, 3)),
        analyses.JobStep(operator.truediv, (1, 0), name="divide by zero"),
        (analyses.spearman_brown, (0.5,), {"n": 2}),
        analyses.JobStep(math.sqrt, (16,)),
    ]
    with pytest.raises(analyses.JobsFailedError) as info:
        analyses.run_jobs(steps, executor="local", folder=tmp_path, timeout_min=5)
    err = info.value
    assert len(err.failures) == 1
    failure = err.failures[0]
    assert failure.index == 2 and failure.label == "divide by zero"
    assert failure.summary == "ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in failure.traceback
    message = str(err)
    assert message.startswith("1 of 5 job(s) failed:")
    assert "step 2 'divide by zero'" in message and "division by zero" in message
    # the other steps ran in their own processes and kept their results, in order
    assert err.results[:2] == [120, 5] and err.results[2] is None
    assert float(err.results[3]) == pytest.approx(2 / 3) and err.results[4] == 4.0
    # submitit wrote one job folder per step
    assert len([p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit()]) == 5


def test_every_failure_is_listed_and_rolling_submission_keeps_order(tmp_path):
    steps = [(math.sqrt, (-1,)), (math.factorial, (3,)), (operator.truediv, (1, 0)), (math.sqrt, (9,))]
    with pytest.raises(analyses.JobsFailedError) as info:
        analyses.run_jobs(steps, folder=tmp_path, max_parallel=2, timeout_min=5)
    assert [f.index for f in info.value.failures] == [0, 2]
    assert info.value.failures[0].summary == "ValueError: math domain error"
    assert info.value.results == [None, 6, None, 3.0]


def test_debug_executor_runs_in_process(tmp_path):
    assert analyses.run_jobs([(math.factorial, (4,)), math.pi.__float__], executor="debug",
                             folder=tmp_path) == [24, math.pi]


@pytest.mark.parametrize("kwargs, message", [
    (dict(executor="kubernetes"), "unknown executor 'kubernetes'"),
    (dict(slurm_params={"slurm_partition": "gpu"}), "slurm_params given for executor 'local'"),
    (dict(max_parallel=0), "max_parallel must be a positive integer"),
])
def test_bad_arguments_are_rejected_before_submission(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        analyses.run_jobs([(math.sqrt, (4,))], folder=tmp_path / "jobs", **kwargs)
    assert not (tmp_path / "jobs").exists()


def test_malformed_steps_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="step 1"):
        analyses.run_jobs([(math.sqrt, (4,)), ("not callable", ())], folder=tmp_path)
    with pytest.raises(ValueError, match="no steps"):
        analyses.run_jobs([], folder=tmp_path)
