"""lcl.export_brainscore / ``python -m lcl export-brainscore`` (issue #16, plugin part).

The exported ``model.py`` is imported in a separate, isolated interpreter (``python -I``, run outside the repository,
with an import hook that refuses ``lcl``, ``data``, ``geometry``, ``decoding`` and ``analyses``), fed image files
through its own preprocessing, and its activations are compared with ``data.record`` on the trained model:

- with the same batches, exactly: the plugin performs the same float32 operations in the same order on the same
  torch build and thread count (tests/_tolerance.py: such computations compare exactly);
- one image per batch (Brain-Score batches differently), within :func:`v1v2_error_bound`, the float32 rounding
  bound of tests/_tolerance.py carried through the stages' nonlinear steps.

Bad input is a ``ValueError`` naming the problem (one ``error:`` line and exit status 2 on the command line), and
nothing is written then; the plugin folder appears whole or not at all.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import data
import lcl
from _tolerance import assert_close_within, gamma, unit_roundoff

REPO = Path(__file__).resolve().parents[1]
SIDE = 64  # image side the plugins are exported for


# ------------------------------------------------------------------------------------------------ error bound
def _g(n: int) -> float:
    return gamma(torch.float32, n)


def _conv_bound(v, e, weight, bias=None, *, stride=1, groups=1, padded=None):
    """A linear step ``conv(x, W) + b`` in float32 of an input known as ``v`` (float64) within ``e``.

    Returns the float64 value and the bound: the carried error ``|W| * e`` plus the rounding of an inner product of
    ``n`` terms (``+ 1`` for a bias), ``gamma_n (|W| * (|v| + e) + |b|)`` (tests/_tolerance.py).
    """
    n = weight[0].numel() + (bias is not None)
    w = weight.double()
    b = None if bias is None else bias.double()
    value = F.conv2d(v, w, b, stride=stride, groups=groups)
    scale = F.conv2d(v.abs() + e, w.abs(), None if b is None else b.abs(), stride=stride, groups=groups)
    return value, F.conv2d(e, w.abs(), stride=stride, groups=groups) + _g(n) * scale


def _square_bound(v, e):
    u = unit_roundoff(torch.float32)
    return v * v, e * (2 * v.abs() + e) + u * (v.abs() + e) ** 2


def _plus_bound(v, e, c: float):
    """``x + c`` with ``c`` a positive constant rounded to float32 (the same in both evaluations)."""
    u = unit_roundoff(torch.float32)
    out = v + c
    return out, e + u * (out.abs() + e) + u * c


def _power_bound(v, e, q: float, floor: float):
    """``x ** q`` of a positive ``x >= floor``: ``|x^q - y^q| <= q xi^(q-1) |x - y|`` (mean value theorem) plus the
    rounding of sqrt (correctly rounded: u) or pow (within 2 ulp: 4u)."""
    u = unit_roundoff(torch.float32)
    lo = torch.clamp(v - e, min=floor)
    hi = v + e
    slope = q * (hi ** (q - 1) if q >= 1 else lo ** (q - 1))
    return v ** q, slope * e + (u if q == 0.5 else 4 * u) * hi ** q


def _stage_bound(stage: lcl.Stage, v, e):
    cfg = stage.config
    if not isinstance(stage.whiten, torch.nn.Identity):
        v, e = _conv_bound(v, e, stage.whiten.kernel, groups=stage.whiten.channels)
    if cfg.center_input:
        u = unit_roundoff(torch.float32)
        v = v - stage.input_mean.double().view(1, -1, 1, 1)
        e = e + u * (v.abs() + e)
    v, e = _conv_bound(v, e, stage.conv.weight, stage.conv.bias)
    v = torch.relu(v)  # 1-Lipschitz: the error carries over
    v, e = _square_bound(v, e)
    if cfg.pool > 1:
        v, e = _conv_bound(v, e, stage.pool.kernel, groups=cfg.channels)
    eps = stage.pool.eps
    v, e = _plus_bound(v, e, eps)
    if cfg.exponent != 2.0:
        v, e = _power_bound(v, e, cfg.exponent / 2, eps / 2)
    if not (cfg.downsample_kernel == 1 and cfg.stride == 1):
        v, e = _conv_bound(v, e, stage.downsample.kernel, stride=cfg.stride, groups=cfg.channels)
    if cfg.divisive_norm:
        u = unit_roundoff(torch.float32)
        sq, sq_e = _square_bound(v, e)
        c = v.shape[1]
        m = sq.mean(dim=1, keepdim=True)
        m_e = sq_e.mean(dim=1, keepdim=True) + _g(c) * (sq + sq_e).mean(dim=1, keepdim=True)
        pad = (1, 1, 1, 1)
        m, m_e = F.pad(m, pad, mode="replicate"), F.pad(m_e, pad, mode="replicate")
        m, m_e = _conv_bound(m, m_e, stage.norm.kernel)
        m, m_e = _plus_bound(m, m_e, 1e-12)
        r, r_e = _power_bound(m, m_e, 0.5, 0.5e-12)
        d, d_e = _plus_bound(r, r_e, cfg.norm_sigma)
        d_lo = torch.clamp(d - d_e, min=0.5 * cfg.norm_sigma)
        e = e / d_lo + v.abs() * d_e / d_lo ** 2 + u * (v.abs() + e) / d_lo
        v = v / d
    return v, e


def v1v2_error_bound(model: lcl.V1V2, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Per activation, a bound on ``|float32 result - exact result|`` of ``model`` on ``images``, in any summation
    order: one float32 evaluation is within it, two differ by at most twice it.

    The stages are followed step by step in float64 (the exact values, up to float64 rounding, which is far below
    these bounds): linear steps as tests/_tolerance.py derives them (carried error through ``|W|`` plus
    ``gamma_n`` times the sum of absolute terms), ReLU 1-Lipschitz, squares ``|x^2 - y^2| = |x - y| |x + y|``,
    powers and square roots by the mean value theorem on ``[max(x - e, floor), x + e]`` where the floor is half the
    added ``eps`` (the pooled energy is at least ``eps``), divisive normalization through its (>= sigma)
    denominator. Each rounding adds ``u`` (float32 unit roundoff) of the result's magnitude.
    """
    v = images.double()
    e = torch.zeros_like(v)
    out = {}
    with torch.no_grad():
        for name, stage in (("stage1", model.stage1), ("stage2", model.stage2)):
            v, e = _stage_bound(stage, v, e)
            out[name] = e.reshape(e.shape[0], -1).numpy()
    return out


