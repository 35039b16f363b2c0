"""The main job (analyses.run / plot): config handling, early rejection, a tiny end-to-end run, re-plotting and
resuming without recomputation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import analyses
import data
import decoding
import lcl

TINY = Path(__file__).resolve().parents[1] / "configs" / "pipeline_tiny.toml"


def tiny_config(**changes):
    return analyses.PipelineConfig.load(TINY).replace(**changes)


def test_tiny_toml_is_the_tiny_preset_and_the_default_is_the_demo_preset():
    assert analyses.PipelineConfig.load(TINY) == analyses.PipelineConfig.preset("tiny")
    assert analyses.PipelineConfig.load(TINY) == analyses.PipelineConfig.preset("tiny")
    assert analyses.PipelineConfig.from_dict(data.load_toml(TINY)) == analyses.PipelineConfig.preset("tiny")
    assert analyses.PipelineConfig.preset("demo") == analyses.PipelineConfig()
    cfg = analyses.PipelineConfig.preset("tiny")
    assert analyses.PipelineConfig.from_dict(cfg.to_dict()) == cfg


def test_every_step_seed_derives_from_the_root_seed():
    from analyses import _steps

    cfg = tiny_config(seed=5)
    assert _steps.stimuli_config(cfg).seed == data.derive_seed(5, "stimuli")
    assert _steps.simulated_config(cfg).seed == data.derive_seed(5, "neural")
    assert _steps.model_config(cfg, "lcl").seed == data.derive_seed(5, "lcl")
    assert _steps.model_config(cfg, "untrained").seed == data.derive_seed(5, "lcl")  # paired controls
    assert _steps.decoding_config(cfg).seed == data.derive_seed(5, "decoding")
    assert _steps.recognition_config(cfg).seed == data.derive_seed(5, "v2net")
    assert _steps.stimuli_config(tiny_config(seed=6)).seed != _steps.stimuli_config(cfg).seed


@pytest.mark.parametrize("changes, match", [
    ({"stimuli": {"seed": 3}}, "stimuli.seed = 3"),
    ({"neural": {"simulated": {"seed": 3}}}, "neural.simulated.seed"),
    ({"lcl": {"seed": 3}}, "lcl.seed"),
    ({"decoding": {"seed": 3}}, "decoding.seed"),
    ({"lcl": {"train": {"device": "cuda"}}}, "lcl.train.device"),
    ({"predictivity": {"seed": 2}}, "Brain-Score's split seed"),
])
def test_component_seeds_and_devices_are_set_by_the_main_job_only(changes, match):
    with pytest.raises(ValueError, match=match):
        analyses.PipelineConfig.from_dict(changes)


def test_device_option_is_checked():
    assert tiny_config(device="cuda:1").device == "cuda:1"
    assert tiny_config().device == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        tiny_config(device="gpu")
    with pytest.raises(TypeError, match="device must be a string"):
        tiny_config(device=0)
    import torch

    if torch.cuda.device_count() < 8:
        with pytest.raises(ValueError, match="device"):
            analyses.validate_pipeline_config(tiny_config(device="cuda:7"))
    from analyses import _steps

    cfg = tiny_config(device="cuda:1")
    assert _steps.model_config(cfg, "lcl").train.device == "cuda:1"
    assert _steps.recognition_config(cfg).device == "cuda:1"


def _forbid(monkeypatch, *targets):
    def boom(*args, **kwargs):
        raise AssertionError("recomputation attempted")

    for module, name in targets:
        monkeypatch.setattr(module, name, boom)


def test_config_tables_change_only_named_keys():
    cfg = analyses.PipelineConfig.from_dict({"lcl": {"train": {"steps": [7, 3]}}, "geometry": {"n_t": 9}})
    default = analyses.PipelineConfig.preset("demo")
    assert cfg.lcl.train.steps == (7, 3)
    assert cfg.lcl.train.batch_size == default.lcl.train.batch_size
    assert cfg.lcl.model == default.lcl.model
    assert cfg.geometry.n_t == 9 and cfg.geometry.cv == default.geometry.cv
    with pytest.raises(ValueError, match="n_tt"):
        analyses.PipelineConfig.from_dict({"geometry": {"n_tt": 9}})
    with pytest.raises(ValueError, match="modles"):
        analyses.PipelineConfig.from_dict({"modles": ["lcl"]})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"models": ("lcl", "alexnet")}, "unknown model"),
        ({"stages": ("stage3",)}, "bad stage"),
        ({"neural": analyses.NeuralDataConfig(source="file", path="/nonexistent/FreemanZiemba2013.nc")},
         "not found"),
        ({"neural": analyses.NeuralDataConfig(source="brainscore")}, "source"),
    ],
)
def test_bad_config_rejected_before_any_work(tmp_path, monkeypatch, changes, message):
    _forbid(monkeypatch, (lcl, "train"), (analyses._steps, "texture_stimuli"), (decoding, "run_study"))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        analyses.run(tiny_config(**changes), out)
    assert not out.exists()


def test_bad_executor_rejected_when_the_config_is_built():
    with pytest.raises(ValueError, match="executor"):
        analyses.JobsConfig(executor="kubernetes")


def test_neural_file_without_freeman_coords_rejected(tmp_path):
    a = data.assembly(np.ones((2, 2)), stimulus_id=["a", "b"], neuroid_id=["n0", "n1"])
    path = data.save(a, tmp_path / "rec.nc")
    cfg = tiny_config(neural=analyses.NeuralDataConfig(source="file", path=str(path)))
    with pytest.raises(ValueError, match="texture_family"):
        analyses.validate_pipeline_config(cfg)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    analyses.run(tiny_config(), out)
    return out


def test_tiny_run_writes_results_figures_and_report(tiny_run):
    out = tiny_run
    for name in ("stimuli", "neural", "modulation_lcl_stage1", "predictivity_lcl_stage2", "geometry_pixels",
                 "geometry_neural_V2", "modulation_neural"):
        ds = data.load(out / "results" / f"{name}.nc")
        assert ds.attrs["lcl_workbench_version"] == data.package_version()
        assert "git_commit" in ds.attrs and "config" in ds.attrs
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    for stem in ("texture_stimuli", "texture_modulation", "predictivity", "geometry", "filters_lcl",
                 "training_loss", "decoding_reconstructions"):
        assert f"{stem}.png" in pngs and (out / "figures" / f"{stem}.pdf").is_file()
    report = (out / "report.md").read_text()
    for png in pngs:
        assert f"(figures/{png})" in report
    # the manifest names every result; every named file exists
    import json

    manifest = json.loads((out / "manifest.json").read_text())["results"]
    for name in ("stimuli", "neural", "model:lcl", "model:untrained", "decoding", "modulation:lcl:stage2",
                 "predictivity:pixels", "geometry:neural:V1", "modulation:neural", "timings",
                 "figure:texture_modulation"):
        assert (out / manifest[name]).exists(), name
    assert "predictivity:neural" not in manifest
    seeds = json.loads((out / "config.json").read_text())["derived_seeds"]
    assert seeds["stimuli"] == data.derive_seed(0, "stimuli") == int(data.load(out / manifest["stimuli"]).attrs["seed"])
    # the modulation results of the neural data are those of analyses.texture_modulation on the saved recording
    neural = data.load(out / "results" / "neural.nc")
    expected = analyses.texture_modulation(neural)
    got = data.load(out / "results" / "modulation_neural.nc")
    np.testing.assert_allclose(got["region_mean"].values, expected["region_mean"].values)
    assert set(neural["source"].values.tolist()) == {"simulated"}


def test_replot_reproduces_figures_without_recomputation(tiny_run, monkeypatch):
    out = tiny_run
    before = {p.name: p.stat().st_size for p in (out / "figures").iterdir()}
    for p in (out / "figures").iterdir():
        p.unlink()
    _forbid(monkeypatch, (lcl, "train"), (analyses._steps, "texture_stimuli"), (decoding, "run_study"),
            (analyses._steps, "neural_predictivity"), (analyses._steps, "texture_modulation"),
            (analyses._steps, "simulated_recording"))
    written = analyses.plot(out)
    assert {p.name for p in written} == set(before)


def test_rerun_resumes_from_saved_outputs(tiny_run, monkeypatch):
    _forbid(monkeypatch, (lcl, "train"), (analyses._steps, "texture_stimuli"), (decoding, "run_study"),
            (analyses._steps, "neural_predictivity"), (analyses._steps, "simulated_recording"))
    analyses.run(tiny_config(), tiny_run)
    assert (tiny_run / "report.md").is_file()


def test_plot_rejects_folder_without_results(tmp_path):
    with pytest.raises(ValueError, match="no results"):
        analyses.plot(tmp_path)
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="not a manifest"):
        analyses.plot(tmp_path)


def test_cli_rejects_bad_config_with_exit_code(tmp_path, capsys):
    from analyses.__main__ import main

    bad = tmp_path / "bad.toml"
    bad.write_text('models = ["resnet"]\n')
    assert main(["run", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["run", "--device", "gpu", "--out", str(tmp_path / "o")]) == 2
    assert "device must be" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_predictivity_of_wide_features_equals_that_of_their_row_space():
    """Layers with more features than stimuli are reduced to their row space before regression: exact for PLS
    (no scaling) and ridge, checked against the same population given directly in a narrow basis."""
    rng = np.random.default_rng(0)
    n_stim, n_rep, k = 24, 4, 6
    stim = [f"s{i}" for i in range(n_stim)]
    kind = np.array(["texture", "noise"] * (n_stim // 2))
    narrow = rng.normal(size=(n_stim, k))
    basis = np.linalg.qr(rng.normal(size=(300, k)))[0].T  # k orthonormal rows in 300 dims
    wide = narrow @ basis
    rates = np.exp(narrow[:, :3] @ rng.normal(size=(3, 5)) * 0.3 + 2)
    counts = rng.poisson(np.repeat(rates, n_rep, axis=0)).astype(float)
    neural = data.assembly(counts, stimulus_id=np.repeat(stim, n_rep), neuroid_id=[f"n{i}" for i in range(5)],
                           repetition=("presentation", np.tile(np.arange(n_rep), n_stim)),
                           texture_type=("presentation", np.repeat(kind, n_rep)),
                           region=("neuroid", ["V1"] * 5))
    cfg = analyses.PredictivityConfig(n_components=4, n_splits=3, train_size=0.75, ceiling_splits=2)
    results = {}
    for name, feats in (("narrow", narrow), ("wide", wide)):
        model = data.assembly(feats, stimulus_id=stim, neuroid_id=[f"f{i}" for i in range(feats.shape[1])],
                              texture_type=("presentation", kind))
        results[name] = analyses.neural_predictivity(model, neural, cfg)
    np.testing.assert_allclose(results["wide"]["r"].values, results["narrow"]["r"].values, atol=1e-8)
    assert results["wide"].attrs["n_features"] == 300


@pytest.mark.parametrize("table, key, value, match", [
    ("geometry", "n_t", 2.5, "geometry.n_t must be an integer"),
    ("geometry", "kappa", float("nan"), "geometry.kappa must be a finite number"),
    ("geometry", "cv", 2.5, "geometry.cv must be an integer"),
    (None, "seed", "a", "seed must be an integer"),
    (None, "seed", -1, "seed must lie in"),
    ("jobs", "timeout_min", float("nan"), "jobs.timeout_min must be a finite number"),
    ("jobs", "slurm_mem_gb", -5, "jobs.slurm_mem_gb must lie in"),
    (None, "run_v2net", "no", "run_v2net must be true or false"),
    ("modulation", "readout", "peak", "modulation.readout"),
])
def test_every_pipeline_field_is_checked_when_loaded(table, key, value, match):
    import time

    t0 = time.perf_counter()
    values = {table: {key: value}} if table else {key: value}
    with pytest.raises((ValueError, TypeError), match=match):
        analyses.validate_pipeline_config(analyses.PipelineConfig.from_dict(values))
    assert time.perf_counter() - t0 < 5.0  # before any job starts


def test_manifest_stores_paths_relative_to_the_run_folder(tmp_path, monkeypatch):
    from analyses._manifest import Manifest

    monkeypatch.chdir(tmp_path)
    run = Path("run")  # a relative run folder, as `--out outputs/demo` gives
    (run / "results").mkdir(parents=True)
    m = Manifest(run).add({"stimuli": run / "results" / "stimuli.nc",
                           "modulation:lcl:stage2": (run / "results" / "m.nc").resolve()})
    m.save()
    loaded = Manifest.load(tmp_path / "run")
    assert loaded.results == {"stimuli": "results/stimuli.nc", "modulation:lcl:stage2": "results/m.nc"}
    assert loaded.path("stimuli") == tmp_path / "run" / "results" / "stimuli.nc"
    assert loaded.of_kind("modulation") == {"lcl_stage2": tmp_path / "run" / "results" / "m.nc"}
    with pytest.raises(KeyError, match="no result 'neural'"):
        loaded.path("neural")
    with pytest.raises(ValueError, match="outside the run folder"):
        m.add({"x": tmp_path / "elsewhere.nc"})
