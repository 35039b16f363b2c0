"""LCL benchmarks.

1. Training-step overhead (issue 4, acceptance 6): the time of one full training step (patch sampling, two
   deformed views, forward, pooled loss, backward, AdamW step) against the raw forward + backward of the same stage
   on the same number of undeformed images with a trivial loss. Target: overhead <= 30 %.
2. Throughput (issue 7): patches per second of the trainer with 1 and 2 processes on the CPU (torchrun-style
   DistributedDataParallel, gloo), and on a GPU when one is present.

Timings are medians over interleaved repeats; on a shared machine they are noisy (see the printed load average).

Usage: ``python benchmarks/lcl_bench.py [--config demo|default] [--repeats N] [--threads T] [--skip-throughput]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any
from pathlib import Path

import torch
from _machine import machine_line

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lcl  # noqa: E402
from lcl._train import channels_last  # noqa: E402


def _config(name: str, device: str) -> lcl.LCLConfig:
    cfg = lcl.LCLConfig.preset("demo") if name == "demo" else lcl.LCLConfig()
    return cfg.replace(train={"progress": False, "device": device})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def overhead(config: lcl.LCLConfig, repeats: int) -> list[dict]:
    rows = []
    trainer = lcl.Trainer(config)
    dev = trainer.device
    for phase_index, phase in enumerate(trainer.phases):
        trainer.phase_index, trainer.step, trainer.optimizer = phase_index, 0, None
        trainer._start_phase()
        b = config.train.batch_size
        # same number of images as the two views of b patches, in the trainer's (channels-last) memory format
        raw_input = channels_last(trainer.sample_patches(2 * b))
        stage = trainer.model.stages[phase.stage - 1]
        params = [p for p in trainer.model.parameters() if p.requires_grad]

        def raw(raw_input: torch.Tensor = raw_input, phase: Any = phase, stage: torch.nn.Module = stage,
                params: list = params) -> None:
            h = raw_input
            for s in trainer.model.stages[:phase.stage - 1]:
                with torch.no_grad():
                    h = s(h)
            y = stage(h)
            y.sum().backward()
            for p in params:
                p.grad = None

        def step() -> None:
            trainer.train_step()

        for _ in range(3):  # warm-up
            raw()
            step()
        t_raw, t_step = [], []
        for _ in range(repeats):
            _sync(dev)
            t0 = time.perf_counter()
            raw()
            _sync(dev)
            t1 = time.perf_counter()
            step()
            _sync(dev)
            t2 = time.perf_counter()
            t_raw.append(t1 - t0)
            t_step.append(t2 - t1)
        r, s = statistics.median(t_raw), statistics.median(t_step)
        rows.append({"phase": phase.name, "raw_s": r, "step_s": s, "overhead": s / r - 1})
    return rows


def _throughput_worker(rank: int, world: int, port: int, cfg_dict: dict, steps: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        trainer = lcl.Trainer(lcl.LCLConfig.from_dict(cfg_dict))
        trainer.train_step()
        torch.distributed.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        torch.distributed.barrier()
        if rank == 0:
            queue.put(time.perf_counter() - t0)
    finally:
        torch.distributed.destroy_process_group()


def throughput_cpu(config: lcl.LCLConfig, world: int, steps: int) -> float:
    """Patches per second (all processes together) for the stage-1 phase."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = 29500 + (os.getpid() % 1000)
    procs = [ctx.Process(target=_throughput_worker, args=(r, world, port, config.to_dict(), steps, queue))
             for r in range(world)]
    for p in procs:
        p.start()
    elapsed = queue.get(timeout=1800)
    for p in procs:
        p.join()
    return steps * config.train.batch_size * world / elapsed


def throughput_single(config: lcl.LCLConfig, steps: int) -> float:
    trainer = lcl.Trainer(config)
    trainer.train_step()
    _sync(trainer.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    _sync(trainer.device)
    return steps * config.train.batch_size / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=["demo", "default"], default="demo")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (CPU)")
    ap.add_argument("--steps", type=int, default=10, help="steps per throughput measurement")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"lcl benchmark: config={args.config}, {machine_line()} (timings are noisy on a busy machine)")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    worst = 0.0
    for device in devices:
        cfg = _config(args.config, device)
        print(f"\n[{device}] training step vs raw stage forward+backward (batch {cfg.train.batch_size} patches "
              f"= {2 * cfg.train.batch_size} views of {cfg.train.patch_size} px; median of {args.repeats})")
        for row in overhead(cfg, args.repeats):
            print(f"  {row['phase']:<7} raw {1e3 * row['raw_s']:8.1f} ms   step {1e3 * row['step_s']:8.1f} ms   "
                  f"overhead {100 * row['overhead']:+6.1f} %  {'OK' if row['overhead'] <= 0.30 else 'ABOVE 30 %'}")
            worst = max(worst, row["overhead"])
    if not args.skip_throughput:
        cfg = _config(args.config, "cpu")
        cfg = cfg.replace(train={"steps": (cfg.train.steps[0], 0)})
        print(f"\n[cpu] throughput, stage 1, {cfg.train.batch_size} patches per process per step, "
              f"{args.threads} thread(s) per process")
        single = throughput_single(cfg, args.steps)
        print(f"  1 process (no DDP)   {single:8.1f} patches/s")
        for world in (1, 2):
            ips = throughput_cpu(cfg, world, args.steps)
            print(f"  {world} process(es), DDP {ips:8.1f} patches/s  (global batch {world * cfg.train.batch_size})")
        if torch.cuda.is_available():
            gcfg = _config(args.config, "cuda").replace(train={"steps": (cfg.train.steps[0], 0)})
            print(f"\n[cuda] throughput, stage 1: {throughput_single(gcfg, 5 * args.steps):8.1f} patches/s")
            bcfg = gcfg.replace(train={"precision": "bfloat16"})
            print(f"[cuda] throughput, stage 1, bf16 autocast: {throughput_single(bcfg, 5 * args.steps):8.1f} "
                  "patches/s")
    print(f"\nworst overhead {100 * worst:+.1f} % (target <= 30 %)")


if __name__ == "__main__":
    main()