def test_error_bound_holds_against_float64():
    """The bound really bounds float32 against float64 on a model with every step (whitening, centring, bias,
    powers 1, 1.5 and 3, divisive normalization)."""
    torch.manual_seed(0)
    cfg = lcl.ModelConfig(whiten=5, stage1=lcl.StageConfig(channels=4, kernel=5, bias=True, exponent=1.5,
                                                             divisive_norm=True, init_scale=1.0),
                          stage2=lcl.StageConfig(channels=5, kernel=3, center_input=True, exponent=3.0,
                                                 init_scale=1.0))
    model = lcl.V1V2(cfg).eval()
    model.stage2.input_mean.copy_(torch.rand(4))
    x = torch.rand(3, 1, 48, 48)
    bound = v1v2_error_bound(model, x)
    exact = copy.deepcopy(model).double()
    with torch.no_grad():
        for stage in (1, 2):
            got = model.features(x, stage).reshape(3, -1).double().numpy()
            want = exact.features(x.double(), stage).reshape(3, -1).numpy()
            assert_close_within(got, want, bound[f"stage{stage}"])
            assert (bound[f"stage{stage}"] < 1e-3 * np.abs(want).max()).all()  # a bound, not a blanket


# ------------------------------------------------------------------------------------------------ runs
def tiny_config(**components) -> lcl.LCLConfig:
    """The demo config's shape at a few seconds: 4 and 6 filters, 48-px patches of 64-px photographs, 2 + 2 steps."""
    base = lcl.LCLConfig.preset(
        "demo",
        model={"stage1": {"channels": 4}, "stage2": {"channels": 6}}, data={"image_size": SIDE},
        train={"steps": (2, 2), "batch_size": 8, "patch_size": 48, "checkpoint_every": 100, "progress": False},
        optim={"warmup_steps": 1},
    )
    return base.replace(**components) if components else base


