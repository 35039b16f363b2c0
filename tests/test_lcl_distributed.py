"""lcl scale-out (issue 7): torchrun + DDP on CPU (gloo), kill and resume, streaming a large folder in bounded
memory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import lcl
from _torchrun import REPO, env, kill_when, launch


TINY = """
[model.stage1]
channels = 4
[model.stage2]
channels = 6
bias = {bias}
[optim]
warmup_steps = 2
[train]
steps = [{s1}, {s2}]
batch_size = {batch}
patch_size = 48
checkpoint_every = {ckpt}
log_every = 1
progress = false
[data]
image_size = 128
"""


def _write(path: Path, batch: int, s1: int = 3, s2: int = 3, ckpt: int = 2, bias: bool = True) -> Path:
    path.write_text(TINY.format(batch=batch, s1=s1, s2=s2, ckpt=ckpt, bias=str(bias).lower()))
    return path


def _torchrun(nproc: int, config: Path, out: Path, *extra: str, background: bool = False):
    return launch(nproc, "lcl", "train", "--demo", "--config", config, "--out", out, *extra, background=background)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "model.pt", weights_only=False)["model"]


def test_two_gloo_processes_equal_single_process_with_same_global_batch(tmp_path):
    # No stage-2 bias here: with the centred loss its true gradient is nearly zero and float32 rounding decides
    # its sign, so Adam's normalised steps on it differ between any two float orderings (also on one process).
    r = _torchrun(2, _write(tmp_path / "ddp.toml", batch=8, bias=False), tmp_path / "ddp")
    assert r.returncode == 0, r.stdout + r.stderr
    one = _write(tmp_path / "one.toml", batch=16, bias=False)
    single_cfg = lcl.LCLConfig.preset("demo").replace(**__import__("data").load_toml(one))
    single = lcl.Trainer(single_cfg, tmp_path / "one")
    single.run()
    ddp = _weights(tmp_path / "ddp")
    torch.manual_seed(__import__("data").derive_seed(single_cfg.seed, "weights"))  # the trainer's initial weights
    init = lcl.V1V2(single_cfg.model).state_dict()
    for k, v in single.model.state_dict().items():
        # float tolerance: convolutions on 8 vs 16 images and the gloo sum round differently, and Adam divides by
        # the root of tiny second moments; the difference must stay far below how far training moved the weights
        moved = (v - init[k]).abs().max().item()
        diff = (ddp[k] - v).abs().max().item()
        assert moved > 1e-3, k  # training did move every tensor: the comparison is not trivial
        assert diff <= 2e-3 * moved, (k, diff, moved)
    # only rank 0 wrote files, and the log records the global loss once per step
    log = (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()
    assert len(log) == 6
    losses_ddp = [__import__("json").loads(line)["loss"] for line in log]
    # training trajectories: no bound from the reductions' size (rounding differences carried through Adam steps);
    # empirical (measured: loss 4.2e-7 absolute, weights 7e-5 of their movement -- margins of 25x and more)
    assert np.allclose(losses_ddp, [r["loss"] for r in single.log], rtol=1e-4, atol=1e-6)


def test_killed_distributed_run_resumes_to_the_uninterrupted_weights(tmp_path):
    cfg = _write(tmp_path / "c.toml", batch=8, s1=20, s2=20, ckpt=4)
    full = _torchrun(2, cfg, tmp_path / "full")
    assert full.returncode == 0, full.stdout + full.stderr
    out = tmp_path / "cut"
    proc = _torchrun(2, cfg, out, background=True)
    ckpt = out / "checkpoint.pt"
    # kill inside stage 2
    kill_when(proc, lambda: ckpt.is_file() and torch.load(ckpt, weights_only=True)["phase_index"] == 1)
    state = torch.load(ckpt, weights_only=True)
    assert not state["complete"] and not (out / "model.pt").exists()
    resumed = _torchrun(2, cfg, out, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    a, b = _weights(tmp_path / "full"), _weights(out)
    for k in a:  # exact: the same processes replay the same float operations in the same order on one machine
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------------------------------------ streaming
def _make_folder(root: Path, n: int, size: int = 96) -> Path:
    from skimage.io import imsave

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        sub = root / f"class{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        f1, f2, ph = rng.uniform(1, 6, 3)
        img = 0.5 + 0.25 * np.sin(2 * np.pi * (f1 * xx + f2 * yy) + ph) + 0.1 * rng.standard_normal((size, size))
        imsave(sub / f"img{i:04d}.png", (np.clip(img, 0, 1) * 255).astype(np.uint8), check_contrast=False)
    return root


@pytest.fixture(scope="module")
def thousand_images(tmp_path_factory):
    return _make_folder(tmp_path_factory.mktemp("folder"), 1000)


def test_streaming_thousand_images_uses_bounded_memory(thousand_images, tmp_path):
    script = textwrap.dedent(f"""
        import resource, sys, torch, numpy as np
        torch.set_num_threads(1)
        import lcl
        def rss_mb():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * resource.getpagesize() / 2**20
        d = lcl.DataConfig(source="folder", folder={str(thousand_images)!r}, image_size=256, streaming=True,
                           patches_per_image=2)
        stream = lcl.patch_stream(d, lcl.TrainConfig(batch_size=20, patch_size=64))
        next(stream)
        base, peak = rss_mb(), 0.0
        for _ in range(110):  # 2200 patches: every one of the 1000 files read, one epoch and more
            next(stream)
            peak = max(peak, rss_mb())
        print(base, peak, stream.dataset.files.__len__())
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=env(),
                       timeout=600)
    assert r.returncode == 0, r.stderr
    base, peak, n = map(float, r.stdout.split())
    assert n == 1000
    decoded_folder_mb = 1000 * 256 * 256 * 4 / 2**20  # 250 MB if the folder were loaded at image_size
    assert peak - base < 40, (base, peak)  # bounded: a few images and batches, not the folder
    assert peak - base < decoded_folder_mb / 5


