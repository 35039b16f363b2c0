"""The manifest of a run of the main job: every result by name, saved as ``manifest.json`` in the run folder.

Steps hand each other named results instead of positions in a list, and ``plot``/``write_report`` read the
manifest instead of globbing file names. A name is ``kind`` or ``kind:label[:part]``:

====================================  =================================================================
name                                  result
====================================  =================================================================
``stimuli``                           ``results/stimuli.nc``, the stimulus set
``neural``                            ``results/neural.nc``, the (simulated or recorded) neural assembly
``model:<model>``                     ``models/<model>``, a trained (or untrained) model's folder
``decoding``                          ``decoding/results.nc``, the decoding study
``v2net``                             ``v2net/corruptions.nc``, LCL-V2Net under corruptions
``modulation:<source>[:<stage>]``     texture modulation of a representation (e.g. ``modulation:lcl:stage2``)
``predictivity:<model>:<stage>``      neural predictivity (also ``predictivity:pixels``)
``geometry:<source>[:<part>]``        manifold geometry (e.g. ``geometry:neural:V1``)
``timings``                           ``results/timings.json``
====================================  =================================================================

The file: ``{"format": "lcl-workbench manifest", "version": 1, "results": {name: path}}`` with paths relative to
the run folder, in the order the results were made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import data

FILE = "manifest.json"
_FORMAT = "lcl-workbench manifest"
_VERSION = 1


def label(name: str) -> str:
    """The display label of a result name: ``"modulation:lcl:stage2"`` -> ``"lcl_stage2"``."""
    return "_".join(name.split(":")[1:])


class Manifest:
    """Named results of one run folder (names -> paths relative to it)."""

    def __init__(self, root: str | Path, results: Mapping[str, str] | None = None) -> None:
        """``results``: names -> paths relative to ``root``, as stored in ``manifest.json``."""
        self.root = Path(root)
        self.results: dict[str, str] = {}
        for name, rel in (results or {}).items():
            if not isinstance(name, str) or not name or not isinstance(rel, str) or Path(rel).is_absolute():
                raise ValueError(f"a manifest maps names to paths relative to the run folder, got {name!r}: {rel!r}")
            self.results[name] = rel

    def add(self, results: Mapping[str, str | Path]) -> Manifest:
        """Record results (``name -> path`` of a file or folder inside the run folder, as a path of this process:
        absolute or relative to the working directory); returns ``self``."""
        root = self.root.resolve()
        for name, path in results.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"result names must be non-empty strings, got {name!r}")
            try:
                self.results[name] = str(Path(path).resolve().relative_to(root))
            except ValueError:
                raise ValueError(f"result {name!r} at {path} lies outside the run folder {root}") from None
        return self

    def path(self, name: str) -> Path:
        """The path of the result ``name``; ``KeyError`` naming the missing result and the known ones."""
        if name not in self.results:
            raise KeyError(f"the run in {self.root} has no result {name!r} (it has: {sorted(self.results)})")
        return self.root / self.results[name]

    def get(self, name: str) -> Path | None:
        """The path of the result ``name``, or ``None`` when the run has none."""
        return self.root / self.results[name] if name in self.results else None

    def of_kind(self, kind: str) -> dict[str, Path]:
        """``label -> path`` of the results ``kind:...`` in the order they were recorded."""
        return {label(n): self.root / p for n, p in self.results.items() if n.split(":")[0] == kind}

    def save(self) -> Path:
        """Write ``manifest.json`` atomically; returns its path."""
        path = self.root / FILE
        with data.atomic_write(path) as tmp:
            tmp.write_text(json.dumps({"format": _FORMAT, "version": _VERSION, "results": self.results}, indent=2))
        return path

    @classmethod
    def load(cls, root: str | Path) -> Manifest:
        """Read a run folder's ``manifest.json``; ``ValueError`` for a missing or damaged one."""
        root = Path(root)
        path = root / FILE
        if not path.is_file():
            raise ValueError(f"{root} holds no results of analyses.run (missing {FILE})")
        try:
            doc = json.loads(path.read_text())
        except (ValueError, OSError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT or not isinstance(doc.get("results"), dict):
            raise ValueError(f"{path} is not a manifest of analyses.run")
        return cls(root, doc["results"])
