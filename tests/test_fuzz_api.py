"""Property-based fuzzing of the public API (issue #15, point 3).

Every callable named in the ``__all__`` of ``data``, ``lcl``, ``geometry``, ``decoding`` and ``analyses`` (classes
and functions; constants and submodules skipped), plus a few public methods, is called with hypothesis-drawn
malformed values for one argument at a time (wrong types, NaN, inf, negative, zero, huge, complex, strings,
``None``, ...) while the other arguments keep small valid values (``CASES``). A call passes when it

- returns normally (without numpy's ``ComplexWarning``: a complex value must not silently lose its imaginary
  part), unless the value is one the annotation rules out (:func:`must_reject`: a string, bool,
  float, complex or ``None`` for an ``int``; NaN, inf, strings, bools for a ``float``; anything but a bool for a
  ``bool``; ...), or
- raises ``ValueError`` or ``TypeError`` (or ``FileNotFoundError`` for a path that names no file) from project
  code: the traceback's last frame lies inside the project's packages, or the message names the argument,

and it finishes within ``CALL_TIMEOUT_S`` (functions that start heavy work must refuse bad arguments first).
Callables whose valid defaults would start training or synthesis (``HEAVY``) only get values they must reject.

Remaining gaps in files this module's author could not change are listed in ``KNOWN_GAPS``: the fuzz test skips
those arguments and ``test_known_gap`` shows each one still fails (``xfail(strict=True)``: fixing it turns the
test red until the entry is removed).

Set ``LCL_FUZZ_EXPLORE=1`` for a longer, randomised run, or run ``pytest -m slow`` for
``test_every_malformed_argument_exhaustively``, which tries every (argument, value) pair (minutes).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import math
import os
import signal
import tempfile
import time
import traceback
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

PACKAGES = ("data", "lcl", "geometry", "decoding", "analyses")
PROJECT_DIRS = tuple(Path(importlib.import_module(p).__file__).resolve().parent for p in PACKAGES)
CALL_TIMEOUT_S = 20.0

settings.register_profile("fuzz-default", max_examples=12, deadline=None, derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("fuzz-explore", max_examples=200, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
FUZZ_SETTINGS = settings.get_profile("fuzz-explore" if os.environ.get("LCL_FUZZ_EXPLORE") else "fuzz-default")


class _Opaque:
    """An object of no type any argument accepts."""

    def __repr__(self) -> str:
        return "<opaque object>"


# (label, value): the malformed values one argument at a time gets.
MALFORMED: list[tuple[str, Any]] = [
    ("str", "abc"),
    ("numeric str", "3"),
    ("None", None),
    ("True", True),
    ("False", False),
    ("nan", float("nan")),
    ("inf", float("inf")),
    ("-inf", float("-inf")),
    ("-1", -1),
    ("0", 0),
    ("-2.5", -2.5),
    ("2.5", 2.5),
    ("1e300", 1e300),
    ("1e-300", 1e-300),
    ("10**12", 10 ** 12),
    ("-10**12", -(10 ** 12)),
    ("2**70", 2 ** 70),
    ("complex", 1 + 2j),
    ("list", [1, 2]),
    ("empty tuple", ()),
    ("dict", {"a": 1}),
    ("object", _Opaque()),
    ("bytes", b"x"),
    ("complex array", np.full((3, 4), 0.5 + 0.5j)),
    ("nan array", np.full((3, 4), np.nan)),
    ("str array", np.full((3, 4), "a")),
    ("empty array", np.zeros((0, 4))),
    ("1-D array", np.zeros(4)),
    ("huge array", np.full((3, 4), 1e300)),
]
VALUES = dict(MALFORMED)

# --- which values an annotation rules out -------------------------------------------------------------------


def _alternatives(annotation: Any) -> set[str] | None:
    """The alternatives of a string annotation (``"int | None"`` -> ``{"int", "None"}``), None if unknown."""
    if annotation is inspect.Parameter.empty or not isinstance(annotation, str):
        return None
    return {a.strip() for a in annotation.split("|")}


_SCALAR = {"int", "float", "bool", "str", "None", "os.PathLike", "Path"}


def must_reject(annotation: Any, value: Any) -> bool:
    """True when a simple scalar annotation (``int``, ``float``, ``bool``, ``str``, paths, ``| None``) rules out
    ``value``: such a call must raise."""
    alts = _alternatives(annotation)
    if not alts or not alts <= _SCALAR:
        return False
    if value is None:
        return "None" not in alts
    if "bool" in alts and isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (bool, np.bool_)):
        return True  # a bool for an int, float, str or path
    if "int" in alts and isinstance(value, int):
        return False
    if "float" in alts and isinstance(value, (int, float)) and not isinstance(value, complex):
        return not math.isfinite(value)  # NaN and inf are never a sensible setting
    if ("str" in alts or "os.PathLike" in alts or "Path" in alts) and isinstance(value, str):
        return False
    return True


# --- small valid arguments for every callable ---------------------------------------------------------------


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
CASES: dict[str, tuple[Callable[[], Callable[..., Any]] | None, Callable[[], dict[str, Any]]]] = {
    # data
    "data.assembly": (None, lambda: dict(values=np.ones((3, 2)), stimulus_id=["a", "b", "c"], neuroid_id=["x", "y"])),
    "data.stimulus_set": (None, lambda: dict(images=np.full((2, 4, 4), 0.5))),
    "data.validate_assembly": (None, lambda: dict(a=CTX.assembly)),
    "data.validate_stimuli": (None, lambda: dict(s=CTX.stimuli)),
    "data.save": (None, lambda: dict(obj=CTX.assembly, path=CTX.tmp / "out.nc")),
    "data.load": (None, lambda: dict(path=CTX.saved)),
    "data.atomic_write": (None, lambda: dict(path=CTX.tmp / "w.txt")),
    "data.provenance": (None, lambda: dict(config=None, seed=None)),
    "data.git_commit": (None, dict),
    "data.package_version": (None, dict),
    "data.Config": (None, dict),
    "data.derive_seed": (None, lambda: dict(root=3)),
    "data.config_from_dict": (None, lambda: dict(cls=importlib.import_module("decoding").DecoderConfig, values={})),
    "data.load_toml": (None, lambda: dict(path=CTX.toml)),
    "data.update_config": (None, lambda: dict(config=importlib.import_module("decoding").DecoderConfig(),
                                              changes={})),
    "data.natural_images": (None, lambda: dict(size=16, names=["camera"])),
    "data.texture_images": (None, lambda: dict(size=16, names=["brick"])),
    "data.image_folder": (None, lambda: dict(path=CTX.image_dir, size=8)),
    "data.read_image": (None, lambda: dict(path=CTX.image_dir / "cats" / "0.png")),
    "data.sample_patches": (None, lambda: dict(stimuli=CTX.stimuli, n=2, size=4)),
    "data.record": (None, lambda: dict(model=CTX.v1v2, stimuli=CTX.stimuli_64, layers=["stage1"], progress=False)),
    "data.center_index": (None, lambda: dict(side=5, image_side=16)),
    "data.stimuli_to_tensor": (None, lambda: dict(stimuli=CTX.stimuli)),
    "data.init_distributed": (None, lambda: dict(device="cpu")),
    "data.rank_and_world": (None, dict),
    "data.process_device": (None, lambda: dict(device="cpu")),
    "data.scaled_lr": (None, lambda: dict(lr=1e-3, global_batch=32)),
    "data.lr_factor": (None, lambda: dict(step=3, total=10, warmup_steps=2)),
    "data.optimizer_step": (None, _step_args),
    "data.autocast": (None, lambda: dict(device="cpu")),
    "data.wrap_ddp": (None, lambda: dict(module=importlib.import_module("torch").nn.Linear(2, 1), device="cpu")),
    "data.progress_bar": (None, lambda: dict(total=3, enabled=False)),
    "data.save_checkpoint": (None, lambda: dict(path=CTX.tmp / "ckpt_out.pt", model=importlib.import_module(
        "torch").nn.Linear(2, 1), optimizer=None, step=1, config={"lr": 0.1}, seed=0)),
    "data.load_checkpoint": (None, lambda: dict(path=_checkpoint_file(), config={"lr": 0.1})),
    "data.resume_state": (None, lambda: dict(state=importlib.import_module("data").load_checkpoint(_checkpoint_file()),
                                             model=importlib.import_module("torch").nn.Linear(2, 1))),
    "data.from_brainscore": (None, lambda: dict(nc_path=CTX.brainscore[0])),
    "data.merge_stimulus_metadata": (None, lambda: dict(assembly=CTX.assembly, stimuli=importlib.import_module("data").stimulus_set(
        np.zeros((12, 4, 4)), stimulus_id=[f"s{i}" for i in range(12)], texture_type=["noise", "texture"] * 6))),
    "data.to_brainscore": (None, lambda: dict(assembly=CTX.assembly, nc_path=CTX.tmp / "bs_out.nc")),
    "data.read_brainscore_stimuli": (None, lambda: dict(stimulus_csv=CTX.brainscore[1],
                                                        stimulus_zip=CTX.brainscore[2])),
    "data.write_brainscore_stimuli": (None, lambda: dict(stimuli=CTX.stimuli, csv_path=CTX.tmp / "w.csv",
                                                         zip_path=CTX.tmp / "w.zip")),
    # geometry
    "geometry.capacity": (None, lambda: dict(x=CTX.manifolds, n_t=10, n_reps=1)),
    "geometry.manifold_geometry": (None, lambda: dict(points=[m - m.mean(0) for m in CTX.manifolds], n_t=10)),
    "geometry.simulated_capacity": (None, lambda: dict(x=CTX.manifolds, n_dichotomies=2)),
    "geometry.separable": (None, lambda: dict(points=np.array([[0.0], [1.0]]), labels=np.array([-1, 1]))),
    "geometry.alignment": (None, lambda: dict(x=CTX.manifolds)),
    "geometry.decodability": (None, lambda: dict(x=CTX.manifolds, cv=2)),
    "geometry.gardner_capacity": (None, lambda: dict(kappa=0.5)),
    "geometry.ball_capacity": (None, lambda: dict(dimension=2)),
    "geometry.subspace_capacity": (None, lambda: dict(dimension=2)),
    "geometry.validate_manifolds": (None, lambda: dict(x=CTX.manifolds)),
    "geometry.validate_settings": (None, dict),
    # decoding
    "decoding.Retina": (None, lambda: dict(config=CTX.retina_config)),
    "decoding.Retina.rates": (lambda: CTX.retina.rates, lambda: dict(images=np.full((2, 8, 8), 0.5), batch_size=1)),
    "decoding.Retina.simulate": (lambda: CTX.retina.simulate, lambda: dict(images=np.full((2, 8, 8), 0.5))),
    "decoding.validate_images": (None, lambda: dict(images=np.zeros((1, 8, 8)), image_size=8)),
    "decoding.as_images": (None, lambda: dict(images=np.zeros((1, 8, 8)), image_size=8)),
    "decoding.LinearDecoder": (None, dict),
    "decoding.LinearDecoder.fit": (lambda: importlib.import_module("decoding").LinearDecoder().fit,
                                   lambda: dict(counts=np.random.default_rng(0).poisson(4, (6, 3)),
                                                images=np.zeros((6, 2, 2)))),
    "decoding.LinearDecoder.predict": (lambda: CTX.decoder.predict,
                                       lambda: dict(counts=np.ones((3, 10)), batch_size=2)),
    "decoding.PointwiseNonlinearity": (None, dict),
    "decoding.PointwiseNonlinearity.fit": (lambda: importlib.import_module("decoding").PointwiseNonlinearity().fit,
                                           lambda: dict(reconstructions=np.zeros((1, 2, 2)),
                                                        images=np.full((1, 2, 2), 0.5))),
    "decoding.PointwiseNonlinearity.transform": (lambda: CTX.pointwise.transform,
                                                 lambda: dict(reconstructions=np.zeros((2, 2)))),
    "decoding.validate_counts": (None, lambda: dict(counts=np.ones((3, 2)))),
    "decoding.Enhancer": (None, lambda: dict(config=importlib.import_module("decoding").EnhancerConfig(
        channels=(2,), kernels=(3,), strides=(2,)))),
    "decoding.Enhancer.enhance": (lambda: CTX.enhancer.enhance, lambda: dict(reconstructions=np.zeros((2, 8, 8)))),
    "decoding.train_enhancer": (None, lambda: dict(
        model=CTX.enhancer, inputs=np.zeros((2, 8, 8)), targets=np.zeros((2, 8, 8)),
        config=importlib.import_module("decoding").EnhancerTrainConfig(epochs=1, batch_size=2, patch_size=0),
        progress=False)),
    "decoding.load_enhancer": (None, lambda: dict(path=CTX.tmp / "no_such_checkpoint.pt")),
    "decoding.mse": (None, lambda: dict(reference=np.zeros((8, 8)), reconstruction=np.zeros((8, 8)))),
    "decoding.psnr": (None, lambda: dict(reference=np.zeros((8, 8)), reconstruction=np.full((8, 8), 0.1))),
    "decoding.ssim": (None, lambda: dict(reference=np.zeros((8, 8)), reconstruction=np.zeros((8, 8)))),
    "decoding.split_by_source": (None, lambda: dict(photos=CTX.photos, test_sources=("camera",))),
    "decoding.study_photographs": (None, lambda: dict(config=importlib.import_module("decoding").StudyDataConfig(
        photo_size=32, n_test_sources=1))),
    "decoding.make_datasets": (None, lambda: dict(config=importlib.import_module("decoding").StudyDataConfig(
        photo_size=32, n_decoder=2, n_enhancer=2, n_test=2, n_test_sources=1), image_size=16)),
    "decoding.evaluate": (None, lambda: dict(reference=np.zeros((2, 8, 8)),
                                             reconstructions={"linear": np.zeros((2, 8, 8))})),
    "decoding.run_study": (None, lambda: dict(config=importlib.import_module("decoding").StudyConfig.preset("tiny"),
                                              progress=False)),
    "decoding.validate_study_config": (None, lambda: dict(
        config=importlib.import_module("decoding").StudyConfig.preset("tiny"))),
    "decoding.load_results": (None, lambda: dict(path=CTX.saved)),
    "decoding.summary_table": (None, lambda: dict(results=importlib.import_module("decoding").evaluate(
        np.zeros((2, 8, 8)), {"linear": np.full((2, 8, 8), 0.1)}))),
    "decoding.plot_reconstructions": (None, lambda: dict(results=CTX.predictivity, path=CTX.tmp / "rec")),
    "decoding.MosaicConfig": (None, lambda: dict(name="on", grid=2)),
    "decoding.RetinaConfig": (None, dict),
    "decoding.DecoderConfig": (None, dict),
    "decoding.EnhancerConfig": (None, dict),
    "decoding.EnhancerTrainConfig": (None, dict),
    "decoding.StudyDataConfig": (None, dict),
    "decoding.StudyConfig": (None, dict),
    "decoding.StudyConfig.preset": (lambda: importlib.import_module("decoding").StudyConfig.preset,
                                    lambda: dict(name="tiny")),
    "decoding.StudyConfig.from_dict": (lambda: importlib.import_module("decoding").StudyConfig.from_dict,
                                       lambda: dict(values={"seed": 1})),
    # lcl
    "lcl.V1V2": (None, dict),
    "lcl.Stage": (None, lambda: dict(in_channels=1, config=importlib.import_module("lcl").StageConfig(
        channels=4, kernel=3))),
    "lcl.ModelConfig": (None, dict),
    "lcl.StageConfig": (None, dict),
    "lcl.ReceptiveField": (None, lambda: dict(size=3, stride=1)),
    "lcl.whitening_kernel": (None, lambda: dict(size=7)),
    "lcl.DeformConfig": (None, dict),
    "lcl.deform": (None, lambda: dict(images=__import__("torch").rand(1, 1, 8, 8), amplitude=1.0, smoothness=2.0,
                                      seed=0)),
    "lcl.random_displacement": (None, lambda: dict(batch=1, height=8, width=8, amplitude=1.0, smoothness=2.0)),
    "lcl.warp": (None, lambda: dict(images=__import__("torch").rand(1, 1, 4, 4),
                                    displacement=__import__("torch").zeros(1, 4, 4, 2))),
    "lcl.rms_displacement": (None, lambda: dict(displacement=__import__("torch").zeros(1, 4, 4, 2))),
    "lcl.noise_shape": (None, lambda: dict(height=8, width=8, smoothness=2.0)),
    "lcl.displacement_from_noise": (None, lambda: dict(
        noise=__import__("torch").randn(1, *importlib.import_module("lcl").noise_shape(8, 8, 2.0)), height=8,
        width=8, amplitude=1.0, smoothness=2.0)),
    "lcl.LCLConfig": (None, dict),
    "lcl.OptimConfig": (None, dict),
    "lcl.TrainConfig": (None, dict),
    "lcl.DataConfig": (None, dict),
    "lcl.validate_config": (None, lambda: dict(config=importlib.import_module("lcl").LCLConfig())),
    "lcl.LCLConfig.load": (lambda: importlib.import_module("lcl").LCLConfig.load, lambda: dict(path=CTX.toml)),
    "lcl.LCLConfig.preset": (lambda: importlib.import_module("lcl").LCLConfig.preset, lambda: dict(name="demo")),
    "lcl.Trainer": (None, lambda: dict(config=CTX.lcl_tiny)),
    "lcl.train": (None, lambda: dict(config=CTX.lcl_tiny, out_dir=None)),
    "lcl.export_brainscore": (None, lambda: dict(run_dir=CTX.tmp / "no_such_run", out=CTX.tmp / "plugin")),
    "lcl.load_model": (None, lambda: dict(path=CTX.tmp / "no_such_run")),
    "lcl.load_checkpoint": (None, lambda: dict(path=CTX.tmp / "no_such_run")),
    "lcl.init_distributed": (None, lambda: dict(device="cpu")),
    "lcl.list_images": (None, lambda: dict(root=CTX.image_dir)),
    "lcl.FolderPatches": (None, lambda: dict(root=CTX.image_dir, files=["cats/0.png", "cats/1.png"], image_size=16,
                                             patch_size=8, patches_per_image=1, batch_size=2)),
    "lcl.PatchStream": (None, lambda: dict(dataset=CTX.folder_patches, batch_size=2)),
    "lcl.patch_stream": (None, lambda: dict(
        data_config=importlib.import_module("lcl").DataConfig(source="folder", folder=str(CTX.image_dir),
                                                              image_size=16, streaming=True),
        train_config=importlib.import_module("lcl").TrainConfig(batch_size=2, patch_size=8))),
    "lcl.orientation_selectivity": (None, lambda: dict(filters=np.random.default_rng(0).random((2, 5, 5)))),
    "lcl.spatial_spread": (None, lambda: dict(filters=np.random.default_rng(0).random((2, 5, 5)))),
    "lcl.plot_filters": (None, lambda: dict(model_or_filters=np.random.default_rng(0).random((2, 5, 5)),
                                            path=CTX.tmp / "filters")),
    "lcl.V2Net": (None, lambda: dict(front_end=CTX.v1v2, backend=importlib.import_module("lcl").BackEnd(
        4, 2, CTX.backend_config), frozen=True)),
    "lcl.BackEnd": (None, lambda: dict(in_channels=4, n_classes=2, config=CTX.backend_config)),
    "lcl.PixelStem": (None, lambda: dict(in_channels=1, channels=4)),
    "lcl.BackEndConfig": (None, dict),
    "lcl.RecognitionConfig": (None, dict),
    "lcl.CropTask": (None, lambda: dict(config=CTX.recognition_config, images=CTX.photos_64)),
    "lcl.build_v2net": (None, lambda: dict(kind="pixels", lcl_model=None, backend=CTX.backend_config, n_classes=2)),
    "lcl.train_v2net": (None, lambda: dict(net=importlib.import_module("lcl").build_v2net(
        "pixels", None, CTX.backend_config, CTX.crop_task.n_classes), task=CTX.crop_task,
        config=CTX.recognition_config)),
    "lcl.evaluate_corruptions": (None, lambda: dict(net=importlib.import_module("lcl").build_v2net(
        "pixels", None, CTX.backend_config, CTX.crop_task.n_classes), task=CTX.crop_task,
        config=CTX.recognition_config)),
    "lcl.corruption_benchmark": (None, lambda: dict(lcl_model=None, backend=CTX.backend_config,
                                                    config=CTX.recognition_config, task=CTX.crop_task)),
    "lcl.plot_corruptions": (None, lambda: dict(results=CTX.corruption_results, path=CTX.tmp / "corr")),
    "lcl.RecognitionConfig.preset": (lambda: importlib.import_module("lcl").RecognitionConfig.preset,
                                     lambda: dict(name="demo")),
    "lcl.corrupt": (None, lambda: dict(images=__import__("torch").rand(1, 1, 8, 8), name="contrast", severity=1)),
    # analyses
    "analyses.TextureStimuliConfig": (None, dict),
    "analyses.texture_stimuli": (None, lambda: dict(config=importlib.import_module("analyses").TextureStimuliConfig(
        families=("brick",), n_samples=1, size=32, n_scales=2, max_iter=2), cache=False)),
    "analyses.validate_texture_config": (None, lambda: dict(
        config=importlib.import_module("analyses").TextureStimuliConfig())),
    "analyses.phase_randomize": (None, lambda: dict(image=np.random.default_rng(0).random((8, 8)), seed=0)),
    "analyses.raised_cosine_aperture": (None, lambda: dict(size=8)),
    "analyses.portilla_simoncelli_loss": (None, lambda: dict(images=np.random.default_rng(0).random((1, 32, 32)),
                                                             targets=np.random.default_rng(1).random((1, 32, 32)),
                                                             n_scales=2)),
    "analyses.default_cache_dir": (None, dict),
    "analyses.crop_to_stimulus": (None, lambda: dict(stimuli=CTX.aperture_stimuli)),
    "analyses.SimulatedRecordingConfig": (None, dict),
    "analyses.simulated_recording": (None, lambda: dict(
        stimuli=CTX.stimuli_32, config=importlib.import_module("analyses").SimulatedRecordingConfig(
            n_v1=4, n_v2=3, n_repetitions=2, spatial_frequencies=(2.0,)))),
    "analyses.validate_simulated_config": (None, lambda: dict(
        config=importlib.import_module("analyses").SimulatedRecordingConfig())),
    "analyses.texture_modulation": (None, lambda: dict(assembly=CTX.texture_assembly, n_boot=20)),
    "analyses.modulation_index": (None, lambda: dict(r_texture=30.0, r_noise=10.0)),
    "analyses.responsive_units": (None, lambda: dict(responses=np.array([[10.0, 5.0], [20.0, 5.0]]))),
    "analyses.bootstrap_mean_ci": (None, lambda: dict(values=np.arange(10.0), n_boot=20)),
    "analyses.record_units": (None, lambda: dict(model=CTX.v1v2, stimuli=CTX.stimuli_64, layers=("stage1",))),
    "analyses.PredictivityConfig": (None, dict),
    "analyses.neural_predictivity": (None, lambda: dict(model_assembly=CTX.model_features,
                                                        neural_assembly=CTX.neural,
                                                        config=_small_predictivity_config())),
    "analyses.split_half_ceiling": (None, lambda: dict(neural_assembly=CTX.neural, n_splits=2)),
    "analyses.spearman_brown": (None, lambda: dict(r=0.5)),
    "analyses.brainscore_order": (None, lambda: dict(ids=np.array(["b", "a", "c"]))),
    "analyses.validate_predictivity_config": (None, lambda: dict(
        config=importlib.import_module("analyses").PredictivityConfig())),
    "analyses.run_jobs": (None, lambda: dict(steps=[(math.sqrt, (4,))], executor="debug", folder=CTX.tmp / "jobs")),
    "analyses.JobStep": (None, lambda: dict(function=math.sqrt, args=(4,))),
    "analyses.JobFailure": (None, lambda: dict(index=0, label="s", job_id="1", summary="x", traceback="tb")),
    "analyses.JobsFailedError": (None, lambda: dict(failures=[_job_failure()], results=[None], n_steps=1)),
    "data.figure_style": (None, dict),
    "data.save_figure": (None, lambda: dict(fig=_figure(), path_stem=CTX.tmp / "fig")),
    "analyses.plot_texture_modulation": (None, lambda: dict(results={"toy": CTX.modulation},
                                                            path_stem=CTX.tmp / "mod")),
    "analyses.plot_predictivity": (None, lambda: dict(results={"model": CTX.predictivity},
                                                      path_stem=CTX.tmp / "pred")),
    "analyses.plot_texture_stimuli": (None, lambda: dict(stimuli=CTX.stimuli, path_stem=CTX.tmp / "stim")),
    "analyses.average_time": (None, lambda: dict(assembly=CTX.assembly_time)),
    "analyses.average_repetitions": (None, lambda: dict(assembly=CTX.neural)),
    "analyses.PipelineConfig": (None, dict),
    "analyses.NeuralDataConfig": (None, dict),
    "analyses.GeometryConfig": (None, dict),
    "analyses.ModulationConfig": (None, dict),
    "analyses.JobsConfig": (None, dict),
    "analyses.default_pipeline_config": (None, dict),
    "analyses.pipeline_config_from_dict": (None, lambda: dict(values={})),
    "analyses.validate_pipeline_config": (None, lambda: dict(
        config=importlib.import_module("analyses").default_pipeline_config())),
    "analyses.run": (None, lambda: dict(config=importlib.import_module("analyses").default_pipeline_config(),
                                        out=CTX.tmp / "run")),
    "analyses.plot": (None, lambda: dict(results_dir=CTX.tmp / "no_such_results")),
    "analyses.write_report": (None, lambda: dict(results_dir=CTX.tmp / "no_such_results")),
}

# Callables whose valid arguments need files that only a full run writes: the valid-arguments check only asks for
# a clear error about the missing or foreign file (the fuzzing of their other arguments is unchanged).
NEEDS_RUN_OUTPUT = {
    "analyses.plot", "analyses.write_report", "decoding.load_results", "decoding.plot_reconstructions",
    "decoding.load_enhancer", "lcl.load_model", "lcl.load_checkpoint", "lcl.export_brainscore",
}

# Callables whose valid arguments start training, synthesis or a study: they only get values they must reject.
HEAVY = {
    "decoding.train_enhancer", "decoding.run_study", "decoding.make_datasets", "decoding.study_photographs",
    "lcl.Trainer", "lcl.train", "lcl.train_v2net", "lcl.corruption_benchmark", "lcl.evaluate_corruptions",
    "analyses.texture_stimuli", "analyses.run", "analyses.run_jobs", "analyses.record_units", "data.record",
    "analyses.portilla_simoncelli_loss",
}

# (callable, argument) -> the file that must add the check (owned by others; not editable in this change).
# Each entry's exact failure is in test_known_gap's output; see the module docstring.
_GAP_FILES: dict[str, list[tuple[str, str]]] = {}
KNOWN_GAPS: dict[tuple[str, str], str] = {
    gap: f"{path} (not editable in the issue #15 change) does not check {gap[1]!r} of {gap[0]}"
    for path, gaps in _GAP_FILES.items() for gap in gaps
}


def _resolve(name: str) -> Callable[..., Any]:
    target, _ = CASES[name]
    if target is not None:
        return target()
    pkg, attr = name.split(".", 1)
    return getattr(importlib.import_module(pkg), attr)


def _public_callables() -> list[str]:
    names = []
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        for attr in mod.__all__:
            obj = getattr(mod, attr)
            if isinstance(obj, types.ModuleType) or not callable(obj):
                continue  # submodules and constants
            names.append(f"{pkg}.{attr}")
    return names


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    sig = inspect.signature(fn)
    return [p for p in sig.parameters.values()
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]


class _Timeout(BaseException):
    """Raised by the alarm: a call ran past CALL_TIMEOUT_S (BaseException, so `except Exception` cannot eat it)."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise _Timeout in the block after ``seconds``; pytest-timeout's own alarm (the same timer) is restored."""
    def alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, alarm)
    outer, interval = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer) if outer > 0 else seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3), interval)


