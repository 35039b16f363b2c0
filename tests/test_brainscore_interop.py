"""Opt-in (``pytest -m brainscore``): files written by Brain-Score open with ``data`` and vice versa.

Brain-Score pins numpy<2 and xarray<2022.6, so it runs in its own environment: ``$LCL_BRAINSCORE_PYTHON`` if set,
else ``.venv-brainscore`` next to this repository, built on first use (torch==2.13.0 first, then brainscore-vision
with torchvision==0.28.0 as a constraint; needs PyPI). Without network the tests skip with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import data

pytestmark = pytest.mark.brainscore

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bs_python() -> str:
    if os.environ.get("LCL_BRAINSCORE_PYTHON"):
        return os.environ["LCL_BRAINSCORE_PYTHON"]
    env = REPO / ".venv-brainscore"
    py = env / "bin" / "python"
    probe = [str(py), "-c", "import brainscore_core.supported_data_standards.brainio.assemblies"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return str(py)
    constraints = env.parent / ".brainscore-constraints.txt"
    steps = [
        [sys.executable, "-m", "venv", str(env)],
        [str(py), "-m", "pip", "install", "-q", "torch==2.13.0"],
        [str(py), "-m", "pip", "install", "-q", "-c", str(constraints), "brainscore-vision"],
    ]
    constraints.write_text("torch==2.13.0\ntorchvision==0.28.0\n")
    try:
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                pytest.skip(f"could not build the Brain-Score environment ({' '.join(cmd[-2:])}): "
                            f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    finally:
        constraints.unlink(missing_ok=True)
    return str(py)


def _run(python: str, code: str) -> dict:
    proc = subprocess.run([python, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_brainscore_written_file_loads_with_from_brainscore(bs_python, tmp_path):
    path = tmp_path / "assy_test.nc"
    ref = _run(bs_python, f"""
        import json, numpy as np
        from brainscore_core.supported_data_standards.brainio.assemblies import NeuronRecordingAssembly
        from brainscore_core.supported_data_standards.brainio.packaging import write_netcdf
        rng = np.random.default_rng(0)
        values = rng.random((2, 6, 1))
        assy = NeuronRecordingAssembly(values, dims=("neuroid", "presentation", "time_bin"), coords={{
            "neuroid_id": ("neuroid", ["n0", "n1"]), "region": ("neuroid", ["V1", "V2"]),
            "stimulus_id": ("presentation", ["a", "a", "b", "b", "c", "c"]),
            "repetition": ("presentation", [0, 1, 0, 1, 0, 1]),
            "texture_family": ("presentation", [327, 327, 336, 336, 327, 327]),
            "texture_type": ("presentation", ["texture", "texture", "noise", "noise", "texture", "texture"]),
            "time_bin_start": ("time_bin", [50]), "time_bin_end": ("time_bin", [200])}})
        write_netcdf(assy, "{path}")
        print(json.dumps({{"values": values.tolist()}}))
    """)
    a = data.from_brainscore(path)
    assert a.dims == ("presentation", "neuroid", "time_bin")
    np.testing.assert_allclose(a.values, np.transpose(np.array(ref["values"]), (1, 0, 2)))
    assert a["stimulus_id"].values.tolist() == ["a", "a", "b", "b", "c", "c"]
    assert a["repetition"].values.tolist() == [0, 1, 0, 1, 0, 1]
    assert a["region"].values.tolist() == ["V1", "V2"]
    assert a["time_bin_end"].values.tolist() == [200]


def test_to_brainscore_file_loads_with_brainscore_from_files(bs_python, tmp_path):
    rng = np.random.default_rng(1)
    a = data.assembly(rng.random((3, 4)), stimulus_id=["s0", "s1", "s2"], neuroid_id=[f"u{i}" for i in range(4)],
                      category=["x", "y", "x"], layer=("neuroid", ["stage1"] * 4))
    path = data.to_brainscore(a, tmp_path / "features.nc")
    s = data.stimulus_set(rng.random((3, 8, 8)), stimulus_id=["s0", "s1", "s2"], category=["x", "y", "x"])
    csv_path, zip_path = data.write_brainscore_stimuli(s, tmp_path / "stim.csv", tmp_path / "stim.zip")
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp_path / "stim")
    got = _run(bs_python, f"""
        import json
        from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly
        from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet
        assy = NeuroidAssembly.from_files("{path}")
        stim = StimulusSet.from_files("{csv_path}", "{tmp_path / 'stim'}")
        print(json.dumps({{
            "dims": list(assy.dims),
            "values": assy.transpose("presentation", "neuroid").values.tolist(),
            "stimulus_id": [str(v) for v in assy["stimulus_id"].values],
            "category": [str(v) for v in assy["category"].values],
            "neuroid_id": [str(v) for v in assy["neuroid_id"].values],
            "stim_ids": [str(v) for v in stim["stimulus_id"]],
            "stim_paths_exist": all(__import__("os").path.exists(stim.get_stimulus(i)) for i in stim["stimulus_id"]),
        }}))
    """)
    assert set(got["dims"]) == {"presentation", "neuroid"}
    np.testing.assert_allclose(np.array(got["values"]), a.values)
    assert got["stimulus_id"] == ["s0", "s1", "s2"]
    assert got["category"] == ["x", "y", "x"]
    assert got["neuroid_id"] == ["u0", "u1", "u2", "u3"]
    assert got["stim_ids"] == ["s0", "s1", "s2"] and got["stim_paths_exist"]
