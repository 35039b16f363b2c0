"""Command line: ``python -m lcl train --config CONFIG.toml --out DIR [--resume]``, ``filters``, ``v2net``.

Under ``torchrun --nproc_per_node=N -m lcl train ...`` every process joins the process group (gloo on CPU, NCCL on
GPU) and trains with DistributedDataParallel; only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lcl", description="Layerwise complexity-matched learning (LCL).")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the V1/V2 stages (layerwise, or an ablation set in the config)")
    t.add_argument("--config", type=Path, help="TOML file ([model], [deform], [optim], [train], [data]); "
                   "default: the built-in defaults")
    t.add_argument("--demo", action="store_true", help="start from the small demo config instead of the defaults")
    t.add_argument("--out", type=Path, default=Path("outputs/lcl"), help="run folder (checkpoint, log, model)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.add_argument("--device", help="override train.device (cpu, cuda, cuda:1, ...)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--figure", action="store_true", help="also draw the stage-1 filters into OUT/filters.png/.pdf")

    f = sub.add_parser("filters", help="figure of the stage-1 filters of a trained model (PNG + PDF)")
    f.add_argument("run", type=Path, help="run folder, model.pt or checkpoint.pt")
    f.add_argument("--out", type=Path, help="figure path without suffix (default: RUN/filters)")

    v = sub.add_parser("v2net", help="LCL-V2Net: recognition back ends on the frozen front end vs pixels, "
                       "evaluated under corruptions")
    v.add_argument("run", type=Path, help="trained LCL run folder or model.pt")
    v.add_argument("--config", type=Path, help="TOML file with [backend] and [recognition] tables")
    v.add_argument("--demo", action="store_true", help="small demo recognition config")
    v.add_argument("--out", type=Path, help="output folder (default: RUN/v2net)")
    v.add_argument("--device", help="override recognition.device")
    return p


class _UsageError(Exception):
    """A bad config or path, reported in one line (exit status 2) before any heavy work."""


def _train_config(args: argparse.Namespace):
    import lcl

    if args.config is not None:
        import data

        values = data.load_toml(args.config)
        base = lcl.demo_config() if args.demo else lcl.LCLConfig()
        config = base.replace(**values) if values else base
    else:
        config = lcl.demo_config() if args.demo else lcl.LCLConfig()
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
    except (ValueError, FileNotFoundError) as exc:
        raise _UsageError(str(exc)) from exc
    rank, world = lcl.init_distributed(config.train.device)  # under torchrun: join the process group
    try:
        try:
            trainer = lcl.Trainer(config, args.out, resume=args.resume)
        except (ValueError, FileNotFoundError) as exc:
            raise _UsageError(str(exc)) from exc
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


def _filters(args: argparse.Namespace) -> int:
    import lcl

    try:
        model = lcl.load_model(args.run)
    except (ValueError, FileNotFoundError) as exc:
        raise _UsageError(str(exc)) from exc
    target = args.out or ((args.run if args.run.is_dir() else args.run.parent) / "filters")
    for path in lcl.plot_filters(model, target):
        print(path)
    return 0


def _v2net(args: argparse.Namespace) -> int:
    import lcl

    try:
        front = lcl.load_model(args.run)
        backend, recognition = lcl.load_recognition_config(args.config, demo=args.demo)
        if args.device:
            recognition = dataclasses.replace(recognition, device=args.device)
    except (ValueError, FileNotFoundError) as exc:
        raise _UsageError(str(exc)) from exc
    out = args.out or ((args.run if args.run.is_dir() else args.run.parent) / "v2net")
    results = lcl.corruption_benchmark(front, backend, recognition, out)
    print(results["accuracy"].sel(severity=0).to_series().to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"train": _train, "filters": _filters, "v2net": _v2net}[args.command](args)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
