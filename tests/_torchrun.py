"""The torchrun harness of the distributed tests (``lcl`` and ``decoding``): run a package's command line in N CPU
processes (gloo) under ``torch.distributed.run``, in the foreground or in the background, and kill a background
run, all its processes, once a condition holds (to test resumption after a crash)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    """The environment of the launched processes: one OpenMP thread each, this checkout first on the path."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def launch(nproc: int, module: str, *args: str, background: bool = False, timeout: float = 600
           ) -> subprocess.Popen | subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=nproc -m module args`` (plain ``python -m module args`` for one
    process): the finished run, or with ``background=True`` the running one (its own process group)."""
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
                if nproc > 1 else [sys.executable])
    cmd = [*launcher, "-m", module, *map(str, args)]
    if background:
        return subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=timeout)


def kill_when(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 300) -> None:
    """Poll ``condition`` while ``proc`` runs; once it holds, SIGKILL the launcher and all its workers. Fails if
    the run ends (or ``timeout`` passes) first: then nothing was interrupted."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not condition():
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    assert time.time() < deadline, f"the condition did not hold within {timeout} s"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
