"""Command line of the main job: ``python -m analyses run [--config CONFIG.toml] [--out DIR]`` and
``python -m analyses plot RESULTS_DIR``."""

from __future__ import annotations

import argparse
import sys

import data

from ._pipeline import PipelineConfig, plot, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyses", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the main job (default: the embedded default config)")
    p_run.add_argument("--config", help="TOML config; omitted keys take the embedded defaults")
    p_run.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    p_plot = sub.add_parser("plot", help="re-draw every figure from a results folder")
    p_plot.add_argument("results_dir")
    args = parser.parse_args(argv)
    if args.command == "run":
        values = data.load_toml(args.config) if args.config else {}
        config = data.config_from_dict(PipelineConfig, values)
        run(config, args.out)
    else:
        for path in plot(args.results_dir):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
