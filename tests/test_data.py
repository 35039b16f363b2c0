"""data/: assemblies, stimulus sets, files, images, recording, Brain-Score layout."""

from __future__ import annotations

import socket

import h5py
import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data
from _tolerance import abs_forward, assert_close_within, float_tol


def _assembly(n_pres=6, n_neur=4, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return data.assembly(
        rng.normal(size=(n_pres, n_neur)),
        stimulus_id=[f"s{i}" for i in range(n_pres)],
        neuroid_id=[f"n{j}" for j in range(n_neur)],
        category=np.array(["a", "b"] * (n_pres // 2)),
        region=np.array(["V1", "V2"] * (n_neur // 2)),
        **kw,
    )


# ---------------------------------------------------------------- assemblies and validation
def test_assembly_is_plain_dataarray_with_coords_on_right_dims():
    a = _assembly()
    assert type(a) is xr.DataArray
    assert a.dims == ("presentation", "neuroid")
    assert a["category"].dims == ("presentation",)
    assert a["region"].dims == ("neuroid",)


def test_ambiguous_coordinate_length_needs_explicit_dim():
    with pytest.raises(ValueError, match="pass it as"):
        data.assembly(np.zeros((3, 3)), stimulus_id=list("abc"), neuroid_id=list("xyz"), mystery=[1, 2, 3])
    a = data.assembly(np.zeros((3, 3)), stimulus_id=list("abc"), neuroid_id=list("xyz"),
                      mystery=("neuroid", [1, 2, 3]))
    assert a["mystery"].dims == ("neuroid",)


def test_repetitions_allow_repeated_stimulus_ids_but_not_repeated_pairs():
    a = data.assembly(np.zeros((4, 1)), stimulus_id=["a", "a", "b", "b"], neuroid_id=["n"],
                      repetition=[0, 1, 0, 1])
    assert a.sizes["presentation"] == 4
    with pytest.raises(ValueError, match="duplicate"):
        data.assembly(np.zeros((4, 1)), stimulus_id=["a", "a", "b", "b"], neuroid_id=["n"],
                      repetition=[0, 0, 0, 1])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: xr.DataArray(np.zeros((2, 2)), dims=("presentation", "neuroid"),
                              coords={"neuroid_id": ("neuroid", ["a", "b"])}), "stimulus_id"),
        (lambda: xr.DataArray(np.zeros((2, 2)), dims=("presentation", "neuroid"),
                              coords={"stimulus_id": ("presentation", ["a", "b"])}), "neuroid_id"),
        (lambda: xr.DataArray(np.zeros((2, 2)), dims=("presentation", "neuroid"),
                              coords={"stimulus_id": ("presentation", ["a", "a"]),
                                      "neuroid_id": ("neuroid", ["x", "y"])}), "duplicate stimulus_id"),
        (lambda: xr.DataArray(np.zeros((2, 2)), dims=("presentation", "neuroid"),
                              coords={"stimulus_id": ("presentation", ["a", "b"]),
                                      "neuroid_id": ("neuroid", ["x", "x"])}), "duplicate neuroid_id"),
        (lambda: xr.DataArray(np.array([[np.nan, 1.0], [0, 0]]), dims=("presentation", "neuroid"),
                              coords={"stimulus_id": ("presentation", ["a", "b"]),
                                      "neuroid_id": ("neuroid", ["x", "y"])}), "NaN"),
        (lambda: xr.DataArray(np.array([[np.inf, 1.0], [0, 0]]), dims=("presentation", "neuroid"),
                              coords={"stimulus_id": ("presentation", ["a", "b"]),
                                      "neuroid_id": ("neuroid", ["x", "y"])}), "inf"),
        (lambda: xr.DataArray(np.zeros((2, 2)), dims=("neuroid", "presentation"),
                              coords={"stimulus_id": ("presentation", ["a", "b"]),
                                      "neuroid_id": ("neuroid", ["x", "y"])}), "dims"),
        (lambda: xr.DataArray(np.zeros(2), dims=("presentation",)), "dims"),
    ],
)
def test_validate_assembly_names_the_problem(make, message):
    with pytest.raises(ValueError, match=message):
        data.validate_assembly(make())


def test_constructor_rejects_coordinate_length_mismatch():
    with pytest.raises(ValueError, match="length"):
        data.assembly(np.zeros((3, 2)), stimulus_id=["a", "b"], neuroid_id=["x", "y"])
    with pytest.raises(ValueError, match="length"):
        data.assembly(np.zeros((3, 2)), stimulus_id=["a", "b", "c"], neuroid_id=["x", "y"],
                      category=("presentation", [1, 2]))


def test_validate_assembly_rejects_non_dataarray():
    with pytest.raises(TypeError, match="DataArray"):
        data.validate_assembly(np.zeros((2, 2)))


_malformed = st.fixed_dictionaries({
    "n_pres": st.integers(0, 5),
    "n_neur": st.integers(0, 5),
    "dup_stim": st.booleans(),
    "dup_neur": st.booleans(),
    "bad_value": st.sampled_from([None, np.nan, np.inf, -np.inf]),
    "drop": st.sampled_from([None, "stimulus_id", "neuroid_id"]),
    "transpose": st.booleans(),
    "extra_dim": st.booleans(),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_malformed)
def test_validate_assembly_random_inputs_raise_only_valueerror(spec):
    """Any malformed assembly raises ValueError; any well-formed one passes; nothing else escapes."""
    n_p, n_n = spec["n_pres"], spec["n_neur"]
    values = np.zeros((n_p, n_n))
    if spec["bad_value"] is not None and values.size:
        values[0, 0] = spec["bad_value"]
    stim = [f"s{i}" for i in range(n_p)]
    neur = [f"n{i}" for i in range(n_n)]
    if spec["dup_stim"] and n_p > 1:
        stim[1] = stim[0]
    if spec["dup_neur"] and n_n > 1:
        neur[1] = neur[0]
    coords = {"stimulus_id": ("presentation", stim), "neuroid_id": ("neuroid", neur)}
    if spec["drop"]:
        coords.pop(spec["drop"])
    dims = ("presentation", "neuroid")
    if spec["extra_dim"]:
        values = values[..., None, None]
        dims = dims + ("time_bin", "extra")
    da = xr.DataArray(values, dims=dims, coords=coords)
    if spec["transpose"]:
        da = da.transpose(*reversed(dims))
    malformed = (
        n_p == 0 or n_n == 0 or (spec["dup_stim"] and n_p > 1) or (spec["dup_neur"] and n_n > 1)
        or (spec["bad_value"] is not None and values.size > 0) or spec["drop"] is not None
        or spec["extra_dim"] or (spec["transpose"])
    )
    if malformed:
        with pytest.raises(ValueError):
            data.validate_assembly(da)
    else:
        assert data.validate_assembly(da) is da


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 3), lo=st.sampled_from([0.0, -0.5]), hi=st.sampled_from([1.0, 1.5, np.nan]),
       dup=st.booleans(), degrees=st.sampled_from([4.0, 0.0, -1.0]))
def test_validate_stimuli_random_inputs_raise_only_valueerror(n, lo, hi, dup, degrees):
    imgs = np.full((n, 4, 4), 0.5)
    if n:
        imgs[0, 0, 0] = lo
        imgs[0, 0, 1] = hi
    ids = [f"s{i}" for i in range(n)]
    if dup and n > 1:
        ids[1] = ids[0]
    ds = xr.Dataset({"image": (("stimulus_id", "y", "x"), imgs)}, coords={"stimulus_id": ids},
                    attrs={"degrees": degrees})
    bad = n == 0 or (n and (lo < 0 or not hi <= 1.0)) or (dup and n > 1) or degrees <= 0
    if bad:
        with pytest.raises(ValueError):
            data.validate_stimuli(ds)
    else:
        data.validate_stimuli(ds)


def test_validate_stimuli_names_range_and_dims():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.stimulus_set(np.full((1, 3, 3), 2.0))
    with pytest.raises(ValueError, match="dims"):
        data.validate_stimuli(xr.Dataset({"image": (("a", "b", "c"), np.zeros((1, 2, 2)))},
                                         attrs={"degrees": 1.0}))
    with pytest.raises(ValueError, match="'image'"):
        data.validate_stimuli(xr.Dataset())


# ---------------------------------------------------------------- files
def test_save_load_round_trip_exact(tmp_path):
    a = _assembly(attrs={"units": "spikes/s", "window": np.array([50, 200]), "n_trials": 20})
    a = a.assign_coords(sample=("presentation", np.arange(6, dtype=np.int32)),
                        gain=("neuroid", np.linspace(0, 1, 4, dtype=np.float32)))
    path = data.save(a, tmp_path / "a.nc", config={"lr": 0.5, "name": "x"}, seed=7)
    b = data.load(path)
    assert isinstance(b, xr.DataArray)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    np.testing.assert_array_equal(a.values, b.values)
    assert b.dtype == a.dtype
    for key, val in a.attrs.items():
        np.testing.assert_array_equal(b.attrs[key], val)
    assert b.attrs["seed"] == 7
    assert '"lr": 0.5' in b.attrs["config"]
    assert b.attrs["lcl_workbench_version"] == data.package_version()
    for name in a.coords:
        assert b[name].dtype.kind == a[name].dtype.kind
        np.testing.assert_array_equal(b[name].values, a[name].values)


def test_saved_files_open_with_plain_xarray_and_h5py(tmp_path):
    a = _assembly()
    path = data.save(a, tmp_path / "a.nc")
    with xr.open_dataarray(path, engine="h5netcdf") as c:
        np.testing.assert_array_equal(c.values, a.values)
        assert c["stimulus_id"].values.tolist() == a["stimulus_id"].values.tolist()
    with h5py.File(path, "r") as f:
        names = set(f.keys())
        assert {"stimulus_id", "neuroid_id", "category"} <= names
    s = data.natural_images(size=32, names=["camera", "moon"])
    p2 = data.save(s, tmp_path / "s.nc")
    ds = data.load(p2)
    assert isinstance(ds, xr.Dataset)
    xr.testing.assert_identical(s.drop_attrs(), ds.drop_attrs())
    assert ds.attrs["degrees"] == s.attrs["degrees"]


def test_exception_during_save_keeps_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "a.nc"
    first = _assembly(seed=1)
    data.save(first, path)
    before = path.read_bytes()

    def boom(self, *args, **kwargs):
        # write part of a file, then fail, as a crash in the middle of writing would
        with open(args[0], "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(xr.DataArray, "to_netcdf", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        data.save(_assembly(seed=2), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc"]  # no temp file left
    monkeypatch.undo()
    xr.testing.assert_identical(data.load(path).drop_attrs(), first.drop_attrs())


def test_save_rejects_unserialisable_attribute_before_writing(tmp_path):
    a = _assembly(attrs={"nested": {"a": 1}})
    with pytest.raises(TypeError, match="nested"):
        data.save(a, tmp_path / "a.nc")
    assert not (tmp_path / "a.nc").exists()


def test_load_missing_file():
    with pytest.raises(FileNotFoundError):
        data.load("/nonexistent/file.nc")


def test_config_from_dict_rejects_unknown_keys():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Inner:
        k: int = 1

    @dataclasses.dataclass(frozen=True)
    class Outer:
        inner: Inner = Inner()
        sizes: tuple = (1,)

    cfg = data.config_from_dict(Outer, {"inner": {"k": 3}, "sizes": [2, 3]})
    assert cfg == Outer(Inner(3), (2, 3))
    with pytest.raises(ValueError, match=r"\['kk'\] for inner\.Inner"):
        data.config_from_dict(Outer, {"inner": {"kk": 3}})


def test_update_config_changes_only_named_fields_at_any_depth():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Inner:
        k: int = 1
        m: int = 2

        def __post_init__(self):
            if self.k < 0:
                raise ValueError("k must be >= 0")

    @dataclasses.dataclass(frozen=True)
    class Outer:
        inner: Inner = Inner()
        options: dict = dataclasses.field(default_factory=lambda: {"a": 1, "b": 2})
        sizes: tuple = (1,)

    base = Outer(Inner(4, 5), {"a": 9}, (7,))
    new = data.update_config(base, {"inner": {"k": 3}, "sizes": [2, 3]})
    assert new == Outer(Inner(3, 5), {"a": 9}, (2, 3))  # m and options kept from base, not the defaults
    assert base == Outer(Inner(4, 5), {"a": 9}, (7,))  # unchanged
    # a dict-valued field (not a config) is replaced whole, a config instance replaces the field whole
    assert data.update_config(base, {"options": {"b": 1}}).options == {"b": 1}
    assert data.update_config(base, {"inner": Inner()}).inner == Inner()
    with pytest.raises(ValueError, match=r"\['kk'\] for \[x\] inner\.Inner"):
        data.update_config(base, {"inner": {"kk": 3}}, where="[x] ")
    with pytest.raises(ValueError, match="k must be >= 0"):  # the dataclass's own validation runs
        data.update_config(base, {"inner": {"k": -1}})
    with pytest.raises(TypeError, match="dataclass instance"):
        data.update_config(Outer, {})


# ---------------------------------------------------------------- images
def test_natural_images_offline_distinct_real_photographs(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    s = data.natural_images()
    data.validate_stimuli(s)
    n = s.sizes["stimulus_id"]
    assert n >= 16
    assert s.sizes["y"] >= 256 and s.sizes["x"] >= 256
    short_sides = [min(int(v) for v in shape.split("x")) for shape in s["original_shape"].values]
    assert min(short_sides) >= 256
    imgs = s["image"].values.reshape(n, -1)
    # distinct: no two photographs correlate near 1; real: natural images are not flat or white noise
    corr = np.corrcoef(imgs)
    assert np.max(np.abs(corr[~np.eye(n, dtype=bool)])) < 0.95
    assert (imgs.std(axis=1) > 0.03).all()
    # natural images have most power at low spatial frequencies (1/f^2 spectra), unlike noise
    for img in s["image"].values[:4]:
        power = np.abs(np.fft.fftshift(np.fft.fft2(img - img.mean()))) ** 2
        c = img.shape[0] // 2
        low = power[c - 16:c + 16, c - 16:c + 16].sum()
        assert low / power.sum() > 0.5
    assert len(set(s["source"].values.tolist())) == n


def test_texture_images():
    t = data.texture_images(size=64)
    assert sorted(t["texture_family"].values.tolist()) == ["brick", "grass", "gravel", "reptile_skin"]
    assert t["image"].shape == (4, 64, 64)


def test_patch_sampler_reproducible_and_correct_crops():
    s = data.natural_images(size=64, names=["camera", "moon", "coins"])
    p1 = data.sample_patches(s, 20, 16, seed=3)
    p2 = data.sample_patches(s, 20, 16, seed=3)
    p3 = data.sample_patches(s, 20, 16, seed=4)
    np.testing.assert_array_equal(p1["image"].values, p2["image"].values)
    assert not np.array_equal(p1["image"].values, p3["image"].values)
    for i in range(20):
        src = s["image"].sel(stimulus_id=p1["source_id"].values[i]).values
        y0, x0 = int(p1["y0"][i]), int(p1["x0"][i])
        np.testing.assert_array_equal(p1["image"].values[i], src[y0:y0 + 16, x0:x0 + 16])
    with pytest.raises(ValueError, match="patch size"):
        data.sample_patches(s, 2, 65)
    with pytest.raises(ValueError, match="positive"):
        data.sample_patches(s, 0, 8)


def test_image_folder_imagenet_layout(tmp_path):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            iio.imwrite(tmp_path / cls / f"{i}.png", (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    s = data.image_folder(tmp_path, size=32)
    assert s.sizes["stimulus_id"] == 4
    assert s["category"].values.tolist() == ["cat", "cat", "dog", "dog"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image"):
        data.image_folder(empty)
    with pytest.raises(ValueError, match="does not exist"):
        data.image_folder(tmp_path / "missing")


# ---------------------------------------------------------------- recording
def test_record_matches_stimuli_and_direct_forward():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 5, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(3, 4, 3),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 12 * 12, 5))
    s = data.natural_images(size=32, names=["camera", "moon", "coins", "clock", "coffee"])
    s = s.assign_coords(category=("stimulus_id", ["a", "b", "a", "b", "c"]))
    out = data.record(net, s, layers=["1", "4"], batch_size=2, regions={"1": "V1"}, progress=False)
    a1, a4 = out["1"], out["4"]
    for a in (a1, a4):
        data.validate_assembly(a)
        assert a["stimulus_id"].values.tolist() == s["stimulus_id"].values.tolist()
        assert a["category"].values.tolist() == ["a", "b", "a", "b", "c"]
        assert a["stimulus_source"].values.tolist() == s["source"].values.tolist()
        assert set(a["source"].values.tolist()) == {"model"}
    assert a1.sizes["neuroid"] == 3 * 14 * 14 and set(a1["region"].values.tolist()) == {"V1"}
    with torch.no_grad():
        x = data.stimuli_to_tensor(s)
        h = net[1](net[0](x))
        y = net(x)
    # float32 in batches of 2, 2, 1 vs one batch of 5: convolutions and the linear layer may sum in another order
    # (another oneDNN / BLAS kernel or blocking), so compare to the rounding bound of their reductions, relative to
    # the sums of absolute terms (tests/_tolerance.py): inner products of 25 + bias, 27 + bias, 576 + bias terms.
    # The outputs cancel strongly (|y| down to 1e-4 of the sum of |terms|), so a tolerance relative to the result
    # has no bound (rtol=1e-6 failed on an AMD CPU by 1.006e-6). A swapped stimulus still differs by >10x the bound.
    scale = abs_forward(net, x)
    tol1 = float_tol(torch.float32, 5 * 5 + 1, scale["1"].reshape(5, -1).numpy())
    assert_close_within(a1.values, h.reshape(5, -1).numpy(), tol1)
    assert_close_within(a4.values, y.numpy(), float_tol(torch.float32, [5 * 5 + 1, 3 * 3 * 3 + 1, 4 * 12 * 12 + 1],
                                                         scale["4"].numpy()))
    # neuroid coords locate each unit: channel c at (y, x)
    i = int(np.flatnonzero((a1["channel"].values == 2) & (a1["y"].values == 3) & (a1["x"].values == 7))[0])
    assert_close_within(a1.values[:, i], h[:, 2, 3, 7].numpy(), tol1[:, i])
    pooled = data.record(net, s, layers=["1"], pool="mean", progress=False)["1"]
    # then a mean over 14 x 14 positions (a sum of 196 terms and one division)
    assert_close_within(pooled.values, h.mean(dim=(2, 3)).numpy(),
                        float_tol(torch.float32, [5 * 5 + 1, 14 * 14], scale["1"].mean(dim=(2, 3)).numpy()))
    assert net.training  # mode restored


def test_record_rejects_unknown_layer_before_running():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3))
    s = data.stimulus_set(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="unknown layer"):
        data.record(net, s, layers=["nope"])
    with pytest.raises(ValueError, match="pool"):
        data.record(net, s, layers=["0"], pool="median")


# ---------------------------------------------------------------- Brain-Score layout (without Brain-Score)
def _brainio_style_file(path):
    """A file as BrainIO's write_netcdf makes it: MultiIndex coords reset, one variable 'data'."""
    rng = np.random.default_rng(0)
    stim = np.repeat(["img0", "img1", "img2"], 2)
    rep = np.tile([0, 1], 3)
    da = xr.DataArray(
        rng.random((2, 6, 1)), dims=("neuroid", "presentation", "time_bin"),
        coords={
            "neuroid_id": ("neuroid", ["n0", "n1"]), "region": ("neuroid", ["V1", "V2"]),
            "stimulus_id": ("presentation", stim), "repetition": ("presentation", rep),
            "texture_family": ("presentation", np.repeat([327, 336, 327], 2)),
            "texture_type": ("presentation", np.repeat(["texture", "noise", "texture"], 2)),
            "time_bin_start": ("time_bin", [50]), "time_bin_end": ("time_bin", [200]),
        })
    da = da.set_index(presentation=["stimulus_id", "repetition", "texture_family", "texture_type"],
                      neuroid=["neuroid_id", "region"], time_bin=["time_bin_start", "time_bin_end"])
    da = da.reset_index(list(da.indexes))
    da.to_dataset(name="data").to_netcdf(path, engine="h5netcdf")
    return da


def test_from_brainscore_reads_brainio_layout(tmp_path):
    raw = _brainio_style_file(tmp_path / "assy.nc")
    a = data.from_brainscore(tmp_path / "assy.nc")
    assert a.dims == ("presentation", "neuroid", "time_bin")
    assert a["repetition"].values.tolist() == [0, 1] * 3
    assert a["time_bin_start"].values.tolist() == [50]
    np.testing.assert_array_equal(a.values, raw.transpose("presentation", "neuroid", "time_bin").values)
    s = data.stimulus_set(np.random.default_rng(1).random((3, 8, 8)), stimulus_id=["img0", "img1", "img2"],
                          texture_type=["texture", "noise", "texture"])
    data.write_brainscore_stimuli(s, tmp_path / "stim.csv", tmp_path / "stim.zip")
    a2, s2 = data.from_brainscore(tmp_path / "assy.nc", tmp_path / "stim.csv", tmp_path / "stim.zip")
    np.testing.assert_allclose(s2["image"].values, s["image"].values, atol=0.5 / 255 + 1e-6)
    assert s2["texture_type"].values.tolist() == ["texture", "noise", "texture"]


def test_to_brainscore_round_trip(tmp_path):
    a = _assembly()
    path = data.to_brainscore(a, tmp_path / "assy.nc")
    with xr.open_dataset(path) as ds:
        assert list(ds.data_vars) == ["data"]
    b = data.from_brainscore(path)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
