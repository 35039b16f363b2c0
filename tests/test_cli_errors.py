"""The three command lines report bad input as exactly one ``error: ...`` line on stderr with exit status 2,
before any work (nothing trains, no output folder appears); ``--debug`` shows the traceback instead; any other
exception (a bug) still propagates with its traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import data

REPO = Path(__file__).resolve().parents[1]


def _cli(module: str, *args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def _one_error_line(r: subprocess.CompletedProcess, *names: object) -> str:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr  # no traceback, no warnings
    assert lines[0].startswith("error: ") and lines[0][len("error: "):].strip(), r.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    assert r.stdout == ""
    return lines[0]


def _toml(folder: Path, text: str, name: str = "c.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _truncated_checkpoint(path: Path, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": {}, "model": {"w": torch.zeros(20000)}, **extra}, path)
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])
    return path


def _truncated_nc(path: Path) -> Path:
    a = data.assembly(np.zeros((40, 30)), stimulus_id=[f"s{i}" for i in range(40)],
                      neuroid_id=[f"n{i}" for i in range(30)])
    data.save(a, path)
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])
    return path


# ------------------------------------------------------------------------------------- configs, all three CLIs
#: (command line, subcommand) -> {case: (TOML text, names the one error line must contain)}
BAD_CONFIGS = {
    ("lcl", "train"): {
        "unknown key": ("[train]\nbogus = 1\n", ["bogus"]),
        "wrong type": ('[train]\nbatch_size = "4"\n', ["batch_size"]),
        "out of range": ("[train]\nsteps = [-1, 1]\n", ["steps"]),
    },
    ("decoding", "run"): {
        "unknown key": ("[train]\nbogus = 1\n", ["bogus"]),
        "wrong type": ('[train]\nepochs = "3"\n', ["epochs"]),
        "out of range": ("[train]\nepochs = -1\n", ["epochs"]),
    },
    ("analyses", "run"): {
        "unknown key": ("[geometry]\nbogus = 1\n", ["bogus"]),
        "wrong type": ('[geometry]\nkappa = "0"\n', ["kappa"]),
        "out of range": ("[geometry]\nn_t = -1\n", ["n_t"]),
        "bad device": ('[lcl.train]\ndevice = "bogus"\n', ["bogus"]),
    },
}


@pytest.mark.parametrize("cli, case", [(cli, case) for cli, cases in BAD_CONFIGS.items() for case in sorted(cases)],
                         ids=lambda v: v[0] if isinstance(v, tuple) else v)
def test_bad_config(tmp_path, cli, case):
    text, names = BAD_CONFIGS[cli][case]
    out = tmp_path / "out"
    _one_error_line(_cli(*cli, "--config", _toml(tmp_path, text), "--out", out), *names)
    assert not out.exists()  # nothing trained, nothing written


@pytest.mark.parametrize("cli", sorted(BAD_CONFIGS), ids=lambda v: v[0])
def test_missing_config(tmp_path, cli):
    _one_error_line(_cli(*cli, "--config", tmp_path / "missing.toml", "--out", tmp_path / "o"),
                    tmp_path / "missing.toml")


# ---------------------------------------------------------------------------------------------------------- lcl
def test_lcl_bad_device(tmp_path):
    _one_error_line(_cli("lcl", "train", "--device", "bogus", "--out", tmp_path / "o"), "bogus")
    assert not (tmp_path / "o").exists()


def test_lcl_resume_from_a_truncated_checkpoint(tmp_path):
    ckpt = _truncated_checkpoint(tmp_path / "run" / "checkpoint.pt")
    _one_error_line(_cli("lcl", "train", "--resume", "--out", tmp_path / "run", "--no-progress"), ckpt)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt"]


def test_lcl_debug_shows_the_traceback(tmp_path):
    r = _cli("lcl", "train", "--debug", "--config", tmp_path / "missing.toml")
    assert r.returncode == 1 and "Traceback" in r.stderr and "FileNotFoundError" in r.stderr


def test_lcl_in_process_errors(tmp_path, capsys):
    from lcl.__main__ import _UsageError, main

    ckpt = _truncated_checkpoint(tmp_path / "run" / "model.pt")
    broken = _toml(tmp_path, "[train\nsteps = 1\n", "broken.toml")
    cases = [
        (["filters", tmp_path / "run"], ckpt),
        (["v2net", ckpt], ckpt),
        (["v2net", tmp_path / "run", "--device", "nope"], "nope"),
        (["v2net", tmp_path / "run", "--config", broken], broken),
        (["train", "--config", broken, "--out", tmp_path / "o"], broken),
    ]
    for argv, name in cases:
        assert main(list(map(str, argv))) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and str(name) in err[0], err
    assert not (tmp_path / "o").exists()
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    assert main(["filters", str(tmp_path / "foreign.pt")]) == 2
    assert "is not an LCL checkpoint" in capsys.readouterr().err
    for argv in (["--debug", "filters", str(ckpt)], ["filters", str(ckpt), "--debug"]):
        with pytest.raises(_UsageError, match="checkpoint"):
            main(argv)
    with pytest.raises(SystemExit) as info:  # argparse usage errors keep their own exit status 2
        main(["train", "--bogus-flag"])
    assert info.value.code == 2


def test_lcl_bugs_are_not_swallowed(tmp_path, monkeypatch):
    import lcl
    from lcl.__main__ import main

    class Broken:
        def __init__(self, *args, **kwargs):
            pass

        def run(self):
            raise ValueError("a bug inside training")

    monkeypatch.setattr(lcl, "Trainer", Broken)
    with pytest.raises(ValueError, match="a bug inside training"):
        main(["train", "--demo", "--out", str(tmp_path / "o")])


# ----------------------------------------------------------------------------------------------------- decoding
def test_decoding_bad_device(tmp_path):
    _one_error_line(_cli("decoding", "run", "--device", "bogus", "--out", tmp_path / "o"), "bogus")
    assert not (tmp_path / "o").exists()


def test_decoding_truncated_and_garbage_results(tmp_path):
    trunc = _truncated_nc(tmp_path / "results.nc")
    _one_error_line(_cli("decoding", "summary", trunc), trunc)
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not a netCDF file\n" * 50)
    _one_error_line(_cli("decoding", "plot", garbage), garbage)
    assert not (tmp_path / "reconstructions.png").exists()


def test_decoding_in_process_errors(tmp_path, capsys):
    from decoding.__main__ import _UsageError, main

    ckpt = _truncated_checkpoint(tmp_path / "run" / "enhancer.pt")
    cases = [
        (["run", "--preset", "tiny", "--out", str(tmp_path / "run"), "--resume"], ckpt),
        (["run", "--out", str(tmp_path / "o"), "--threads", "0"], "--threads"),
        (["summary", str(tmp_path / "missing.nc")], tmp_path / "missing.nc"),
        (["run", "--config", str(_toml(tmp_path, "[bogus]\nx = 1\n")), "--out", str(tmp_path / "o")], "bogus"),
    ]
    for argv, name in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and str(name) in err[0]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["enhancer.pt"]
    for argv in (["--debug", "summary", str(tmp_path / "missing.nc")],
                 ["summary", str(tmp_path / "missing.nc"), "--debug"]):
        with pytest.raises(_UsageError, match="missing.nc"):
            main(argv)
    with pytest.raises(SystemExit) as info:
        main(["run"])  # --out is required: argparse's own exit status 2
    assert info.value.code == 2


def test_decoding_bugs_are_not_swallowed(monkeypatch):
    import decoding.__main__ as cli

    monkeypatch.setattr(cli, "load_results", lambda path: object())

    def broken(results):
        raise ValueError("a bug in the table")

    monkeypatch.setattr(cli, "summary_table", broken)
    with pytest.raises(ValueError, match="a bug in the table"):
        cli.main(["summary", "whatever.nc"])

    def crash(path):
        raise RuntimeError("a bug while reading")

    monkeypatch.setattr(cli, "load_results", crash)
    with pytest.raises(RuntimeError, match="a bug while reading"):
        cli.main(["summary", "whatever.nc"])


# ----------------------------------------------------------------------------------------------------- analyses
def _manifest(run, **results):
    """A run folder's manifest.json naming ``results`` (name -> path relative to the folder)."""
    import json

    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.json").write_text(json.dumps({"format": "lcl-workbench manifest", "version": 1,
                                                   "results": results}))


