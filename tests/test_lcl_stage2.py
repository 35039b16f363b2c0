"""The V2 stage stays alive: input centring, the output exponent, and the silent-channel count in log and checkpoint."""

import numpy as np
import pytest
import torch

import lcl


def _tiny(**stage2):
    return lcl.LCLConfig.preset("demo", train={"steps": (4, 6), "batch_size": 8, "progress": False, "log_every": 2,
                                               "checkpoint_every": 3},
                                        model={"stage1": {"channels": 6}, "stage2": {"channels": 8, **stage2}})


def test_output_exponent_is_a_power_of_the_pooled_energy():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 20, 20)
    outs = {}
    for e in (1.0, 2.0, 1.5):
        torch.manual_seed(1)
        stage = lcl.Stage(3, lcl.StageConfig(channels=4, kernel=3, exponent=e, downsample_kernel=1, stride=1))
        outs[e] = stage(x).detach().double()
    energy = outs[2.0]                                   # blur(relu(conv)^2) + eps
    # float32 results of the same energy: sqrt and pow are correctly rounded to a few ulp
    np.testing.assert_allclose(outs[1.0], energy.sqrt(), rtol=4 * 2 ** -23)
    np.testing.assert_allclose(outs[1.5], energy.pow(0.75), rtol=8 * 2 ** -23)
    with pytest.raises(ValueError, match="exponent"):
        lcl.StageConfig(exponent=0)


def test_positive_input_silences_channels_and_centring_prevents_it():
    # a stage fed by all-positive responses (as stage 2 is): filters whose weights sum below zero never fire
    torch.manual_seed(0)
    x = 1.0 + 0.05 * torch.rand(16, 8, 12, 12)          # large common offset, small modulation
    plain = lcl.Stage(8, lcl.StageConfig(channels=32, kernel=3, init_scale=1.0))
    silent = plain.silent_channels(x)
    assert 0.2 < float(silent.float().mean()) < 0.8
    centred = lcl.Stage(8, lcl.StageConfig(channels=32, kernel=3, init_scale=1.0, center_input=True))
    centred.load_state_dict({**plain.state_dict(), "input_mean": torch.zeros(8)})
    assert torch.equal(centred.silent_channels(x), silent)           # input_mean = 0: the same stage
    centred.set_input_mean(x)
    # zero-mean input and no bias: conv has zero mean over the data, so it crosses zero unless it is all zero
    assert not centred.silent_channels(x).any()


def test_training_logs_and_checkpoints_silent_fraction(tmp_path):
    cfg = _tiny()
    assert cfg.model.stage2.center_input and not cfg.model.stage2.bias
    trainer = lcl.Trainer(cfg, tmp_path)
    model = trainer.run()
    rows = trainer.log
    assert all(0.0 <= r["silent_fraction"] <= 1.0 for r in rows)
    assert {r["stage"] for r in rows} == {1, 2}
    state = lcl.load_checkpoint(tmp_path / "checkpoint.pt")
    assert set(state["silent_fraction"]) == {"stage1", "stage2"}
    assert state["silent_fraction"]["stage2"] == 0.0
    assert lcl.load_checkpoint(tmp_path)["silent_fraction"] == state["silent_fraction"]
    # the input mean was estimated from stage-1 responses (positive: rectified, pooled) and is saved
    mean = model.stage2.input_mean
    assert mean.shape == (6,) and bool((mean > 0).all())
    assert torch.equal(lcl.load_model(tmp_path).stage2.input_mean, mean)


def test_center_inputs_of_an_untrained_model_is_deterministic():
    cfg = _tiny()
    a = lcl.Trainer(cfg).center_inputs()
    b = lcl.Trainer(cfg).center_inputs()
    assert torch.equal(a.stage2.input_mean, b.stage2.input_mean) and bool((a.stage2.input_mean > 0).all())


def test_resume_at_the_stage_boundary_is_bit_identical(tmp_path):
    cfg = _tiny()
    full = lcl.Trainer(cfg, tmp_path / "full").run()
    lcl.Trainer(cfg, tmp_path / "cut").run(until=4)       # stops after stage 1; its checkpoint is at step 3
    resumed = lcl.Trainer(cfg, tmp_path / "cut", resume=True).run()
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_stage2_amplitude_sweep_scales_only_stage2():
    d = lcl.DeformConfig(amplitude=0.1, stage_scale=(1.0, 4.0))
    assert d.pixels((20, 38), 1) == pytest.approx((2.0, 10.0))
    assert d.pixels((20, 38), 2) == pytest.approx((15.2, 19.0))
    with pytest.raises(ValueError, match="stage_scale"):
        lcl.DeformConfig(stage_scale=(1.0, -1.0))
