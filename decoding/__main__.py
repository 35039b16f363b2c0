"""Command line: ``python -m decoding run|plot|summary``.

Examples
--------
python -m decoding run --preset demo --out out/decoding          # train, evaluate, save results + figure
python -m decoding run --preset paper --config my.toml --out out/paper --resume
python -m decoding plot out/decoding/results.nc --out out/decoding/reconstructions
python -m decoding summary out/decoding/results.nc
torchrun --standalone --nproc_per_node=4 -m decoding run --preset paper --out out/paper --device cuda   # DDP

Under ``torchrun`` every process joins the process group (gloo on CPUs, NCCL with ``--device cuda``), computes
the deterministic steps itself and trains the enhancer on its slice of each global batch (``train.batch_size x
processes``); only rank 0 writes files, draws the figure and prints.

A TOML file overrides preset fields per section, e.g.::

    n_examples = 8
    [train]
    epochs = 20
    [data]
    test_sources = ["camera", "moon"]

Bad input (an unknown or ill-typed config key, an out-of-range value, a missing or unreadable config, results
file or checkpoint, a bad ``--device``) is reported before any work as one line ``error: ...`` on stderr, exit
status 2; ``--debug`` shows the full traceback instead. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

import data
from data._cli import INPUT_ERRORS as _INPUT_ERRORS
from data._cli import UsageError as _UsageError
from data._cli import command_parser, run_command
from data._cli import one_line as _message

from ._config import StudyConfig, validate_study_config
from ._plot import plot_reconstructions
from ._study import load_results, run_study, summary_table


_ENHANCER_FILE = "enhancer.pt"


def _check_device(device: str) -> None:
    """Raise _UsageError unless ``device`` names a torch device of this machine (:func:`data.validate_device`)."""
    try:
        data.validate_device(device, "--device")
    except (TypeError, ValueError) as exc:
        raise _UsageError(str(exc)) from exc


def _check_checkpoint(path: Path) -> None:
    """Raise _UsageError naming ``path`` if the enhancer checkpoint cannot be read (truncated, say)."""
    try:
        data.load_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:
        raise _UsageError(_message(exc)) from exc


def _load_results(path: Path) -> Any:
    try:
        return load_results(path)
    except _INPUT_ERRORS as exc:
        raise _UsageError(_message(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    p, sub, common = command_parser("python -m decoding", "Decode natural images from simulated retinal spikes.")
    run = sub.add_parser("run", parents=[common],
                         help="simulate, fit the decoders, train the enhancer, evaluate, plot "
                              "(also under torchrun: distributed enhancer training)")
    run.add_argument("--preset", default="demo", choices=StudyConfig.presets(),
                     help="base configuration (default demo)")
    run.add_argument("--config", type=Path, help="TOML file overriding preset fields, by section")
    run.add_argument("--out", type=Path, required=True, help="output folder (results.nc, enhancer.pt, figures)")
    run.add_argument("--resume", action="store_true", help="continue training from OUT/enhancer.pt")
    run.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    run.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    plot = sub.add_parser("plot", parents=[common], help="figure from a results file")
    plot.add_argument("results", type=Path)
    plot.add_argument("--out", type=Path, help="figure path without suffix (default: next to the results)")
    summ = sub.add_parser("summary", parents=[common], help="print the metrics table of a results file")
    summ.add_argument("results", type=Path)
    return p


def _run(args: argparse.Namespace) -> int:
    try:
        overrides = data.load_toml(args.config) if args.config else {}
        config = validate_study_config(StudyConfig.preset(args.preset, **overrides))
    except _INPUT_ERRORS as exc:
        raise _UsageError(_message(exc)) from exc
    _check_device(args.device)
    if args.threads is not None and args.threads < 1:
        raise _UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.resume and (args.out / _ENHANCER_FILE).is_file():  # truncated or foreign: one line naming it, now
        _check_checkpoint(args.out / _ENHANCER_FILE)
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world = data.init_distributed(args.device)  # under torchrun: join the process group
    try:
        results = run_study(config, out_dir=args.out, resume=args.resume, device=args.device,
                            progress=not args.quiet)
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()
    if rank != 0:
        return 0
    figs = plot_reconstructions(results, args.out / "reconstructions")
    print(summary_table(results))
    print(f"test photographs: {', '.join(json.loads(results.attrs['test_sources']))}")
    print(f"wall seconds: {results.attrs['seconds']}")
    print(f"CPU seconds (all threads): {results.attrs['cpu_seconds']}")
    print(f"wrote {args.out / 'results.nc'}, {args.out / _ENHANCER_FILE}, " + ", ".join(map(str, figs)))
    return 0


def _plot(args: argparse.Namespace) -> int:
    results = _load_results(args.results)
    out = args.out or args.results.with_name("reconstructions")
    print("wrote " + ", ".join(map(str, plot_reconstructions(results, out))))
    return 0


def _summary(args: argparse.Namespace) -> int:
    print(summary_table(_load_results(args.results)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, reported as one ``error:`` line on stderr)."""
    args = _parser().parse_args(argv)
    return run_command({"run": _run, "plot": _plot, "summary": _summary}[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
