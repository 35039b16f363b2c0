"""Figures: one style, atomic PNG + PDF, and re-drawing from saved results reproduces the figure."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

import analyses
import data
from test_analyses_fixtures import sparse_texture_set


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    stim = sparse_texture_set(n_families=3, n_samples=4)
    a = analyses.simulated_recording(stim, analyses.SimulatedRecordingConfig(
        spatial_frequencies=(2.0, 4.0), n_v1=12, n_v2=12, n_repetitions=6))
    mod = analyses.texture_modulation(a)
    rng = np.random.default_rng(0)
    feats = data.assembly(rng.random((stim.sizes["stimulus_id"], 20)), stimulus_id=stim.stimulus_id.values,
                          neuroid_id=[f"f{i}" for i in range(20)])
    pred = analyses.neural_predictivity(feats, a, analyses.PredictivityConfig(n_components=5, train_size=0.75))
    paths = {"stimuli": data.save(stim, folder / "stimuli.nc"), "modulation": data.save(mod, folder / "mod.nc"),
             "predictivity": data.save(pred, folder / "pred.nc")}
    return {"stimuli": stim, "modulation": mod, "predictivity": pred}, paths, folder


def test_figure_style_is_scoped():
    before = matplotlib.rcParams["pdf.fonttype"]
    with data.figure_style():
        assert matplotlib.rcParams["pdf.fonttype"] == 42
        assert matplotlib.rcParams["axes.spines.top"] is False
    assert matplotlib.rcParams["pdf.fonttype"] == before


def test_save_figure_writes_png_and_pdf_atomically(tmp_path):
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    files = data.save_figure(fig, tmp_path / "sub" / "line.png")  # a given suffix is replaced
    assert [f.name for f in files] == ["line.png", "line.pdf"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["line.pdf", "line.png"]  # no temp files


@pytest.mark.parametrize("kind, plot", [
    ("modulation", analyses.plot_texture_modulation),
    ("predictivity", analyses.plot_predictivity),
    ("stimuli", analyses.plot_texture_stimuli),
])
def test_replot_from_saved_files_reproduces_the_figure(results, tmp_path, kind, plot):
    in_memory, paths, _ = results
    arg_mem = in_memory[kind] if kind == "stimuli" else {"model": in_memory[kind]}
    arg_file = paths[kind] if kind == "stimuli" else {"model": paths[kind]}
    first = plot(arg_mem, tmp_path / "a")
    second = plot(arg_file, tmp_path / "b")
    assert [f.suffix for f in first] == [".png", ".pdf"]
    assert first[0].stat().st_size > 5000
    assert first[0].read_bytes() == second[0].read_bytes()  # identical PNG from the file alone


def test_several_labels_in_one_figure(results, tmp_path):
    in_memory, paths, _ = results
    files = analyses.plot_predictivity({"a": paths["predictivity"], "b": in_memory["predictivity"]}, tmp_path / "p")
    assert files[0].exists()
    files = analyses.plot_texture_modulation({"a": paths["modulation"], "b": paths["modulation"]}, tmp_path / "m")
    assert files[1].exists()
    # a single Dataset (not in a mapping) is one unlabelled group
    assert analyses.plot_texture_modulation(in_memory["modulation"], tmp_path / "single")[0].exists()


def test_wrong_results_are_rejected(results, tmp_path):
    in_memory, _, _ = results
    with pytest.raises(ValueError, match="lack"):
        analyses.plot_predictivity(in_memory["modulation"], tmp_path / "x")
    with pytest.raises(ValueError, match="lack"):
        analyses.plot_texture_modulation(in_memory["predictivity"], tmp_path / "x")
    with pytest.raises(ValueError, match="no neural_predictivity results"):
        analyses.plot_predictivity({}, tmp_path / "x")
    assert not list(tmp_path.iterdir())
