"""Represent, then measure: one function turns any source of the main job (a model, the pixels, the neural data)
into the assemblies that the measurement steps (:mod:`analyses._steps`) take."""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

import data
import lcl

from ._assemblies import RESPONSE_WINDOW_MS, average_repetitions, average_time
from ._manifest import Manifest
from ._modulation import record_units
from ._pipeline_config import PipelineConfig
from ._texture_images import crop_to_stimulus

PIXELS = "pixels"
NEURAL = "neural"


@dataclasses.dataclass(frozen=True)
class Representation:
    """One representation of the stimuli and what is measured on it.

    ``label`` names it in result names (``"lcl:stage2"``, ``"pixels"``, ``"neural"``, ``"neural:V1"``);
    ``units`` are the single units of the texture modulation (``None``: not measured); ``features`` the
    population whose neural predictivity (when ``predict``) and manifold geometry are measured (``None``: neither).
    """

    label: str
    units: xr.DataArray | None
    features: xr.DataArray | None
    predict: bool

    @property
    def file_label(self) -> str:
        """The label in file names, figures and seed names: ``"lcl:stage2"`` -> ``"lcl_stage2"``."""
        return self.label.replace(":", "_")


def sources(config: PipelineConfig) -> list[str]:
    """The sources of a run, in order: every model (``model:<name>``), the pixels, the neural data."""
    return [f"model:{m}" for m in config.models] + [PIXELS, NEURAL]


def represent(config: PipelineConfig, source: str, manifest: Manifest) -> list[Representation]:
    """The representations of ``source`` (``"model:<name>"``, ``"pixels"`` or ``"neural"``) of the run's stimuli.

    A model gives one representation per recorded stage: its units (one per channel, read out as
    ``config.modulation.readout`` says, on the whole canvas) and its features (every position of the stimulus
    window: the canvas around it is blank). The pixels of the stimulus window are both units and features. The
    neural data give their trials as units (the modulation averages the response window and repetitions itself)
    and, per region, the responses averaged over the response window and repetitions
    (:func:`analyses.average_time`, :func:`analyses.average_repetitions`) as features; they are not predicted.
    """
    stimuli = data.load(manifest.path("stimuli"))
    if source == NEURAL:
        neural = data.load(manifest.path(NEURAL))
        mean = average_repetitions(average_time(neural, RESPONSE_WINDOW_MS))
        reps = [Representation(NEURAL, neural, None, False)]
        for region in np.unique(neural["region"].values).tolist():
            part = mean.isel(neuroid=np.flatnonzero(mean["region"].values == region))
            reps.append(Representation(f"{NEURAL}:{region}", None, part, False))
        return reps
    window = crop_to_stimulus(stimuli)
    if source == PIXELS:
        imgs = window["image"].values.reshape(window.sizes["stimulus_id"], -1).astype(np.float64)
        meta = {c: ("presentation", window[c].values) for c in ("texture_family", "texture_type", "sample")
                if c in window.coords}
        n = imgs.shape[1]
        pixels = data.assembly(imgs, stimulus_id=window["stimulus_id"].values,
                               neuroid_id=[f"px{i}" for i in range(n)], region=("neuroid", np.full(n, PIXELS)),
                               **meta)
        return [Representation(PIXELS, pixels, pixels, True)]
    kind, _, name = source.partition(":")
    if kind != "model" or not name:
        raise ValueError(f"unknown source {source!r}: 'model:<name>', {PIXELS!r} or {NEURAL!r}")
    model = lcl.load_model(manifest.path(source)).to(config.device)
    stages = list(config.stages)
    units = record_units(model, stimuli, stages, readout=config.modulation.readout, device=config.device)
    full = data.record(model, window, layers=stages, batch_size=16, regions={s: s for s in stages},
                       device=config.device, progress=False)
    return [Representation(f"{name}:{stage}", units[stage], full[stage], True) for stage in stages]
