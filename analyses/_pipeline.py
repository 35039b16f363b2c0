"""The main job: from the embedded default (bundled photographs) to results files and figures."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import data

__all__ = ["PipelineConfig", "run", "plot"]


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Settings of the main job.

    Parameters
    ----------
    seed
        Seed for everything random in the job.
    image_size
        Side of the bundled photographs, in pixels.
    """

    seed: int = 0
    image_size: int = 128

    def __post_init__(self) -> None:
        if self.image_size < 16:
            raise ValueError(f"image_size must be at least 16 px, got {self.image_size}")


def _small_model(seed: int):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 7, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 5, stride=2), torch.nn.ReLU(),
    )


def run(config: PipelineConfig, out: str | Path) -> Path:
    """Run the main job and write results and figures into ``out``.

    Parameters
    ----------
    config
        The job's settings.
    out
        Output folder (created).

    Returns
    -------
    pathlib.Path
        The output folder.

    Examples
    --------
    >>> import analyses._pipeline as p, tempfile
    >>> out = p.run(p.PipelineConfig(image_size=32), tempfile.mkdtemp())  # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    stimuli = data.natural_images(size=config.image_size)
    model = _small_model(config.seed)
    recorded = data.record(model, stimuli, layers=["1", "3"], regions={"1": "layer1", "3": "layer2"}, pool="mean")
    for name, assembly in recorded.items():
        data.save(assembly, out / f"recording_layer{name}.nc", config=config, seed=config.seed)
    with data.atomic_write(out / "config.json") as tmp:
        tmp.write_text(json.dumps(json.loads(data.provenance(config, config.seed)["config"]), indent=2))
    plot(out)
    print(f"done in {time.perf_counter() - t0:.1f} s; results in {out}")
    return out


def plot(results_dir: str | Path) -> list[Path]:
    """Re-draw every figure from the saved results in ``results_dir`` (no recomputation).

    Parameters
    ----------
    results_dir
        A folder written by :func:`run`.

    Returns
    -------
    list of pathlib.Path
        The figure files written (PNG and PDF).

    Examples
    --------
    >>> import analyses._pipeline as p
    >>> p.plot("outputs/demo")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results_dir = Path(results_dir)
    files = sorted(results_dir.glob("recording_layer*.nc"))
    if not files:
        raise ValueError(f"{results_dir} holds no results (recording_layer*.nc)")
    fig, axes = plt.subplots(1, len(files), figsize=(4 * len(files), 3), squeeze=False)
    for ax, f in zip(axes[0], files):
        a = data.load(f)
        ax.imshow(np.asarray(a.values).T, aspect="auto", cmap="viridis")
        ax.set_xlabel("photograph")
        ax.set_ylabel("channel")
        ax.set_title(f.stem)
    fig.tight_layout()
    written = []
    for ext in ("png", "pdf"):
        with data.atomic_write(results_dir / f"recordings.{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=150)
        written.append(results_dir / f"recordings.{ext}")
    plt.close(fig)
    return written
