"""Simulated V1/V2 recording: structure, Poisson trials, and Freeman et al. (2013) by mechanism."""

from __future__ import annotations

import numpy as np
import pytest

import analyses
import data
from test_analyses_fixtures import sparse_texture_set

CFG = analyses.SimulatedRecordingConfig(spatial_frequencies=(2.0, 4.0), n_v1=40, n_v2=40)


@pytest.fixture(scope="module")
def stimuli():
    return sparse_texture_set()


@pytest.fixture(scope="module")
def recording(stimuli):
    return analyses.simulated_recording(stimuli, CFG)


def test_recording_structure(stimuli, recording):
    a = recording
    data.validate_assembly(a)
    n_stim = stimuli.sizes["stimulus_id"]
    assert a.dims == ("presentation", "neuroid")
    assert a.shape == (n_stim * CFG.n_repetitions, CFG.n_v1 + CFG.n_v2)
    assert set(a.source.values.tolist()) == {"simulated"}
    assert (a.region.values == "V1").sum() == CFG.n_v1 and (a.region.values == "V2").sum() == CFG.n_v2
    assert sorted(set(a.repetition.values.tolist())) == list(range(CFG.n_repetitions))
    # the stimulus metadata rides along on every presentation
    for coord in ("texture_family", "texture_type", "sample"):
        by_id = dict(zip(stimuli.stimulus_id.values, stimuli[coord].values))
        assert all(by_id[s] == v for s, v in zip(a.stimulus_id.values, a[coord].values))
    assert a.attrs["units"] == "spikes/s"


def test_trials_are_poisson_counts(recording):
    window_s = (CFG.window_ms[1] - CFG.window_ms[0]) / 1000
    counts = recording.values.astype(np.float64) * window_s
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
    # across repetitions of one stimulus, the variance of a Poisson count equals its mean (Fano factor 1)
    grouped = counts.reshape(-1, CFG.n_repetitions, counts.shape[1])  # stimulus-major, repetitions inner
    mean, var = grouped.mean(axis=1), grouped.var(axis=1, ddof=1)
    assert np.mean(var) / np.mean(mean) == pytest.approx(1.0, abs=0.08)


def test_seeded(stimuli, recording):
    again = analyses.simulated_recording(stimuli, CFG)
    np.testing.assert_array_equal(again.values, recording.values)
    other = analyses.simulated_recording(stimuli, analyses.SimulatedRecordingConfig(
        **{**CFG.__dict__, "seed": 1}))
    assert not np.array_equal(other.values, recording.values)


def test_units_read_images_not_labels(stimuli, recording):
    # Swap the texture/noise labels: identical responses, so any texture preference comes from the images.
    swapped = stimuli.assign_coords(texture_type=("stimulus_id", np.where(
        stimuli.texture_type.values == "texture", "noise", "texture")))
    relabelled = analyses.simulated_recording(swapped, CFG)
    np.testing.assert_array_equal(relabelled.values, recording.values)
    mod = analyses.texture_modulation(relabelled).region_mean
    assert float(mod.sel(region="V2")) < -0.05  # the preference follows the images


@pytest.mark.parametrize("seed", [0, 1])
def test_v2_prefers_textures_v1_does_not(stimuli, seed):
    a = analyses.simulated_recording(stimuli, analyses.SimulatedRecordingConfig(
        **{**CFG.__dict__, "seed": seed}))
    mean = analyses.texture_modulation(a).region_mean
    v1, v2 = float(mean.sel(region="V1")), float(mean.sel(region="V2"))
    assert abs(v1) < 0.03
    assert v2 > 0.1
    assert v2 > v1 + 0.08


def test_v1_energy_is_blind_to_phase():
    # V1 complex cells pool energy; with full-field pooling the drive of an image and of its phase-randomized
    # version are identical (Parseval), so V1 modulation vanishes for units that see the whole image.
    s = sparse_texture_set(n_families=2, n_samples=4, seed=3)
    wide = analyses.SimulatedRecordingConfig(spatial_frequencies=(2.0, 4.0), n_v1=20, n_v2=0,
                                             v1_pool_wavelengths=200.0, n_repetitions=2000, baseline_rate=0.0)
    a = analyses.simulated_recording(s, wide)  # Poisson noise averaged away by many repetitions
    mod = analyses.texture_modulation(a).modulation.values
    assert np.all(np.abs(mod) < 0.015)  # Poisson noise of 2000 trials: s.e. about 0.003


def test_time_bins_and_window(stimuli):
    cfg = analyses.SimulatedRecordingConfig(**{**CFG.__dict__, "time_bin_ms": 10.0, "n_repetitions": 6})
    a = analyses.simulated_recording(stimuli, cfg)
    assert a.dims == ("presentation", "neuroid", "time_bin")
    assert a.sizes["time_bin"] == 30
    np.testing.assert_array_equal(a.time_bin_start.values, np.arange(0, 300, 10.0))
    # before the V1 latency only spontaneous activity: lower than in the response window
    early = a.isel(time_bin=slice(0, 4)).mean().item()
    window = analyses.average_time(a).mean().item()
    assert early < 0.5 * window
    mean = analyses.texture_modulation(a).region_mean
    assert float(mean.sel(region="V2")) > float(mean.sel(region="V1")) + 0.05


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_repetitions=1), "n_repetitions must be an integer >= 2"),
    (dict(spatial_frequencies=(16.0,)), "above a quarter of the sampling rate"),
    (dict(spatial_frequencies=(0.1,)), "below one cycle per image"),
    (dict(v2_product_weight=(0.8, 0.2)), "v2_product_weight"),
    (dict(n_v1=0, n_v2=0), "must be positive"),
    (dict(time_bin_ms=10.0, duration_ms=100.0), "must cover the response window"),
])
def test_rejects_bad_configs(stimuli, kwargs, message):
    with pytest.raises(ValueError, match=message):
        analyses.simulated_recording(stimuli, analyses.SimulatedRecordingConfig(**kwargs))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_default_textures_reproduce_freeman_2013(tmp_path):
    """The embedded default: Portilla-Simoncelli textures (about 2 minutes) and the default recording."""
    stim = analyses.texture_stimuli(cache_dir=tmp_path)
    mean = analyses.texture_modulation(analyses.simulated_recording(stim)).region_mean
    v1, v2 = float(mean.sel(region="V1")), float(mean.sel(region="V2"))
    assert abs(v1) < 0.03 and v2 > v1 + 0.03
