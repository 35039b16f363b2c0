"""Command line of the main job.

``python -m analyses run [--config CONFIG.toml] [--out DIR]`` runs everything (the embedded default without
``--config``); ``python -m analyses plot RESULTS_DIR`` re-draws every figure and the report from saved results;
``python -m analyses config`` prints the embedded default config as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import data

from ._pipeline import pipeline_config_from_dict, plot, run, validate_pipeline_config, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyses", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the main job (default: the embedded default config)")
    p_run.add_argument("--config", help="TOML file; its tables change only the keys they name")
    p_run.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    p_plot = sub.add_parser("plot", help="re-draw every figure and the report from a results folder")
    p_plot.add_argument("results_dir")
    p_cfg = sub.add_parser("config", help="print the config (default, or --config merged) as JSON")
    p_cfg.add_argument("--config")
    args = parser.parse_args(argv)
    try:
        if args.command in ("run", "config"):
            config = pipeline_config_from_dict(data.load_toml(args.config) if args.config else {})
            validate_pipeline_config(config)
            if args.command == "config":
                print(json.dumps(dataclasses.asdict(config), indent=2, default=list))
                return 0
            run(config, args.out)
        else:
            for path in plot(args.results_dir):
                print(path)
            print(write_report(args.results_dir))
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