def test_streaming_workers_shard_files_and_resume_exactly(tmp_path):
    root = _make_folder(tmp_path / "f", 12, size=64)
    files = lcl.list_images(root)
    assert len(files) == 12

    def stream(rank=0, world=1, workers=2):
        ds = lcl.FolderPatches(root, files, image_size=64, patch_size=16, patches_per_image=3, batch_size=4,
                               seed=1, rank=rank, world_size=world)
        return lcl.PatchStream(ds, batch_size=4, workers=workers)

    s = stream()
    batches = [next(s) for _ in range(7)]
    for start in (4, 5):  # resume on either worker's turn
        again = stream()
        again.load_state_dict({"batches": start})
        for k in range(start, 7):
            assert torch.equal(next(again), batches[k]), (start, k)
    # the same stream without worker processes is a different interleaving but the same per-worker sequences
    ds = lcl.FolderPatches(root, files, image_size=64, patch_size=16, patches_per_image=3, batch_size=4, seed=1)
    w0 = list(__import__("itertools").islice(ds.patches(0, 2), 8))
    assert torch.equal(torch.stack(w0[:4]), batches[0]) and torch.equal(torch.stack(w0[4:8]), batches[2])
    # processes read disjoint files
    a = lcl.FolderPatches(root, files, image_size=64, patch_size=16, patches_per_image=1, batch_size=1,
                          rank=0, world_size=2)
    b = lcl.FolderPatches(root, files, image_size=64, patch_size=16, patches_per_image=1, batch_size=1,
                          rank=1, world_size=2)
    assert set(a.files).isdisjoint(b.files) and len(a.files) + len(b.files) == 12


