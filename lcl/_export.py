"""Export a trained LCL run as a self-contained Brain-Score model plugin (``python -m lcl export-brainscore``).

The plugin folder holds a torch-only re-implementation of :class:`lcl.V1V2` (``model.py``, which never imports
this project), the trained weights as a plain state dict (``weights.pt``, read with ``torch.load(...,
weights_only=True)``), a ``ModelCommitment`` registration with an explicit layer map (``__init__.py``: no layer
search, which would need Brain-Score's servers), ``requirements.txt``, a Brain-Score style ``test.py``,
``region_layer_map/<identifier>.json`` and ``lcl_export.json`` (where the weights came from).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import pprint
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ._plugin_files import _BIBTEX, _INIT_PY, _MODEL_PY, _REQUIREMENTS, _TEST_PY

__all__ = ["export_brainscore", "PLUGIN_FILES", "LAYERS", "REGION_LAYER_MAP"]

LAYERS = ("stage1", "stage2")
REGION_LAYER_MAP = {"V1": "stage1", "V2": "stage2"}
#: The files every exported plugin holds (plus the folder ``region_layer_map``).
PLUGIN_FILES = ("__init__.py", "model.py", "weights.pt", "requirements.txt", "test.py", "lcl_export.json")
#: Visual angle the workbench gives its training images (``data.natural_images`` / ``data.image_folder``).
DEFAULT_VISUAL_DEGREES = 8.0
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_FORMAT = 1  # version of the plugin layout written here

# ------------------------------------------------------------------------------------------------ checks
def _read_run(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint file of ``run_dir`` (model.pt, else checkpoint.pt) and its contents; ValueError if none."""
    from ._train import CHECKPOINT, MODEL_FILE

    if not run_dir.exists():
        raise ValueError(f"no such run directory: {run_dir}")
    if run_dir.is_dir():
        path = run_dir / MODEL_FILE if (run_dir / MODEL_FILE).is_file() else run_dir / CHECKPOINT
        if not path.is_file():
            raise ValueError(f"{run_dir} is not an LCL run: it holds neither {MODEL_FILE} nor {CHECKPOINT}")
    else:
        path = run_dir
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - whatever unpickling this file raises, the fault is the file's
        raise ValueError(f"cannot read the checkpoint {path} (truncated or not a torch file?): "
                         f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    if not isinstance(state, dict) or not {"config", "model"} <= set(state) \
            or not isinstance(state["model"], dict):
        raise ValueError(f"{path} is not an LCL checkpoint (it needs 'config' and 'model' entries)")
    return path, state


def _default_identifier(run_dir: Path) -> str:
    name = (run_dir if run_dir.is_dir() else run_dir.parent).resolve().name
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("_.-") or "run"
    return name if name.lower().startswith("lcl") else f"lcl_{name}"


def _check_out(out: Path, force: bool, source: Path) -> None:
    if out.name.startswith((".", "_")) or not out.name:
        raise ValueError(f"plugin folder name {out.name!r} starts with '.' or '_': Brain-Score ignores such "
                         "plugin folders; choose another --out")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    src = source.resolve()
    target = out.resolve()
    if target == src or target in src.parents:
        raise ValueError(f"--out {out} would replace the run folder holding {source}; choose another folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"--out {out} exists and is not empty; pass force=True (--force) to replace it")


def _stage_dict(stage: Any) -> dict[str, Any]:
    cfg = dataclasses.asdict(stage.config)
    cfg["pool_eps"] = float(stage.pool.eps)
    return cfg


def _load_generated(model_py: Path, weights: Path) -> torch.nn.Module:
    """Import a generated model.py by file path (without touching sys.modules) and build its model."""
    spec = importlib.util.spec_from_file_location(f"_lcl_export_check_{os.getpid()}", model_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.load_model(str(weights))


# ------------------------------------------------------------------------------------------------ export
def export_brainscore(run_dir: str | os.PathLike, out: str | os.PathLike, *, identifier: str | None = None,
                      image_size: int | None = None, visual_degrees: float = DEFAULT_VISUAL_DEGREES,
                      force: bool = False, allow_incomplete: bool = False) -> Path:
    """Write a self-contained Brain-Score model plugin for a trained LCL run.

    The folder ``out`` receives ``model.py`` (a torch-only re-implementation of :class:`lcl.V1V2` with the run's
    architecture; it never imports this project), ``weights.pt`` (a plain state dict for
    ``torch.load(..., weights_only=True)``; it also holds the fixed whitening kernel, so the weights alone fix
    the computation), ``__init__.py`` (registers ``ModelCommitment(layers=["stage1", "stage2"],
    region_layer_map={"V1": "stage1", "V2": "stage2"}, visual_degrees=visual_degrees)``), ``requirements.txt``,
    ``test.py`` (Brain-Score's plugin test convention), ``region_layer_map/<identifier>.json`` and
    ``lcl_export.json`` (source checkpoint, its provenance, the export settings, the weights' SHA-256).

    The plugin's preprocessing is the workbench's: luminance in [0, 1] (``data.read_image``'s conversion),
    centre-cropped and resized to ``image_size`` pixels (``data.image_folder``'s anti-aliased resize; an image
    already that size is used unchanged), repeated to the model's input channels, float32. On images of that size
    its activations are those of ``data.record(model, stimuli, layers=["stage1", "stage2"])``: the same float32
    operations in the same order. To put the plugin into Brain-Score, copy the folder to
    ``brainscore_vision/models/<folder name>``; ``brainscore_vision.load_model(identifier)`` then finds it.

    The whole folder is written under a temporary name beside ``out`` and renamed into place, so ``out`` is
    either absent, the old folder or the complete new plugin, never a partial one. Before the rename, the
    generated ``model.py`` is imported and checked against :class:`lcl.V1V2` on random images.

    Parameters
    ----------
    run_dir
        A run folder written by :func:`lcl.train` (its ``model.pt``, else ``checkpoint.pt``), or one of those files.
    out
        The plugin folder to create. Its name is the plugin's package name under ``brainscore_vision/models``, so
        it must not start with ``.`` or ``_``.
    identifier
        Brain-Score model identifier (letters, digits, ``_ . -``); default: the run folder's name, prefixed with
        ``lcl_`` unless it starts with ``lcl``.
    image_size
        Side in pixels of the images the model sees; default: the run's ``data.image_size`` (the size of its
        training images). Must be at least the stage-2 receptive field.
    visual_degrees
        Visual angle spanned by ``image_size`` pixels (Brain-Score places each benchmark's stimuli on a field of
        this many degrees before the preprocessing); default 8, the angle the workbench gives its training
        images. To feed a benchmark's stimuli unchanged, use the stimuli's degrees and pixel size.
    force
        Replace ``out`` if it exists and is not empty.
    allow_incomplete
        Export a run whose training has not finished (only ``checkpoint.pt``, not marked complete).

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        Naming the problem: a missing run folder, a folder that is not an LCL run, an unreadable or foreign
        checkpoint, weights that do not fit the run's config, an unfinished run, an existing non-empty ``out``
        without ``force``, a bad identifier, image size or visual angle.

    Examples
    --------
    >>> import lcl, pathlib, tempfile
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "lcl_tiny"
    >>> cfg = lcl.LCLConfig.preset("demo", train={"steps": (1, 1), "batch_size": 4, "progress": False},
    ...                                    model={"stage1": {"channels": 4}, "stage2": {"channels": 4}})
    >>> _ = lcl.train(cfg, run)
    >>> plugin = lcl.export_brainscore(run, run.parent / "plugin", image_size=64)
    >>> sorted(p.name for p in plugin.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['__init__.py', 'lcl_export.json', 'model.py', 'region_layer_map', 'requirements.txt', 'test.py',
     'weights.pt']
    >>> lcl.export_brainscore(run, run.parent / "plugin")
    Traceback (most recent call last):
    ...
    ValueError: --out .../plugin exists and is not empty; pass force=True (--force) to replace it
    """
    from ._config import LCLConfig
    from ._model import V1V2

    if not isinstance(run_dir, (str, os.PathLike)) or not isinstance(out, (str, os.PathLike)):
        raise ValueError("run_dir and out must be paths")
    run_dir, out = Path(run_dir), Path(out)
    if not isinstance(force, bool) or not isinstance(allow_incomplete, bool):
        raise ValueError("force and allow_incomplete must be booleans")
    if identifier is not None and (not isinstance(identifier, str) or not _IDENTIFIER.match(identifier)):
        raise ValueError(f"identifier must be letters, digits, '_', '.' or '-' (starting with a letter or digit), "
                         f"got {identifier!r}")
    if isinstance(visual_degrees, bool) or not isinstance(visual_degrees, (int, float)) \
            or not math.isfinite(visual_degrees) or visual_degrees <= 0:
        raise ValueError(f"visual_degrees must be a positive number, got {visual_degrees!r}")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or image_size < 1):
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    source, state = _read_run(run_dir)
    _check_out(out, force, source)
    try:
        config = LCLConfig.from_dict(state["config"])
        model = V1V2(config.model)
        model.load_state_dict(state["model"])
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{source}: the weights and config do not make an lcl.V1V2: "
                         f"{' '.join(str(exc).split())}") from exc
    if state.get("complete") is False and not allow_incomplete:
        raise ValueError(f"{source}: training has not finished (phase {state.get('phase_index')}, step "
                         f"{state.get('step')}); resume it, or pass allow_incomplete=True (--allow-incomplete)")
    model.eval()
    image_size = int(config.data.image_size) if image_size is None else image_size
    rf = model.receptive_field(2)
    if image_size < rf:
        raise ValueError(f"image_size {image_size} is smaller than the stage-2 receptive field ({rf} px)")
    identifier = identifier or _default_identifier(run_dir)

    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if config.model.whiten:
        weights["stage1.whiten.kernel"] = model.stage1.whiten.kernel.detach().cpu().contiguous().clone()
    arch = {"in_channels": config.model.in_channels, "whiten": config.model.whiten,
            "stage1": _stage_dict(model.stage1), "stage2": _stage_dict(model.stage2)}
    expected = {f"stage{i}": (getattr(config.model, f"stage{i}").channels, model.output_size(image_size, i))
                for i in (1, 2)}
    subs = {"__ID_REPR__": repr(identifier), "__ID__": identifier, "__SOURCE__": str(source),
            "__CONFIG__": pprint.pformat(arch, sort_dicts=False, width=100),
            "__IMAGE_SIZE__": repr(image_size), "__VISUAL_DEGREES__": repr(float(visual_degrees)),
            "__BIBTEX__": _BIBTEX, "__EXPECTED__": repr(expected)}

    def render(template: str) -> str:
        for key, val in subs.items():
            template = template.replace(key, val)
        return template

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        torch.save(weights, tmp / "weights.pt")
        digest = hashlib.sha256((tmp / "weights.pt").read_bytes()).hexdigest()
        (tmp / "model.py").write_text(render(_MODEL_PY))
        (tmp / "__init__.py").write_text(render(_INIT_PY))
        (tmp / "test.py").write_text(render(_TEST_PY))
        (tmp / "requirements.txt").write_text(_REQUIREMENTS)
        (tmp / "region_layer_map").mkdir()
        (tmp / "region_layer_map" / f"{identifier}.json").write_text(json.dumps(REGION_LAYER_MAP, indent=2) + "\n")
        meta = {"format": _FORMAT, "identifier": identifier, "source": str(source.resolve()),
                "image_size": image_size, "visual_degrees": float(visual_degrees), "layers": list(LAYERS),
                "region_layer_map": REGION_LAYER_MAP, "receptive_field_px": [model.receptive_field(1), rf],
                "weights_sha256": digest, "config": json.loads(json.dumps(state["config"], default=list)),
                "provenance": json.loads(json.dumps(state.get("provenance", {}), default=str)),
                "silent_fraction": state.get("silent_fraction", {}), "complete": state.get("complete", True)}
        (tmp / "lcl_export.json").write_text(json.dumps(meta, indent=2) + "\n")
        _verify(model, tmp, image_size)
        shutil.rmtree(tmp / "__pycache__", ignore_errors=True)  # the check's import may leave bytecode
        for path in [*tmp.rglob("*"), tmp]:  # durable before the rename makes them visible
            if path.is_file():
                with open(path, "rb+") as fh:
                    os.fsync(fh.fileno())
        _swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _verify(model: torch.nn.Module, folder: Path, image_size: int) -> None:
    """The generated model.py + weights.pt must compute what ``model`` computes (same ops: exactly equal)."""
    generated = _load_generated(folder / "model.py", folder / "weights.pt")
    side = min(image_size, max(64, model.receptive_field(2) + 3 * model.cumulative_stride(2)))
    x = torch.rand(2, model.config.in_channels, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name in LAYERS:
            want = model.features(x, int(name[-1]))
            got = generated.stage1(x) if name == "stage1" else generated(x)
            if want.shape != got.shape or not torch.equal(want, got):
                raise RuntimeError(f"the generated model.py differs from lcl.V1V2 at {name} (a bug in lcl._export)")


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder ``tmp`` to ``out``, replacing a missing or empty folder atomically (rename(2)) or
    a non-empty one (checked before: ``force``) by moving it aside first and deleting it once ``out`` is in place."""
    if not (out.is_dir() and any(out.iterdir())):
        os.replace(tmp, out)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, aside / out.name)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(aside / out.name, out)  # put the old plugin back
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)
