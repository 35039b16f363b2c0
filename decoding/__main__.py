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
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import data

from ._config import PRESETS, default_config
from ._plot import plot_reconstructions
from ._study import load_results, run_study, summary_table


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m decoding",
                                description="Decode natural images from simulated retinal spikes.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="simulate, fit the decoders, train the enhancer, evaluate, plot "
                                     "(also under torchrun: distributed enhancer training)")
    run.add_argument("--preset", default="demo", choices=sorted(PRESETS), help="base configuration (default demo)")
    run.add_argument("--config", type=Path, help="TOML file overriding preset fields, by section")
    run.add_argument("--out", type=Path, required=True, help="output folder (results.nc, enhancer.pt, figures)")
    run.add_argument("--resume", action="store_true", help="continue training from OUT/enhancer.pt")
    run.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    run.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    plot = sub.add_parser("plot", help="figure from a results file")
    plot.add_argument("results", type=Path)
    plot.add_argument("--out", type=Path, help="figure path without suffix (default: next to the results)")
    summ = sub.add_parser("summary", help="print the metrics table of a results file")
    summ.add_argument("results", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        overrides = data.load_toml(args.config) if args.config else {}
        config = default_config(args.preset, **overrides)
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
        print(f"wrote {args.out / 'results.nc'}, {args.out / 'enhancer.pt'}, " + ", ".join(map(str, figs)))
    elif args.command == "plot":
        out = args.out or args.results.with_name("reconstructions")
        print("wrote " + ", ".join(map(str, plot_reconstructions(load_results(args.results), out))))
    else:
        print(summary_table(load_results(args.results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