def test_trainer_streams_a_folder_and_resumes_bit_identically(tmp_path):
    root = _make_folder(tmp_path / "f", 16, size=64)
    cfg = lcl.LCLConfig.preset(
        "demo",
        model={"stage1": {"channels": 4}, "stage2": {"channels": 4}},
        train={"steps": (3, 3), "batch_size": 4, "patch_size": 48, "checkpoint_every": 2, "progress": False},
        data={"source": "folder", "folder": str(root), "image_size": 64, "streaming": True, "workers": 2,
              "patches_per_image": 2},
    )
    full = lcl.Trainer(cfg, tmp_path / "full")
    full.run()
    lcl.Trainer(cfg, tmp_path / "cut").run(until=5)
    resumed = lcl.Trainer(cfg, tmp_path / "cut", resume=True)
    resumed.run()
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_gpu_only_options_rejected_on_cpu():
    with pytest.raises(ValueError, match="GPU options"):
        lcl.validate_config(lcl.LCLConfig.preset("demo", train={"precision": "bfloat16"}))
    with pytest.raises(ValueError, match="GPU options"):
        lcl.validate_config(lcl.LCLConfig.preset("demo", train={"compile": True}))
    with pytest.raises(ValueError, match="streaming needs source='folder'"):
        lcl.DataConfig(streaming=True)
    assert lcl.OptimConfig(lr=1e-3, lr_scaling="sqrt", reference_batch=64).scaled_lr(256) == pytest.approx(2e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_and_compile_on_gpu(tmp_path):
    cfg = lcl.LCLConfig.preset("demo", model={"stage1": {"channels": 8}, "stage2": {"channels": 8}},
                               train={"steps": (3, 3), "batch_size": 8, "device": "cuda", "precision": "bfloat16",
                                      "compile": True, "progress": False})
    model = lcl.train(cfg, tmp_path)
    assert torch.isfinite(model.stage2.conv.weight).all()


# ------------------------------------------------------------------------------------ bf16 and compile on a CPU
# validate_config refuses precision="bfloat16" and compile=true with device="cpu" (GPU options, see above); the
# trainer's code paths themselves are checked on a CPU here by swapping the config after construction.
@pytest.fixture
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cpu_trainer(stage: int) -> tuple[lcl.Trainer, lcl.LCLConfig, torch.Tensor]:
    cfg = lcl.LCLConfig.preset("demo", model={"stage1": {"channels": 4}, "stage2": {"channels": 4}},
                               train={"steps": (2, 2), "batch_size": 16, "patch_size": 48, "progress": False})
    trainer = lcl.Trainer(cfg)
    trainer.phase_index = stage - 1
    trainer._start_phase()
    return trainer, cfg, trainer.make_views(trainer.sample_patches(16))


def _loss_with(trainer: lcl.Trainer, config: lcl.LCLConfig, views: torch.Tensor) -> torch.Tensor:
    trainer.config = config
    trainer._start_phase()  # re-wraps the phase's forward (torch.compile) and rebuilds the optimizer
    return trainer.compute_loss(views)


def test_bf16_autocast_on_cpu_stage1_loss_close_to_float32(one_torch_thread):
    trainer, cfg, views = _cpu_trainer(1)
    ref = _loss_with(trainer, cfg, views).item()
    low = _loss_with(trainer, cfg.replace(train={"precision": "bfloat16"}), views).item()
    # bfloat16 rounds the convolutions' inputs to 8 significant bits (0.4 %); the loss lies in [-1, 1 + lambda] and
    # is a difference of two terms, so the tolerance is absolute: 0.02 (measured: at most 0.006 over 6 batches).
    assert abs(low - ref) < 0.02, (low, ref)


def test_bf16_autocast_on_cpu_stage2_loss_close_to_float32(one_torch_thread):
    # Stage 2 centres its input (StageConfig.center_input): before that, the all-positive stage-1 responses gave
    # the untrained stage-2 features a common offset, their variation across patches was about 0.1 % of their
    # mean, below bfloat16's 0.4 % resolution, and the centred loss was rounding noise (off by 0.1-0.5; a strict
    # xfail until then). The gap depends on the draw: the 4e-4 once recorded here was one lucky seed. Measured
    # (issue #17, when the root seed replaced train.seed) over 16 draws, 8 per seeding scheme, of this untrained
    # 4-channel stage 2: |bf16 - fp32| from 1e-4 to 0.088, median 0.017 (losses -0.06 to -0.30); at the root seed
    # 0 it is 0.057 (before: 1e-4 at train.seed 0). The tolerance is 0.1, above every measured draw and below the
    # 0.1-0.5 of the uncentred input.
    trainer, cfg, views = _cpu_trainer(2)
    assert cfg.model.stage2.center_input
    ref = _loss_with(trainer, cfg, views).item()
    low = _loss_with(trainer, cfg.replace(train={"precision": "bfloat16"}), views).item()
    assert abs(low - ref) < 0.1, (low, ref)


@pytest.mark.slow
@pytest.mark.skipif(not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "clang++")),
                    reason="torch.compile on a CPU needs a C++ compiler (g++ or clang++)")
def test_compile_on_cpu_matches_eager(one_torch_thread):
    for stage in (1, 2):
        trainer, cfg, views = _cpu_trainer(stage)
        results = []
        for config in (cfg, cfg.replace(train={"compile": True})):
            loss = _loss_with(trainer, config, views)
            loss.backward()
            params = [p for g in trainer.optimizer.param_groups for p in g["params"]]
            results.append((loss.item(), [p.grad.clone() for p in params]))
            trainer.model.zero_grad(set_to_none=True)
        (eager, g_eager), (compiled, g_compiled) = results
        # inductor fuses and reorders float32 arithmetic: equal to float32 rounding (measured: 1e-7 relative)
        assert compiled == pytest.approx(eager, rel=1e-5, abs=1e-6), stage
        for a, b in zip(g_eager, g_compiled):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * a.abs().max().item())
