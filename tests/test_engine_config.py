"""Tests of focal.engine.config: Config validation and round trips, run names, the learning-rate schedule."""

import dataclasses
import json

import numpy as np
import pytest

from focal.engine.config import LOSSES, LT_PROFILES, Config, identity, lr_schedule, run_name
from focal.engine.data import DATASETS

# ------------------------------------------------------------------------------------------------------ Config


@pytest.mark.parametrize("field, value, error", [
    ("dataset", "cifar11", ValueError), ("loss", "focall", ValueError), ("model", "resnet18", ValueError),
    ("lt_profile", "linear", ValueError), ("imbalance", 0.5, ValueError), ("gamma", -1.0, ValueError),
    ("beta", 1.0, ValueError), ("epochs", 0, ValueError), ("epochs", 2.5, TypeError), ("lr", 0.0, ValueError),
    ("batch_size", True, TypeError), ("lr_milestones", (1.5,), TypeError), ("device", "tpu", ValueError),
    ("amp", "yes", TypeError), ("gamma", "2", TypeError), ("eval_every", 0, ValueError),
    ("lr", float("inf"), ValueError), ("gamma", float("nan"), ValueError), ("device", 0, TypeError),
    ("subset_seed", -1, ValueError),
])
def test_config_rejects_bad_values_naming_the_field(field, value, error):
    with pytest.raises(error, match=field):
        Config(**{field: value})


@pytest.mark.parametrize("field, valid", [("dataset", DATASETS), ("loss", LOSSES)])
def test_unknown_names_list_the_valid_ones(field, valid):
    with pytest.raises(ValueError) as info:
        Config(**{field: "nonsense"})
    assert all(name in str(info.value) for name in valid)


@pytest.mark.parametrize("config", [Config(), Config(loss="cb-focal", gamma=0.5, lr_milestones=[3, 1], seed=7),
                                    Config(dataset="synthetic", data_root="/x", amp=False, imbalance=10)])
def test_config_json_round_trip(config):
    again = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and isinstance(again.lr_milestones, tuple)
    assert config.lr_milestones == tuple(sorted(config.lr_milestones))


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    config = Config(seed=np.int64(2), gamma=np.float32(0.5), lr_milestones=[np.int64(3)])
    assert type(config.seed) is int and type(config.gamma) is float and type(config.lr_milestones[0]) is int
    json.dumps(config.to_dict())


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="gama"):
        Config.from_dict({"gama": 2.0})


# ----------------------------------------------------------------------------------------------------- names


def test_run_name_matches_the_documented_pattern():
    assert run_name(Config(loss="focal", gamma=1)) == "cifar10-lt_if100_resnet32_focal_g1_e200_s0"
    assert run_name(Config(dataset="fashion-mnist-lt", model="small-cnn", epochs=12, lt_profile="step")) == \
        "fashion-mnist-lt_if100_step_small-cnn_ce_e12_s0"


VARIANTS = [dict(), dict(loss="focal"), dict(loss="focal", gamma=2), dict(loss="cb-focal"),
            dict(loss="cb-focal", beta=0.999), dict(imbalance=50), dict(lt_profile="step"), dict(model="resnet20"),
            dict(epochs=12), dict(seed=1), dict(lr=0.05), dict(batch_size=64), dict(augment=False),
            dict(amp=False), dict(lr_milestones=(100,)), dict(weight_decay=5e-4), dict(dataset="cifar100-lt"),
            dict(loss="focal", gamma=0.5), dict(loss="focal-flsd53"), dict(loss="sigmoid-focal"),
            dict(warmup_epochs=0), dict(lr_decay=0.1), dict(eval_every=5), dict(momentum=0.0), dict(subset_seed=1)]


def test_different_results_never_share_a_name():
    names = [run_name(Config(**v)) for v in VARIANTS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("same", [dict(device="cpu"), dict(data_root="/elsewhere"), dict(verify=False),
                                  dict(download=True), dict(gamma=3.0)])
def test_settings_that_do_not_change_the_result_keep_the_name(same):
    assert run_name(Config(**same)) == run_name(Config())  # gamma is unused by the default loss (ce)


def test_balanced_datasets_ignore_imbalance_in_the_name():
    assert run_name(Config(dataset="cifar10", imbalance=10, subset_seed=3)) == run_name(Config(dataset="cifar10"))
    assert "if" not in run_name(Config(dataset="cifar10")).split("_")[1]


# ---------------------------------------------------------------------------------------------------- schedule


def test_lr_schedule_is_the_ldam_recipe_at_200_epochs():
    lrs = lr_schedule(Config())
    assert len(lrs) == 200
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert lrs[5:160] == pytest.approx([0.1] * 155)
    assert lrs[160:180] == pytest.approx([1e-3] * 20) and lrs[180:] == pytest.approx([1e-5] * 20)


@pytest.mark.parametrize("epochs", [1, 2, 10, 12, 50, 400])
def test_lr_schedule_scales_milestones_with_epochs(epochs):
    lrs = lr_schedule(Config(epochs=epochs))
    assert len(lrs) == epochs and max(lrs) <= 0.1 + 1e-12 and all(x > 0 for x in lrs)
    scale = epochs / 200
    for e, lr in enumerate(lrs):
        decays = sum(round(m * scale) <= e for m in (160, 180))
        assert lr == pytest.approx(0.1 * min(1, (e + 1) / max(round(5 * scale), 1)) * 0.01 ** decays)



def test_every_field_has_help_a_group_and_a_known_identity_role():
    for field in dataclasses.fields(Config):
        assert field.metadata["help"] and field.metadata["group"] in ("data", "model and recipe", "hardware"), field.name
    assert set(identity(Config(loss="cb-focal", dataset="cifar10-lt", n_max=5))) == {
        f.name for f in dataclasses.fields(Config) if f.metadata["identity"]}


def test_lt_profile_is_validated_and_legacy_profile_key_is_read():
    with pytest.raises(ValueError, match="lt_profile.*exp, step"):
        Config(lt_profile="linear")
    legacy = {**Config(lt_profile="step").to_dict()}
    legacy["profile"] = legacy.pop("lt_profile")
    assert Config.from_dict(legacy).lt_profile == "step" and LT_PROFILES == ("exp", "step")


def test_config_n_max_is_part_of_the_run_name_and_validated():
    from focal.engine.config import Config, run_name

    a = Config(dataset="synthetic-lt", imbalance=1, n_max=120)
    assert "_if1_n120_" in run_name(a) and run_name(a) != run_name(a.replace(n_max=121))
    assert run_name(Config(dataset="synthetic-lt")) == run_name(Config(dataset="synthetic-lt", n_max=None))
    with pytest.raises(ValueError, match="Config.n_max"):
        Config(dataset="synthetic", n_max=10)
    with pytest.raises(TypeError, match="Config.n_max"):
        Config(dataset="synthetic-lt", n_max=1.5)
    assert Config.from_dict(a.to_dict()) == a
