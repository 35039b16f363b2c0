"""The small valid objects (``CTX``, built lazily and cached) from which tests/_fuzz_cases.py makes each public
callable's valid arguments."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


class Context:
    """Small valid inputs, built once per session on first use."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fuzz_api_"))
        self.rng = np.random.default_rng(0)

    @functools.cached_property
    def assembly(self):
        import data

        values = self.rng.normal(size=(12, 5)) + np.repeat(self.rng.normal(size=(3, 5)) * 3, 4, axis=0)
        return data.assembly(values, stimulus_id=[f"s{i}" for i in range(12)], neuroid_id=[f"n{i}" for i in range(5)],
                             category=np.repeat(["a", "b", "c"], 4))

    @functools.cached_property
    def assembly_time(self):
        import data

        v = self.rng.random((2, 3, 3))
        return data.assembly(v, stimulus_id=["a", "b"], neuroid_id=["x", "y", "z"], time_bin_start=[0, 50, 100],
                             time_bin_end=[50, 100, 150])

    @functools.cached_property
    def neural(self):
        import data

        signal_ = self.rng.normal(size=(20, 3))
        trials = np.concatenate([signal_ + 0.3 * self.rng.normal(size=signal_.shape) for _ in range(3)])
        ids = [f"s{i}" for i in range(20)]
        return data.assembly(trials, stimulus_id=ids * 3, neuroid_id=["a", "b", "c"],
                             repetition=np.repeat(np.arange(3), 20))

    @functools.cached_property
    def model_features(self):
        import data

        return data.assembly(self.rng.normal(size=(20, 4)), stimulus_id=[f"s{i}" for i in range(20)],
                             neuroid_id=[f"f{i}" for i in range(4)])

    @functools.cached_property
    def texture_assembly(self):
        import data

        return data.assembly(np.array([[30.0, 5.0], [10.0, 5.0]]), stimulus_id=["t", "n"], neuroid_id=["u0", "u1"],
                             texture_family=["brick", "brick"], texture_type=["texture", "noise"],
                             region=["V2", "V1"])

    @functools.cached_property
    def stimuli(self):
        import data

        return data.stimulus_set(self.rng.random((3, 16, 16)), stimulus_id=["t", "n", "m"],
                                 texture_family=["a", "a", "b"], texture_type=["texture", "noise", "texture"],
                                 sample=[0, 0, 0])

    @functools.cached_property
    def stimuli_32(self):
        import data

        return data.stimulus_set(self.rng.random((2, 32, 32)), texture_type=["texture", "noise"])

    @functools.cached_property
    def stimuli_64(self):
        import data

        return data.stimulus_set(self.rng.random((2, 64, 64)))

    @functools.cached_property
    def aperture_stimuli(self):
        import data

        return data.stimulus_set(np.zeros((1, 16, 16)), degrees=8.0, attrs={"stimulus_pixels": 8})

    @functools.cached_property
    def photos(self):
        import data

        return data.natural_images(size=32, names=["camera", "moon", "coins"])

    @functools.cached_property
    def manifolds(self):
        rng = np.random.default_rng(1)
        return [rng.normal(size=(4, 6)) + 3 * np.eye(6)[i] for i in range(3)]

    @functools.cached_property
    def saved(self) -> Path:
        import data

        return data.save(self.assembly, self.tmp / "saved.nc")

    @functools.cached_property
    def toml(self) -> Path:
        p = self.tmp / "c.toml"
        p.write_text("[train]\nsteps = [1, 1]\n")
        return p

    @functools.cached_property
    def image_dir(self) -> Path:
        import imageio.v3 as iio

        root = self.tmp / "images"
        (root / "cats").mkdir(parents=True)
        for i in range(2):
            iio.imwrite(root / "cats" / f"{i}.png", (self.rng.random((20, 24)) * 255).astype(np.uint8))
        return root

    @functools.cached_property
    def brainscore(self) -> tuple[Path, Path, Path]:
        import data

        nc = data.to_brainscore(self.assembly, self.tmp / "bs" / "assy.nc")
        stim = data.stimulus_set(np.zeros((12, 4, 4)), stimulus_id=[f"s{i}" for i in range(12)])
        csv_path, zip_path = data.write_brainscore_stimuli(stim, self.tmp / "bs" / "s.csv", self.tmp / "bs" / "s.zip")
        return nc, csv_path, zip_path

    @functools.cached_property
    def decoder(self):
        import decoding

        return decoding.LinearDecoder().fit(self.rng.poisson(4, (30, 10)), self.rng.random((30, 2, 2)))

    @functools.cached_property
    def pointwise(self):
        import decoding

        x = np.linspace(-1, 2, 48).reshape(3, 4, 4)
        return decoding.PointwiseNonlinearity().fit(x, np.clip(x, 0, 1))

    @functools.cached_property
    def retina(self):
        import decoding

        return decoding.Retina(self.retina_config)

    @functools.cached_property
    def retina_config(self):
        import decoding

        return decoding.RetinaConfig(image_size=8, mosaics=({"name": "on", "grid": 2},))

    @functools.cached_property
    def enhancer(self):
        import decoding

        return decoding.Enhancer(decoding.EnhancerConfig(channels=(2,), kernels=(3,), strides=(2,)))

    @functools.cached_property
    def v1v2(self):
        import lcl

        return lcl.V1V2(lcl.ModelConfig(stage1=lcl.StageConfig(channels=4), stage2=lcl.StageConfig(channels=4)))

    @functools.cached_property
    def lcl_tiny(self):
        import lcl

        return lcl.LCLConfig.preset("demo", train={"steps": (1, 1), "batch_size": 4, "progress": False},
                                            model={"stage1": {"channels": 4}, "stage2": {"channels": 4}})

    @functools.cached_property
    def folder_patches(self):
        import lcl

        return lcl.FolderPatches(self.image_dir, lcl.list_images(self.image_dir), image_size=16, patch_size=8,
                                 patches_per_image=1, batch_size=2)

    @functools.cached_property
    def backend_config(self):
        import lcl

        return lcl.BackEndConfig(widths=(4,), blocks=1)

    @functools.cached_property
    def recognition_config(self):
        import lcl

        return lcl.RecognitionConfig(image_size=64, tile_size=32, crop_size=24, test_crops_per_tile=2, steps=1,
                                     batch_size=2, corruptions=("contrast",), severities=(1,), progress=False)

    @functools.cached_property
    def crop_task(self):
        import lcl

        return lcl.CropTask(self.recognition_config, self.photos_64)

    @functools.cached_property
    def photos_64(self):
        import data

        return data.natural_images(size=64, names=["camera", "moon"])

    @functools.cached_property
    def corruption_results(self):
        import xarray as xr

        acc = xr.DataArray(np.random.default_rng(0).random((2, 1, 3)), dims=("front_end", "corruption", "severity"),
                           coords={"front_end": ["lcl", "pixels"], "corruption": ["contrast"],
                                   "severity": [0, 1, 2]})
        return xr.Dataset({"accuracy": acc}, attrs={"chance": 0.1})

    @functools.cached_property
    def modulation(self):
        import analyses

        return analyses.texture_modulation(self.texture_assembly, n_boot=20)

    @functools.cached_property
    def predictivity(self):
        import xarray as xr

        return xr.Dataset({"raw": ("region", [0.4, 0.3]), "raw_sem": ("region", [0.02, 0.03]),
                           "ceiling": ("region", [0.8, 0.75]), "score": ("region", [0.2, 0.12])},
                          coords={"region": ["V1", "V2"]})


CTX = Context()


def _figure():
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1])
    return fig


def _small_predictivity_config():
    import analyses

    return analyses.PredictivityConfig(n_components=2, n_splits=2, ceiling_splits=2, stratify=None, train_size=0.75)


def _job_failure():
    import analyses

    return analyses.JobFailure(0, "s", "1", "ValueError: x", "tb")


def _step_args() -> dict[str, Any]:
    """A fresh optimizer and loss (each call back-propagates once)."""
    import torch

    w = torch.nn.Parameter(torch.ones(2))
    return dict(optimizer=torch.optim.SGD([w], lr=0.1), loss=(w ** 2).sum(), lr=0.1)


def _checkpoint_file() -> Path:
    """A training checkpoint of a Linear(2, 1) (data.save_checkpoint)."""
    import torch

    import data

    return data.save_checkpoint(CTX.tmp / "train_ckpt.pt", model=torch.nn.Linear(2, 1), optimizer=None, step=1,
                                config={"lr": 0.1}, seed=0)


# name -> (target, kwargs builder). The target is the callable (resolved lazily for methods).