def _fake_run(folder: Path, config: lcl.LCLConfig, seed: int) -> Path:
    """A run folder holding a model.pt of random (not trained) weights: other architectures without training."""
    torch.manual_seed(seed)
    model = lcl.V1V2(config.model)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        for stage in model.stages:
            if stage.config.center_input:
                stage.input_mean.copy_(torch.rand_like(stage.input_mean))
    folder.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": config.to_dict(), "provenance": {}, "silent_fraction": {}},
               folder / "model.pt")
    return folder


def _arch(**model) -> lcl.LCLConfig:
    return lcl.LCLConfig().replace(model=model)


# trained: the demo's stage settings (stage 2 centred, no bias, energy output) and the opposite ones
TRAINED = {
    "demo": {},
    "variant": {"model": {"stage1": {"bias": True}, "stage2": {"center_input": False, "bias": True,
                                                                "exponent": 1.0}}},
}
# untrained (random weights): the remaining switches
FAKE = {
    "rgb_norm": _arch(in_channels=3, whiten=5,
                      stage1={"channels": 3, "kernel": 5, "pool": 1, "bias": True, "exponent": 1.5,
                              "divisive_norm": True},
                      stage2={"channels": 4, "kernel": 3, "pool": 2, "downsample_kernel": 3, "stride": 3,
                              "center_input": True, "bias": True, "exponent": 0.5, "divisive_norm": True}),
    "no_blur": _arch(whiten=0, stage1={"channels": 3, "kernel": 7, "downsample_kernel": 1, "stride": 1,
                                       "exponent": 2.0},
                     stage2={"channels": 4, "kernel": 3, "downsample_kernel": 2, "stride": 1, "exponent": 3.0}),
}

# The plugin's model.py in an interpreter that cannot import the workbench: every import of one of its packages
# raises. It preprocesses the image files and records both stages in the batches it is told.
_ISOLATED = r'''
import importlib.abc, importlib.util, json, sys
BLOCKED = {"lcl", "data", "geometry", "decoding", "analyses"}


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"the plugin imports the workbench: {name}")
        return None


sys.meta_path.insert(0, Refuse())
sys.dont_write_bytecode = True
import numpy as np
import torch

job = json.loads(sys.argv[1])
torch.set_num_threads(job["threads"])
out = {}
for key, item in job["plugins"].items():
    spec = importlib.util.spec_from_file_location(f"plugin_{key}", item["dir"] + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load_model()
    images = module.preprocess(item["images"])
    out[f"{key}/images"] = images
    x = torch.from_numpy(images)
    for label, batch in (("same", item["batch"]), ("single", 1)):
        parts = {"stage1": [], "stage2": []}
        with torch.no_grad():
            for start in range(0, len(x), batch):
                s1 = model.stage1(x[start:start + batch])
                parts["stage1"].append(s1.reshape(len(s1), -1).numpy())
                parts["stage2"].append(model.stage2(s1).reshape(len(s1), -1).numpy())
        for layer, chunks in parts.items():
            out[f"{key}/{label}/{layer}"] = np.concatenate(chunks)
np.savez(job["out"], **out)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"leaked": leaked, "torch": torch.__version__}))
'''


def _write_pngs(stimuli, folder: Path) -> list[str]:
    csv_path, zip_path = data.write_brainscore_stimuli(stimuli, folder / "stimuli.csv", folder / "stimuli.zip")
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(folder / "images")
    return [str(folder / "images" / f"{sid}.png") for sid in stimuli["stimulus_id"].values]


