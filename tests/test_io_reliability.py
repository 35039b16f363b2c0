"""data.save / data.load under interruption: stale temporary files of a killed save are cleaned up, and a
truncated or garbage file is a ValueError naming its path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import data
from data import _io

REPO = Path(__file__).resolve().parents[1]
HOUR = _io.STALE_TEMP_SECONDS


def _assembly(n: int = 4):
    return data.assembly(np.arange(n * 3, dtype=float).reshape(n, 3), stimulus_id=[f"s{i}" for i in range(n)],
                         neuroid_id=["a", "b", "c"])


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def _temp_name(target: str, pid: int, host: str | None = None, rand: str = "abcd1234") -> str:
    return f".{target}.{host or _io._host_tag()}-{pid}-{rand}.tmp"


def test_temp_file_names_record_host_and_pid(tmp_path):
    with data.atomic_write(tmp_path / "x.nc") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(f".x.nc.{_io._host_tag()}-{os.getpid()}-") and tmp.name.endswith(".tmp")
    assert _temps(tmp_path) == []


def test_killed_save_leaves_a_temp_file_that_the_next_save_removes(tmp_path):
    """A real SIGKILL in the middle of a write (the child is killed while it holds a half-written temp file)."""
    target = tmp_path / "a.nc"
    child = (
        "import sys, time, data\n"
        f"with data.atomic_write({str(target)!r}) as tmp:\n"
        "    with open(tmp, 'wb') as fh:\n"
        "        fh.write(b'x' * 100000)\n"
        "        fh.flush()\n"
        "        print('writing', flush=True)\n"
        "        time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.kill()  # SIGKILL: no finally clause runs
    finally:
        proc.wait(timeout=30)
    left = _temps(tmp_path)
    assert len(left) == 1 and left[0].startswith(".a.nc.") and f"-{proc.pid}-" in left[0]
    assert not target.exists()
    data.save(_assembly(), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc"]
    assert data.load(target).shape == (4, 3)


def test_load_removes_a_dead_writers_temp_file(tmp_path):
    target = data.save(_assembly(), tmp_path / "a.nc")
    stale = tmp_path / _temp_name("a.nc", _dead_pid())
    stale.write_bytes(b"half a file")
    data.load(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc"]


def test_load_of_a_missing_file_still_cleans_up_and_raises(tmp_path):
    stale = tmp_path / _temp_name("a.nc", _dead_pid())
    stale.write_bytes(b"half a file")
    with pytest.raises(FileNotFoundError, match="a.nc"):
        data.load(tmp_path / "a.nc")
    assert not stale.exists()


def test_live_writer_temp_file_is_kept(tmp_path):
    """A concurrent writer to the same path (a live process of this host) keeps its file, however old."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / _temp_name("a.nc", live.pid)
        busy.write_bytes(b"being written")
        mine = tmp_path / _temp_name("a.nc", os.getpid(), rand="mine5678")  # this process, another thread
        mine.write_bytes(b"being written")
        data.save(_assembly(), tmp_path / "a.nc")
        data.load(tmp_path / "a.nc")
        assert busy.exists() and mine.exists()
    finally:
        live.kill()
        live.wait(timeout=30)
    data.save(_assembly(), tmp_path / "a.nc")  # now its writer is gone
    assert not busy.exists() and mine.exists()


def test_concurrent_writer_finishes_while_another_save_runs(tmp_path):
    target = tmp_path / "a.nc"
    child = (
        "import sys, time, data\n"
        f"with data.atomic_write({str(target)!r}) as tmp:\n"
        "    print('writing', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    tmp.write_text('from the child')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "writing"
        data.save(_assembly(), target)  # must not take the child's temp file
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert target.read_text() == "from the child"  # the last rename wins, and nothing is left behind
    assert _temps(tmp_path) == []


def test_unknown_writers_are_removed_only_after_an_hour(tmp_path):
    """Another host's pid, or a name without a pid (earlier versions), cannot be checked: age decides."""
    other_host = "0" * 8 if _io._host_tag() != "0" * 8 else "1" * 8
    old_remote = tmp_path / _temp_name("a.nc", 12345, host=other_host)
    new_remote = tmp_path / _temp_name("a.nc", 12346, host=other_host, rand="efgh5678")
    old_legacy = tmp_path / ".a.nc.k2j4h5g6.tmp"
    new_legacy = tmp_path / ".a.nc.q9w8e7r6.tmp"
    for p in (old_remote, new_remote, old_legacy, new_legacy):
        p.write_bytes(b"partial")
    _age(old_remote, HOUR + 60)
    _age(old_legacy, HOUR + 60)
    _age(new_remote, HOUR - 60)
    data.save(_assembly(), tmp_path / "a.nc")
    assert _temps(tmp_path) == sorted([new_remote.name, new_legacy.name])


def test_other_paths_temp_files_are_never_touched(tmp_path):
    dead = _dead_pid()
    others = [
        _temp_name("a.nc.bak", dead),  # another target that starts with the same name
        _temp_name("b.nc", dead),
        ".a.nc.notes.txt",
        ".a.nc.tmp",
        f".a.nc.{_io._host_tag()}-{dead}-abc.tmp",  # not a name atomic_write makes
    ]
    for name in others:
        (tmp_path / name).write_bytes(b"keep")
        _age(tmp_path / name, 10 * HOUR)
    data.save(_assembly(), tmp_path / "a.nc")
    data.load(tmp_path / "a.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.nc", *others])


def test_stale_temp_cleanup_ignores_a_read_only_folder(tmp_path):
    target = data.save(_assembly(), tmp_path / "a.nc")
    stale = tmp_path / _temp_name("a.nc", _dead_pid())
    stale.write_bytes(b"partial")
    tmp_path.chmod(0o555)
    try:
        assert data.load(target).shape == (4, 3)  # load still works (the file stays, unless run as root)
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("keep", [0, 8, 100, 0.5, 0.9])
def test_load_of_a_truncated_file_is_a_value_error_naming_it(tmp_path, keep):
    good = data.save(_assembly(50), tmp_path / "good.nc")
    raw = good.read_bytes()
    bad = tmp_path / "bad.nc"
    bad.write_bytes(raw[:int(keep * len(raw)) if isinstance(keep, float) else keep])
    with pytest.raises(ValueError, match="bad.nc") as info:
        data.load(bad)
    assert str(bad) in str(info.value) and "truncated" in str(info.value)


def test_load_of_garbage_is_a_value_error_naming_it(tmp_path):
    bad = tmp_path / "garbage.nc"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=str(bad)):
        data.load(bad)
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        data.load(tmp_path / "missing.nc")
