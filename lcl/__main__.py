"""Command line: ``python -m lcl train --config CONFIG.toml --out DIR [--resume]``, ``filters``, ``v2net``,
``export-brainscore RUN --out PLUGIN`` (a self-contained Brain-Score model plugin of a trained run).

Under ``torchrun --nproc_per_node=N -m lcl train ...`` every process joins the process group (gloo on CPU, NCCL on
GPU) and trains with DistributedDataParallel; only rank 0 writes files.

Bad input (an unknown or ill-typed config key, an out-of-range value, a missing or unreadable config file or
checkpoint, a bad ``--device``) is reported before any work as one line ``error: ...`` on stderr, exit status 2;
``--debug`` shows the full traceback instead. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from data._cli import INPUT_ERRORS as _INPUT_ERRORS
from data._cli import UsageError as _UsageError
from data._cli import command_parser, run_command
from data._cli import one_line as _message


def _parser() -> argparse.ArgumentParser:
    p, sub, common = command_parser("python -m lcl", "Layerwise complexity-matched learning (LCL).")

    t = sub.add_parser("train", parents=[common],
                       help="train the V1/V2 stages (layerwise, or an ablation set in the config)")
    t.add_argument("--config", type=Path, help="TOML file ([model], [deform], [optim], [train], [data]); "
                   "default: the built-in defaults")
    t.add_argument("--demo", action="store_true", help="start from the small demo config instead of the defaults")
    t.add_argument("--out", type=Path, default=Path("outputs/lcl"), help="run folder (checkpoint, log, model)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.add_argument("--device", help="override train.device (cpu, cuda, cuda:1, ...)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--figure", action="store_true", help="also draw the stage-1 filters into OUT/filters.png/.pdf")

    f = sub.add_parser("filters", parents=[common],
                       help="figure of the stage-1 filters of a trained model (PNG + PDF)")
    f.add_argument("run", type=Path, help="run folder, model.pt or checkpoint.pt")
    f.add_argument("--out", type=Path, help="figure path without suffix (default: RUN/filters)")

    v = sub.add_parser("v2net", parents=[common],
                       help="LCL-V2Net: recognition back ends on the frozen front end vs pixels, "
                            "evaluated under corruptions")
    v.add_argument("run", type=Path, help="trained LCL run folder or model.pt")
    v.add_argument("--config", type=Path, help="TOML file with [backend] and [recognition] tables")
    v.add_argument("--demo", action="store_true", help="small demo recognition config")
    v.add_argument("--out", type=Path, help="output folder (default: RUN/v2net)")
    v.add_argument("--resume", action="store_true", help="continue each front end from OUT/v2net_<front end>.pt")
    v.add_argument("--device", help="override recognition.device")

    e = sub.add_parser("export-brainscore", parents=[common],
                       help="write a self-contained Brain-Score model plugin (torch-only model.py, weights, "
                            "ModelCommitment with V1 -> stage1, V2 -> stage2) of a trained run")
    e.add_argument("run", type=Path, help="trained LCL run folder (its model.pt, else checkpoint.pt)")
    e.add_argument("--out", type=Path, required=True,
                   help="plugin folder to create; its name is the plugin's package name under "
                        "brainscore_vision/models")
    e.add_argument("--identifier", help="Brain-Score model identifier (default: the run folder's name, with an "
                   "lcl_ prefix unless it starts with lcl)")
    e.add_argument("--image-size", metavar="PX", help="side of the model's input images in pixels "
                   "(default: the run's data.image_size)")
    e.add_argument("--visual-degrees", metavar="DEG", default="8",
                   help="visual angle the input images span (default: 8)")
    e.add_argument("--force", action="store_true", help="replace OUT if it exists and is not empty")
    e.add_argument("--allow-incomplete", action="store_true",
                   help="export a run whose training has not finished")
    return p


def _check_device(device: str, what: str = "device") -> None:
    """Raise _UsageError unless ``device`` names a torch device of this machine (:func:`data.validate_device`)."""
    import data

    try:
        data.validate_device(device, what)
    except (TypeError, ValueError) as exc:
        raise _UsageError(str(exc)) from exc


def _checkpoint_file(run: Path) -> Path:
    """The file ``lcl.load_checkpoint(run)`` reads (a folder means its model.pt, else its checkpoint.pt)."""
    from ._train import CHECKPOINT, MODEL_FILE

    if run.is_dir():
        return run / MODEL_FILE if (run / MODEL_FILE).is_file() else run / CHECKPOINT
    return run


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """Load an LCL checkpoint, turning a missing, truncated or foreign file into a _UsageError naming it."""
    import lcl

    try:
        return lcl.load_checkpoint(path)
    except (FileNotFoundError, ValueError) as exc:
        raise _UsageError(_message(exc)) from exc


def _config(cls: Any, path: Path | None, demo: bool) -> Any:
    """``cls``'s defaults or its demo preset, with the fields a TOML file at ``path`` (if any) changes."""
    if path is None:
        return cls.preset("demo") if demo else cls()
    if demo:  # the file changes the demo preset's fields
        import data

        return cls.preset("demo", **data.load_toml(path))
    return cls.load(path)