def test_analyses_plot_of_a_truncated_results_file(tmp_path):
    stimuli = _truncated_nc(tmp_path / "results" / "stimuli.nc")
    _manifest(tmp_path, stimuli="results/stimuli.nc")
    _one_error_line(_cli("analyses", "plot", tmp_path), stimuli)
    assert not any((tmp_path / "figures").glob("*.png"))


@pytest.mark.parametrize("text, names", [
    ("models = 5\n", ["models"]),
    ('models = ["lcl"]\nrun_decoding = 1\n', ["run_decoding"]),
    ('[neural.simulated]\nwindow_ms = "x"\n', ["[neural.simulated] window_ms"]),
    ('[decoding.train]\nepochs = "2"\n', ["[decoding.train] epochs"]),
    ("[jobs\n", ["c.toml"]),
])
def test_analyses_config_errors_in_process(tmp_path, capsys, text, names):
    from analyses.__main__ import main

    assert main(["config", "--config", str(_toml(tmp_path, text))]) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and captured.out == ""
    for name in names:
        assert name in err[0]


def test_analyses_plot_of_damaged_folders_in_process(tmp_path, capsys):
    from analyses.__main__ import _UsageError, main

    a = data.assembly(np.zeros((2, 2)), stimulus_id=["a", "b"], neuroid_id=["n0", "n1"])
    run = tmp_path / "run"
    data.save(a, run / "results" / "stimuli.nc")
    _manifest(run, stimuli="results/stimuli.nc")
    damaged = [
        (run / "config.json", b'{"config": '),
        (run / "models" / "lcl" / "log.jsonl", b'{"step": 1}\n{"st'),
        (run / "models" / "lcl" / "model.pt", None),
    ]
    for path, content in damaged:
        if content is None:
            _truncated_checkpoint(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    for path, _ in damaged:
        assert main(["plot", str(run)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and str(path) in err[0], err
        path.unlink()
    (run / "manifest.json").write_bytes(b'{"results": ')
    assert main(["plot", str(run)]) == 2
    assert str(run / "manifest.json") in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "nothing" in capsys.readouterr().err
    with pytest.raises(_UsageError, match="nothing"):
        main(["plot", str(tmp_path / "nothing"), "--debug"])


def test_analyses_bugs_are_not_swallowed(tmp_path, monkeypatch):
    import analyses.__main__ as cli

    def broken(results_dir):
        raise ZeroDivisionError("a bug while drawing")

    monkeypatch.setattr(cli, "plot", broken)
    (tmp_path / "results").mkdir()
    with pytest.raises(ZeroDivisionError):
        cli.main(["plot", str(tmp_path)])
