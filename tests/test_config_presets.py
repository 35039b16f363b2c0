"""The config convention in lcl and decoding (issue #17): every config is a ``data.Config``, the TOML presets in
``configs/`` equal the Python presets, and each run has one root seed."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

import data
import decoding
import lcl

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# configs/<file> -> (config class, preset name). configs/pipeline_tiny.toml is the analyses pipeline's.
TOML_PRESETS = {
    "lcl_default.toml": (lcl.LCLConfig, "imagenet"),
    "lcl_demo.toml": (lcl.LCLConfig, "demo"),
    "lcl_v2net_demo.toml": (lcl.RecognitionConfig, "demo"),
}

ROOTS = (lcl.LCLConfig, lcl.RecognitionConfig, decoding.StudyConfig)


def _config_classes(module) -> list[type]:
    return [obj for name in module.__all__ if inspect.isclass(obj := getattr(module, name))
            and dataclasses.is_dataclass(obj)]


@pytest.mark.parametrize("file", sorted(TOML_PRESETS))
def test_toml_preset_equals_python_preset(file):
    cls, name = TOML_PRESETS[file]
    assert cls.load(CONFIGS / file) == cls.preset(name)


def test_every_lcl_toml_is_tested():
    assert {p.name for p in CONFIGS.glob("lcl*.toml")} == set(TOML_PRESETS)


@pytest.mark.parametrize("module", [lcl, decoding], ids=lambda m: m.__name__)
def test_every_config_follows_the_convention(module):
    classes = _config_classes(module)
    assert len(classes) >= 7
    for cls in classes:
        assert issubclass(cls, data.Config), cls
        assert cls.__dataclass_params__.frozen, cls
        assert "__post_init__" not in vars(cls), f"{cls.__name__} validates in validate(), not __post_init__"


def test_config_names_are_unique_across_packages():
    import importlib

    seen: dict[str, str] = {}
    for package in ("data", "lcl", "geometry", "decoding", "analyses"):
        for cls in _config_classes(importlib.import_module(package)):
            assert seen.setdefault(cls.__name__, package) == package, (cls.__name__, seen[cls.__name__], package)


@pytest.mark.parametrize("cls", ROOTS, ids=lambda c: c.__name__)
def test_one_root_seed_per_top_level_config(cls):
    def seeds(cfg, path=""):
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if dataclasses.is_dataclass(value):
                yield from seeds(value, f"{path}{f.name}.")
            elif "seed" in f.name:
                yield path + f.name

    for name in cls.presets():
        assert list(seeds(cls.preset(name))) == ["seed"], name
    with pytest.raises(ValueError, match="seed"):
        cls(seed=-1)


@pytest.mark.parametrize("cls", ROOTS, ids=lambda c: c.__name__)
def test_presets_round_trip_through_dicts_and_json(cls):
    for name in cls.presets():
        cfg = cls.preset(name, seed=5)
        assert cfg.seed == 5
        assert cls.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown"):
        cls.preset("no_such_preset")


def test_ablations_change_one_field_each():
    base = lcl.LCLConfig.preset("demo")
    runs = {name: base.replace(**change) for name, change in lcl.ABLATIONS.items()}
    assert runs["lcl"] == base
    assert (runs["fixed"].deform.matching, runs["fixed"].train.mode) == ("fixed", "layerwise")
    assert (runs["end_to_end"].deform.matching, runs["end_to_end"].train.mode) == ("rf", "end_to_end")


def test_environment_checks_stay_in_validate_functions(tmp_path):
    missing = str(tmp_path / "missing")
    cfg = lcl.LCLConfig().replace(data={"source": "folder", "folder": missing})  # builds: no file-system check
    with pytest.raises(ValueError, match="does not exist"):
        lcl.validate_config(cfg)
    study = decoding.StudyConfig().replace(data={"image_folder": missing})
    with pytest.raises(ValueError, match="not a directory"):
        decoding.validate_study_config(study)
    # the imagenet preset names a placeholder folder: it builds, and the run refuses it before any work
    with pytest.raises(ValueError, match="does not exist"):
        lcl.validate_config(lcl.LCLConfig.preset("imagenet"))


def test_pure_cross_checks_happen_on_construction():
    with pytest.raises(ValueError, match="larger than the images"):
        lcl.LCLConfig.preset("demo", data={"image_size": 32})
    with pytest.raises(ValueError, match="multiples"):
        decoding.StudyConfig.preset("demo", train={"patch_size": 24})