def _train_config(args: argparse.Namespace):
    import lcl

    config = _config(lcl.LCLConfig, args.config, args.demo)
    overrides = {}
    if args.device:
        overrides["device"] = args.device
    if args.no_progress:
        overrides["progress"] = False
    if overrides:
        config = config.replace(train=overrides)
    return lcl.validate_config(config)


def _train(args: argparse.Namespace) -> int:
    import lcl

    try:
        config = _train_config(args)
    except _INPUT_ERRORS as exc:
        raise _UsageError(_message(exc)) from exc
    _check_device(config.train.device, "train.device")
    from ._train import CHECKPOINT

    if args.resume and (args.out / CHECKPOINT).is_file():  # truncated or foreign: one line naming it, before work
        _read_checkpoint(args.out / CHECKPOINT)
    rank, world = lcl.init_distributed(config.train.device)  # under torchrun: join the process group
    try:
        try:
            trainer = lcl.Trainer(config, args.out, resume=args.resume)
        except (ValueError, FileNotFoundError) as exc:
            raise _UsageError(_message(exc)) from exc
        model = trainer.run()
    finally:
        if world > 1:
            import torch

            torch.distributed.destroy_process_group()
    if rank != 0:
        return 0
    if args.figure:
        lcl.plot_filters(model, args.out / "filters")
    print(json.dumps({"out": str(args.out), "receptive_field": [model.receptive_field(1), model.receptive_field(2)]}))
    return 0


def _run_model(run: Path) -> Any:
    """The trained model of the run folder or checkpoint ``run``; a bad file is a usage error naming it."""
    import lcl

    _read_checkpoint(_checkpoint_file(run))
    try:
        return lcl.load_model(run)
    except _INPUT_ERRORS as exc:
        raise _UsageError(f"{_checkpoint_file(run)}: {_message(exc)}") from exc


def _next_to(run: Path, name: str) -> Path:
    """The default output ``name`` inside the run folder (or next to the checkpoint file) ``run``."""
    return (run if run.is_dir() else run.parent) / name


def _filters(args: argparse.Namespace) -> int:
    import lcl

    model = _run_model(args.run)
    target = args.out or _next_to(args.run, "filters")
    for path in lcl.plot_filters(model, target):
        print(path)
    return 0


def _v2net(args: argparse.Namespace) -> int:
    import lcl

    if args.device:
        _check_device(args.device, "--device")
    try:
        recognition = _config(lcl.RecognitionConfig, args.config, args.demo)
        if args.device:
            recognition = recognition.replace(device=args.device)
    except _INPUT_ERRORS as exc:
        raise _UsageError(_message(exc)) from exc
    _check_device(recognition.device, "recognition.device")
    front = _run_model(args.run)
    out = args.out or _next_to(args.run, "v2net")
    results = lcl.corruption_benchmark(front, recognition.backend, recognition, out, resume=args.resume)
    print(results["accuracy"].sel(severity=0).to_series().to_string())
    return 0


def _number(text: str | None, kind: type, flag: str) -> Any:
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError as exc:
        raise _UsageError(f"{flag} must be {'an integer' if kind is int else 'a number'}, got {text!r}") from exc


def _export_brainscore(args: argparse.Namespace) -> int:
    import lcl

    try:
        out = lcl.export_brainscore(args.run, args.out, identifier=args.identifier,
                                    image_size=_number(args.image_size, int, "--image-size"),
                                    visual_degrees=_number(args.visual_degrees, float, "--visual-degrees"),
                                    force=args.force, allow_incomplete=args.allow_incomplete)
    except ValueError as exc:
        raise _UsageError(_message(exc)) from exc
    meta = json.loads((out / "lcl_export.json").read_text())
    print(json.dumps({"out": str(out), "identifier": meta["identifier"], "image_size": meta["image_size"],
                      "visual_degrees": meta["visual_degrees"], "source": meta["source"]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, reported as one ``error:`` line on stderr)."""
    args = _parser().parse_args(argv)
    commands = {"train": _train, "filters": _filters, "v2net": _v2net, "export-brainscore": _export_brainscore}
    return run_command(commands[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