def _last_frame_file(exc: BaseException) -> Path | None:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return None if last is None else Path(last.tb_frame.f_code.co_filename).resolve()


def _from_project(exc: BaseException) -> bool:
    where = _last_frame_file(exc)
    return where is not None and any(d == where.parent or d in where.parents for d in PROJECT_DIRS)


def _call(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    result = fn(**kwargs)
    if isinstance(result, contextlib.AbstractContextManager) and not isinstance(result, os.PathLike):
        # atomic_write, figure_style: the checks run on entry
        with result:
            pass
    return result


def check_call(name: str, param: str, label: str) -> str | None:
    """Call ``name`` with ``param`` set to the malformed value ``label``; return a failure message or None."""
    fn = _resolve(name)
    kwargs = CASES[name][1]()
    annotation = {p.name: p.annotation for p in _parameters(fn)}[param]
    value = VALUES[label]
    kwargs[param] = value
    reject = must_reject(annotation, value)
    what = f"{name}({param}={label}: {value!r:.40})"
    with tempfile.TemporaryDirectory() as cwd, contextlib.chdir(cwd), warnings.catch_warnings(), \
            _time_limit(CALL_TIMEOUT_S):
        warnings.simplefilter("error", np.exceptions.ComplexWarning)  # a complex value silently made real
        try:
            _call(fn, kwargs)
        except _Timeout:
            return f"{what} ran longer than {CALL_TIMEOUT_S:g} s (no check before the work?)"
        except (ValueError, TypeError, FileNotFoundError) as exc:
            if isinstance(exc, FileNotFoundError):
                if isinstance(value, str) and (_from_project(exc) or value in str(exc)):
                    return None  # a string that names no file: the error names it
                return f"{what} raised FileNotFoundError: {exc}"
            if _from_project(exc) or param in str(exc):
                return None
            return (f"{what} raised {type(exc).__name__} outside the project without naming {param!r}: {exc}\n"
                    + "".join(traceback.format_exception(exc)[-3:]))
        except Exception as exc:  # noqa: BLE001 - any other exception is the finding
            return (f"{what} raised {type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc)[-4:]))
    if reject:
        return f"{what} was accepted, but the annotation {annotation!r} rules the value out"
    return None


def _labels(name: str, param: inspect.Parameter) -> list[str]:
    """The malformed values ``param`` of ``name`` gets: all, or for HEAVY callables those it must reject."""
    return [label for label, value in MALFORMED if name not in HEAVY or must_reject(param.annotation, value)]


def _candidates(name: str) -> list[tuple[str, str]]:
    """(argument, malformed label) pairs to draw from for ``name`` (known gaps left out)."""
    return [(p.name, label) for p in _parameters(_resolve(name)) if (name, p.name) not in KNOWN_GAPS
            for label in _labels(name, p)]


# --- the tests ----------------------------------------------------------------------------------------------


def test_every_public_callable_has_a_case():
    missing = [n for n in _public_callables() if n not in CASES]
    assert not missing, f"add small valid arguments for these public callables to CASES: {missing}"
    unknown = [n for n in CASES if n.split(".")[0] in PACKAGES and "." not in n.split(".", 1)[1]
               and n not in _public_callables()]
    assert not unknown, f"CASES names callables that are not public (any more): {unknown}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_valid_defaults_work(name):
    """The small valid arguments are valid: the fuzz test's other arguments do not cause its errors."""
    if name in HEAVY:
        pytest.skip("heavy: its valid call would start training/synthesis")
    fn = _resolve(name)
    with tempfile.TemporaryDirectory() as cwd, contextlib.chdir(cwd), _time_limit(CALL_TIMEOUT_S):
        if name in NEEDS_RUN_OUTPUT:
            with pytest.raises((FileNotFoundError, ValueError)):
                _call(fn, CASES[name][1]())
        else:
            _call(fn, CASES[name][1]())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_argument_gets_a_clear_error(name):
    pairs = _candidates(name)
    if not pairs:
        pytest.skip("no arguments to fuzz (none, or all of them in KNOWN_GAPS)")

    @FUZZ_SETTINGS
    @given(st.sampled_from(pairs))
    def run(pair):
        failure = check_call(name, *pair)
        assert failure is None, failure

    run()


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_malformed_argument_exhaustively(name):
    """Every (argument, malformed value) pair of ``name``, not a sample (``pytest -m slow``; minutes)."""
    failures = [f for pair in _candidates(name) if (f := check_call(name, *pair))]
    assert not failures, "\n".join(failures[:5]) + f"\n({len(failures)} failures)"


@pytest.mark.parametrize("gap", [pytest.param(g, marks=pytest.mark.xfail(strict=True, reason=why), id=f"{g[0]}:{g[1]}")
                                 for g, why in sorted(KNOWN_GAPS.items())])
def test_known_gap(gap):
    """Each known gap still fails (strict xfail): once its owner fixes it, remove its KNOWN_GAPS entry."""
    name, param = gap
    p = {q.name: q for q in _parameters(_resolve(name))}[param]
    for label in _labels(name, p):
        failure = check_call(name, param, label)
        assert failure is None, failure  # the first failure is enough: the gap is still there
