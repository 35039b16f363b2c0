"""Command line of the main job.

``python -m analyses run [--config CONFIG.toml] [--out DIR] [--device cpu|cuda|cuda:N]`` runs everything (the
embedded default without ``--config``); ``python -m analyses plot RESULTS_DIR`` re-draws every figure and the report
from saved results (found by name in its ``manifest.json``); ``python -m analyses config`` prints the embedded
default config as JSON.

Bad input (an unknown or ill-typed config key, an out-of-range value, a missing or unreadable config file, a
damaged results folder) is reported as one line ``error: ...`` on stderr, exit status 2, before any work;
``--debug`` shows the full traceback instead. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import data

from ._pipeline_config import PipelineConfig, validate_pipeline_config
from ._pipeline_figures import plot
from ._report import write_report
from ._run import run

from data._cli import INPUT_ERRORS as _INPUT_ERRORS
from data._cli import UsageError as _UsageError
from data._cli import command_parser, run_command
from data._cli import one_line as _message


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin in (tuple, list) or hint in (tuple, list):
        items = [a for a in args if a is not Ellipsis]
        return "a list" + (f" of {_describe(items[0]).removeprefix('a ').removeprefix('an ')}s"
                           if len(set(items)) == 1 else "")
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, "a table" if origin is dict or hint is dict or dataclasses.is_dataclass(hint) else str(hint))


def _fits(hint: Any, value: Any) -> bool:
    """Whether a TOML value can be a value of the annotated type (unknown annotations accept anything)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(a, value) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        items = [a for a in args if a is not Ellipsis]
        if len(items) == 1 or (args and args[-1] is Ellipsis):
            return all(_fits(items[0], v) for v in value)
        return True  # fixed-length tuples: the component checks the length and items
    if origin is dict or hint is dict or dataclasses.is_dataclass(hint):
        return isinstance(value, Mapping)
    return True


def _check_types(values: Mapping[str, Any], cls: type, where: str = "") -> None:
    """Reject a TOML value whose type cannot fit its config field, naming ``[table] key`` (before any work).

    Unknown keys are left to the config's own check, which names them with the valid keys.
    """
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):
        return
    for key, value in values.items():
        if key not in hints:
            continue
        hint = hints[key]
        if not _fits(hint, value):
            raise _UsageError(f"{where}{key} must be {_describe(hint)}, got {value!r} ({type(value).__name__})")
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            table = where.removesuffix(" ").strip("[]")
            _check_types(value, hint, f"[{table + '.' if table else ''}{key}] ")


def _config(path: str | None, device: str | None = None):
    try:
        values = data.load_toml(path) if path else {}
    except _INPUT_ERRORS as exc:
        raise _UsageError(_message(exc)) from exc
    _check_types(values, PipelineConfig)
    try:
        config = PipelineConfig.from_dict(values)
        if device is not None:
            config = config.replace(device=device)
        return validate_pipeline_config(config)
    except _INPUT_ERRORS as exc:
        raise _UsageError(_message(exc)) from exc


def _check_results(results_dir: Path) -> None:
    """Read the JSON files and checkpoints that ``plot`` and ``write_report`` read, naming any that is damaged.

    (The ``.nc`` files need no check: ``data.load`` names an unreadable one itself.)
    """
    if not results_dir.is_dir():
        raise _UsageError(f"no such results folder: {results_dir}")
    for path in [results_dir / "config.json", results_dir / "manifest.json",
                 *sorted((results_dir / "results").glob("*.json"))]:
        if path.is_file():
            try:
                json.loads(path.read_text())
            except (ValueError, OSError) as exc:
                raise _UsageError(f"cannot read {path}: {_message(exc)}") from exc
    for path in sorted((results_dir / "models").glob("*/log.jsonl")):
        try:
            for line in path.read_text().splitlines():
                if line.strip():
                    json.loads(line)
        except (ValueError, OSError) as exc:
            raise _UsageError(f"cannot read {path}: {_message(exc)}") from exc
    models = sorted((results_dir / "models").glob("*/model.pt"))
    if models:
        import torch

        for path in models:
            try:
                torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:  # noqa: BLE001 - whatever unpickling this file raises, the fault is the file's
                raise _UsageError(f"cannot read the checkpoint {path} (truncated or not a torch file?): "
                                  f"{type(exc).__name__}: {_message(exc)}") from exc


def _plot(results_dir: str) -> None:
    folder = Path(results_dir)
    _check_results(folder)
    try:
        written = plot(folder)
        report = write_report(folder)
    except _INPUT_ERRORS as exc:  # a damaged or incomplete results file (data.load names an unreadable one)
        raise _UsageError(f"{folder}: {_message(exc)}" if isinstance(exc, KeyError) else _message(exc)) from exc
    for path in written:
        print(path)
    print(report)


def _command(args: argparse.Namespace) -> int:
    if args.command == "plot":
        _plot(args.results_dir)
        return 0
    config = _config(args.config, getattr(args, "device", None))
    if args.command == "config":
        print(json.dumps(config.to_dict(), indent=2, default=list))
        return 0
    try:
        run(config, args.out)
    except (ValueError, FileNotFoundError) as exc:  # input problems only found while running (as before)
        raise _UsageError(_message(exc)) from exc
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, reported as one ``error:`` line on stderr)."""
    parser, sub, common = command_parser("python -m analyses", __doc__,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p_run = sub.add_parser("run", parents=[common], help="run the main job (default: the embedded default config)")
    p_run.add_argument("--config", help="TOML file; its tables change only the keys they name")
    p_run.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    p_run.add_argument("--device", help="torch device of the run: cpu, cuda or cuda:N (overrides the config's device)")
    p_plot = sub.add_parser("plot", parents=[common],
                            help="re-draw every figure and the report from a results folder")
    p_plot.add_argument("results_dir")
    p_cfg = sub.add_parser("config", parents=[common], help="print the config (default, or --config merged) as JSON")
    p_cfg.add_argument("--config")
    return run_command(_command, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