def _odd_images(folder: Path) -> tuple[list[str], str]:
    """Files of other sizes and formats (for data.image_folder), and one smaller than SIDE (upsampled)."""
    import imageio.v3 as iio

    rng = np.random.default_rng(3)
    folder.mkdir(parents=True)
    iio.imwrite(folder / "a_gray.png", rng.integers(0, 256, (80, 96), dtype=np.uint8))
    iio.imwrite(folder / "b_rgb.png", rng.integers(0, 256, (70, 70, 3), dtype=np.uint8))
    iio.imwrite(folder / "c_rgba.png", rng.integers(0, 256, (SIDE, SIDE + 9, 4), dtype=np.uint8))
    iio.imwrite(folder / "d_16bit.png", rng.integers(0, 65536, (101, 72), dtype=np.uint16))
    small = folder.parent / "small.png"
    iio.imwrite(small, rng.integers(0, 256, (40, 52), dtype=np.uint8))
    return sorted(str(p) for p in folder.iterdir()), str(small)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Trained and random-weight runs, exported (the demo one through the command line), run in isolation."""
    from lcl.__main__ import main

    root = tmp_path_factory.mktemp("export")
    runs = {}
    for name, changes in TRAINED.items():
        runs[name] = root / "runs" / f"lcl_{name}"
        lcl.train(tiny_config(**changes), runs[name])
    for name, config in FAKE.items():
        runs[name] = _fake_run(root / "runs" / f"lcl_{name}", config, seed=len(name))
    plugins = {"demo": root / "plugins" / "demo"}
    assert main(["export-brainscore", str(runs["demo"]), "--out", str(plugins["demo"]), "--image-size",
                 str(SIDE)]) == 0
    for name in runs:
        if name != "demo":
            plugins[name] = lcl.export_brainscore(runs[name], root / "plugins" / name, image_size=SIDE)
    photos = data.natural_images(size=SIDE, names=["camera", "coins", "moon", "astronaut", "coffee"])
    images = np.concatenate([photos["image"].values, np.random.default_rng(0).random((2, SIDE, SIDE))])
    ids = [*photos["stimulus_id"].values.tolist(), "noise0", "noise1"]
    files = _write_pngs(data.stimulus_set(images, stimulus_id=ids), root / "stimuli")
    odd, small = _odd_images(root / "odd" / "folder")
    job = {"threads": torch.get_num_threads(), "out": str(root / "activations.npz"),
           "plugins": {name: {"dir": str(p), "images": files, "batch": 32} for name, p in plugins.items()}}
    job["plugins"]["odd"] = {"dir": str(plugins["demo"]), "images": [*odd, small], "batch": 32}
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run([sys.executable, "-I", "-c", _ISOLATED, json.dumps(job)], capture_output=True,
                          text=True, cwd=root, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # what the workbench records: the same PNG files read back as a stimulus set
    reference = data.read_brainscore_stimuli(root / "stimuli" / "stimuli.csv", root / "stimuli" / "stimuli.zip")
    with np.load(root / "activations.npz") as npz:
        acts = {k: npz[k] for k in npz.files}
    return {"runs": runs, "plugins": plugins, "report": report, "acts": acts, "stimuli": reference, "root": root,
            "odd": (odd, small)}


@pytest.mark.parametrize("name", [*TRAINED, *FAKE])
def test_plugin_activations_equal_data_record(exported, name):
    assert exported["report"]["leaked"] == [] and exported["report"]["torch"] == torch.__version__
    model = lcl.load_model(exported["runs"][name])
    stimuli = exported["stimuli"]
    channels = model.config.in_channels
    ref = data.record(model, stimuli, layers=["stage1", "stage2"], channels=channels if channels > 1 else None,
                      progress=False)
    acts = exported["acts"]
    # the plugin's preprocessing of the PNG files gives exactly the workbench's stimulus tensor
    np.testing.assert_array_equal(acts[f"{name}/images"], data.stimuli_to_tensor(stimuli, channels).numpy())
    bound = v1v2_error_bound(model, data.stimuli_to_tensor(stimuli, channels))
    for layer in ("stage1", "stage2"):
        want = ref[layer].values
        assert want.shape == acts[f"{name}/same/{layer}"].shape and np.isfinite(want).all()
        # same operations, same order, same batches, same torch and threads: bit-identical
        np.testing.assert_array_equal(acts[f"{name}/same/{layer}"], want, err_msg=f"{name} {layer}")
        # one image per batch, as Brain-Score batches differently: within the float32 rounding bound of both
        single = acts[f"{name}/single/{layer}"]
        assert_close_within(single, want, 2 * bound[layer], err_msg=f"{name} {layer}")


def test_plugin_preprocessing_is_the_workbench_resize(exported):
    """Other sizes and formats: centre crop + anti-aliased resize as data.image_folder, upsampling as
    skimage.transform.resize (which the workbench's folder loader refuses)."""
    from skimage.transform import resize

    files, small = exported["odd"]
    got = exported["acts"]["odd/images"]
    want = data.image_folder(Path(files[0]).parent, size=SIDE)
    assert want["stimulus_id"].values.tolist() == [Path(f).name for f in files]
    np.testing.assert_array_equal(got[:len(files), 0], want["image"].values)
    crop = data.read_image(small)[:, 6:46]
    np.testing.assert_array_equal(got[-1, 0], resize(crop, (SIDE, SIDE), order=1, anti_aliasing=True,
                                                     preserve_range=True).astype(np.float32))


def test_plugin_files(exported):
    plugin = exported["plugins"]["demo"]
    assert sorted(p.name for p in plugin.iterdir()) == sorted([*lcl._export.PLUGIN_FILES, "region_layer_map"])
    assert not [p for p in plugin.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left
    init = (plugin / "__init__.py").read_text()
    assert "model_registry['lcl_demo'] = lambda: ModelCommitment(" in init  # what Brain-Score's plugin search reads
    assert 'region_layer_map={"V1": "stage1", "V2": "stage2"}' in init and "layers=LAYERS" in init
    for name in ("__init__.py", "model.py", "test.py"):
        compile((plugin / name).read_text(), str(plugin / name), "exec")  # valid Python
    model_py = (plugin / "model.py").read_text()
    assert "IMAGE_SIZE = 64" in model_py and "VISUAL_DEGREES = 8.0" in model_py
    assert json.loads((plugin / "region_layer_map" / "lcl_demo.json").read_text()) == {"V1": "stage1",
                                                                                     "V2": "stage2"}
    assert (plugin / "requirements.txt").read_text().split() == ["torch", "numpy", "scipy", "pillow"]
    weights = torch.load(plugin / "weights.pt", weights_only=True)
    trained = lcl.load_model(exported["runs"]["demo"])
    assert set(weights) == {*trained.state_dict(), "stage1.whiten.kernel"}
    for key, value in trained.state_dict().items():
        assert torch.equal(weights[key], value), key
    assert torch.equal(weights["stage1.whiten.kernel"], trained.stage1.whiten.kernel)
    meta = json.loads((plugin / "lcl_export.json").read_text())
    assert meta["source"] == str((exported["runs"]["demo"] / "model.pt").resolve())
    assert meta["receptive_field_px"] == [trained.receptive_field(1), trained.receptive_field(2)]
    assert meta["config"] == json.loads(json.dumps(trained.lcl_config.to_dict(), default=list))


def test_defaults_follow_the_run(exported, tmp_path):
    out = lcl.export_brainscore(exported["runs"]["variant"], tmp_path / "plugin", visual_degrees=4)
    meta = json.loads((out / "lcl_export.json").read_text())
    assert meta["image_size"] == lcl.load_model(exported["runs"]["variant"]).lcl_config.data.image_size
    assert meta["visual_degrees"] == 4.0 and meta["identifier"] == "lcl_variant"
    assert "VISUAL_DEGREES = 4.0" in (out / "model.py").read_text()


# ------------------------------------------------------------------------------------------------ bad input
def _checkpoint(path: Path, payload) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def _bad_cases(run: Path, tmp: Path) -> dict[str, tuple[dict, str]]:
    config = lcl.load_model(run).lcl_config
    truncated = tmp / "truncated"
    _checkpoint(truncated / "model.pt", {"config": {}, "model": {"w": torch.zeros(20000)}})
    raw = (truncated / "model.pt").read_bytes()
    (truncated / "model.pt").write_bytes(raw[:len(raw) // 2])
    _checkpoint(tmp / "foreign" / "model.pt", {"weights": torch.zeros(3)})
    other = lcl.V1V2(config.replace(model={"stage1": {"channels": 5}}).model)
    _checkpoint(tmp / "mismatch" / "model.pt", {"config": config.to_dict(), "model": other.state_dict()})
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    _checkpoint(tmp / "unfinished" / "checkpoint.pt", {**state, "complete": False, "phase_index": 1, "step": 1})
    (tmp / "empty_run").mkdir()
    (tmp / "full").mkdir()
    (tmp / "full" / "keep.txt").write_text("mine")
    (tmp / "a_file").write_text("x")
    return {
        "missing run": ({"run_dir": tmp / "nope", "out": tmp / "p"}, "no such run directory"),
        "not a run": ({"run_dir": tmp / "empty_run", "out": tmp / "p"}, "is not an LCL run"),
        "truncated": ({"run_dir": truncated, "out": tmp / "p"}, "cannot read the checkpoint"),
        "foreign": ({"run_dir": tmp / "foreign", "out": tmp / "p"}, "is not an LCL checkpoint"),
        "mismatch": ({"run_dir": tmp / "mismatch", "out": tmp / "p"}, "do not make an lcl.V1V2"),
        "unfinished": ({"run_dir": tmp / "unfinished", "out": tmp / "p"}, "training has not finished"),
        "non-empty out": ({"run_dir": run, "out": tmp / "full"}, "exists and is not empty"),
        "out is a file": ({"run_dir": run, "out": tmp / "a_file"}, "is not a folder"),
        "out is the run": ({"run_dir": run, "out": run, "force": True}, "would replace the run folder"),
        "hidden out": ({"run_dir": run, "out": tmp / "_plugin"}, "Brain-Score ignores"),
        "identifier": ({"run_dir": run, "out": tmp / "p", "identifier": "a'b"}, "identifier"),
        "image size": ({"run_dir": run, "out": tmp / "p", "image_size": 10}, "receptive field"),
        "image size type": ({"run_dir": run, "out": tmp / "p", "image_size": 64.0}, "image_size"),
        "degrees": ({"run_dir": run, "out": tmp / "p", "visual_degrees": float("nan")}, "visual_degrees"),
    }


def test_bad_input_is_a_value_error_naming_it(exported, tmp_path):
    run = exported["runs"]["demo"]
    for case, (kwargs, words) in _bad_cases(run, tmp_path).items():
        before = sorted(p.name for p in tmp_path.iterdir())
        with pytest.raises(ValueError, match=words.replace("(", r"\(")):
            lcl.export_brainscore(**kwargs)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, case  # nothing written
        assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    # an unfinished run exports on request
    out = lcl.export_brainscore(tmp_path / "unfinished", tmp_path / "p", allow_incomplete=True)
    assert json.loads((out / "lcl_export.json").read_text())["complete"] is False


def test_force_replaces_and_a_failed_export_leaves_the_old_plugin(exported, tmp_path, monkeypatch):
    run = exported["runs"]["demo"]
    out = tmp_path / "plugin"
    out.mkdir()
    (out / "old.txt").write_text("old")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(lcl._export, "_verify", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        lcl.export_brainscore(run, out, force=True, image_size=SIDE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugin"]  # no temporary folder left
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    monkeypatch.undo()
    lcl.export_brainscore(run, out, force=True, image_size=SIDE)
    assert "old.txt" not in {p.name for p in out.iterdir()} and (out / "weights.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugin"]
    empty = tmp_path / "empty"
    empty.mkdir()
    lcl.export_brainscore(run, empty, image_size=SIDE)  # an empty folder needs no --force
    assert (empty / "model.py").is_file()


def test_cli_errors_are_one_line(exported, tmp_path, capsys):
    from lcl.__main__ import _UsageError, main

    run = exported["runs"]["demo"]
    r = subprocess.run([sys.executable, "-m", "lcl", "export-brainscore", str(tmp_path / "nope"), "--out",
                        str(tmp_path / "p")], capture_output=True, text=True, cwd=REPO, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [f"error: no such run directory: {tmp_path / 'nope'}"]
    for case, (kwargs, words) in _bad_cases(run, tmp_path).items():
        if not isinstance(kwargs.get("image_size", 1), int):
            continue
        argv = ["export-brainscore", str(kwargs["run_dir"]), "--out", str(kwargs["out"])]
        for key in ("identifier", "image_size", "visual_degrees"):
            if key in kwargs:
                argv += [f"--{key.replace('_', '-')}", str(kwargs[key])]
        argv += ["--force"] if kwargs.get("force") else []
        assert main(argv) == 2, case
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], (case, err)
    for flag, value in (("--image-size", "big"), ("--visual-degrees", "wide")):
        assert main(["export-brainscore", str(run), "--out", str(tmp_path / "q"), flag, value]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and flag in err[0] and value in err[0], err
    with pytest.raises(_UsageError):
        main(["export-brainscore", "--debug", str(tmp_path / "nope"), "--out", str(tmp_path / "p")])
    assert not (tmp_path / "p").exists() and not (tmp_path / "q").exists()
