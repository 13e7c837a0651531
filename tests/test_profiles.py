"""focal.profiles (book profiles, run configs, hardware line) and focal.published (the published numbers)."""
import dataclasses

import pytest
import torch

from focal import profiles, published
from focal.data import DATASETS, longtail_counts
from focal.models import MODELS
from focal.profiles import LOSS_LABELS, LOSS_SETTINGS, PROFILES, Profile, configs, get_profile, loss_label
from focal.train import LOSSES, RECIPE_EPOCHS, run_name


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles_name_valid_datasets_models_losses(name):
    p = PROFILES[name]
    assert p.name == name
    assert set(p.datasets) <= set(DATASETS) and all(d.endswith("-lt") for d in p.datasets)
    assert p.model in MODELS
    assert {loss for loss, _ in p.losses} <= set(LOSSES)
    assert p.image_dataset in DATASETS and not p.image_dataset.endswith("-lt")


def test_profiles_match_the_issue():
    smoke, cpu, gpu = PROFILES["smoke"], PROFILES["cpu"], PROFILES["gpu"]
    assert smoke.datasets == ("synthetic-lt",) and smoke.epochs == 1 and len(smoke.seeds) <= 2
    assert "pipeline runs" in smoke.description
    assert cpu.datasets[0] == "fashion-mnist-lt" and cpu.imbalance == 100 and len(cpu.seeds) >= 5
    assert cpu.model in ("small-cnn", "resnet20")
    assert set(gpu.datasets) == {"cifar10-lt", "cifar100-lt"} and set(gpu.imbalances) == {100, 50, 10}
    assert gpu.model == "resnet32" and gpu.epochs == RECIPE_EPOCHS and len(gpu.seeds) == 3
    assert smoke.losses == gpu.losses == LOSS_SETTINGS  # the smoke profile runs every code path
    assert set(cpu.losses) == set(LOSS_SETTINGS) - {("focal", 3.0)}  # left out for the 45-minute budget
    assert {("ce", None), ("focal", 0.5), ("focal", 1.0), ("focal", 2.0), ("focal-flsd53", None)} <= set(cpu.losses)
    for p in PROFILES.values():
        assert p.reference_losses == (("ce", None), ("focal", 1.0)) and len(p.reference_seeds) >= 2
    assert len(cpu.reference_seeds) >= 3
    # Mukhoti et al.'s settings are trained where the budget allows, so chapter 6 can judge their claim on them
    assert ("focal-flsd53", None) in LOSS_SETTINGS and ("focal", 3.0) in LOSS_SETTINGS


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_seed_trains_on_the_same_subset(name):
    cs = profiles.all_configs(name)
    assert {c.subset_seed for c in cs} == {0}
    assert {c.seed for c in cs} >= set(PROFILES[name].seeds)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_balanced_reference_has_as_many_images_as_the_long_tailed_set(name):
    from focal.data import BALANCED_SIZES

    p = PROFILES[name]
    per_class, num_classes = BALANCED_SIZES[p.image_dataset]
    lt_total = sum(longtail_counts(per_class, num_classes, p.imbalance, p.lt_profile))
    refs = profiles.reference_configs(p)
    assert len(refs) == len(p.reference_losses) * len(p.reference_seeds) == len({run_name(c) for c in refs})
    for c in refs:
        assert c.imbalance == 1.0 and c.dataset == p.dataset and c.epochs == p.epochs and c.model == p.model
        assert lt_total - num_classes < c.n_max * num_classes <= lt_total
    assert not {run_name(c) for c in refs} & {run_name(c) for c in configs(p)}


def test_balanced_reference_data_is_balanced_and_the_same_size():
    p = get_profile("smoke")
    ref, lt = p.load_reference_data(), p.load_data()
    assert len(set(ref.train_counts)) == 1 and ref.train_counts[0] == profiles.reference_n_max(p)
    assert abs(sum(ref.train_counts) - sum(lt.train_counts)) < ref.num_classes
    assert "balanced subset" in ref.description


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_configs_cover_every_run_once(name):
    p = PROFILES[name]
    cs = configs(p)
    assert len(cs) == p.num_runs == len({run_name(c) for c in cs})
    for c in cs:
        assert (c.model, c.epochs, c.batch_size, c.lr, c.profile, c.eval_every) == (
            p.model, p.epochs, p.batch_size, p.lr, p.lt_profile, p.eval_every)
        assert c.dataset in p.datasets and c.imbalance in p.imbalances and c.seed in p.seeds
    found = {(c.loss, c.gamma if c.loss in ("focal", "cb-focal") else None) for c in cs}
    assert found == set(p.losses)


def test_configs_filters_and_errors():
    cs = configs("gpu", dataset="cifar100-lt", imbalance=50)
    assert {(c.dataset, c.imbalance) for c in cs} == {("cifar100-lt", 50.0)}
    with pytest.raises(ValueError, match="not in profile"):
        configs("cpu", dataset="cifar10-lt")
    with pytest.raises(ValueError, match="imbalance"):
        configs("cpu", imbalance=7)


def test_get_profile_overrides():
    p = get_profile("cpu", epochs=3, seeds=None)
    assert p.epochs == 3 and p.seeds == PROFILES["cpu"].seeds
    assert get_profile("cpu", seeds=2).seeds == (0, 1)  # an int n means seeds 0..n-1
    assert get_profile(p) is p
    assert get_profile("smoke") is PROFILES["smoke"]
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_profile("fast")
    with pytest.raises(TypeError, match="unknown Profile field"):
        get_profile("cpu", epoch=3)


@pytest.mark.parametrize("cuda, cifar, expected", [(True, True, "gpu"), (True, False, "cpu"),
                                                   (False, True, "cpu"), (False, False, "cpu")])
def test_default_profile(monkeypatch, tmp_path, cuda, cifar, expected):
    if cifar:
        (tmp_path / "cifar-10-batches-py").mkdir()
        (tmp_path / "cifar-100-python").mkdir()
    monkeypatch.setenv("FOCAL_DATA", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert profiles.default_profile() == expected
    assert get_profile(None).name == expected


def test_cifar_present_needs_both(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    assert not profiles.cifar_present(tmp_path)
    (tmp_path / "cifar-100-python").mkdir()
    assert profiles.cifar_present(tmp_path)


@pytest.mark.parametrize("change, error", [
    (dict(name=""), ValueError), (dict(datasets=()), ValueError), (dict(datasets="cifar10-lt"), ValueError),
    (dict(epochs=0), ValueError), (dict(eval_every=0), ValueError), (dict(batch_size=True), ValueError),
    (dict(seeds=(0.5,)), TypeError), (dict(imbalances=(0.5,)), ValueError),
    (dict(losses=(("mse", None),)), ValueError), (dict(lt_profile="linear"), ValueError),
])
def test_profile_validation(change, error):
    with pytest.raises(error):
        dataclasses.replace(PROFILES["smoke"], **change)


def test_loss_labels():
    assert LOSS_LABELS == ("CE", "focal γ=0.5", "focal γ=1", "focal γ=2", "focal γ=3", "FLSD-53", "CB focal γ=1",
                           "sigmoid focal γ=1")
    assert loss_label("ce", 2.0) == "CE" and loss_label("focal-flsd53", 1.0) == "FLSD-53"
    with pytest.raises(ValueError, match="loss must be one of"):
        loss_label("mse")


def test_hardware_string_cpu():
    from focal.train import hardware

    text = profiles.hardware_string("cpu")
    assert text == hardware("cpu") and text.startswith("CPU: ") and text.endswith(f"torch {torch.__version__}")
    with pytest.raises(ValueError, match="device"):
        profiles.hardware_string("tpu")


# ----------------------------------------------------------------------------------------------- published
def test_published_counts_agree_with_our_construction():
    assert list(published.CIFAR10_LT_COUNTS[100]) == longtail_counts(5000, 10, 100)
    sizes = {"cifar10-lt": (5000, 10), "cifar100-lt": (500, 100)}
    for (dataset, rho), total in published.CIFAR_LT_TOTALS.items():
        assert sum(longtail_counts(*sizes[dataset], rho)) == total


def test_published_rows_and_known_cells():
    rows = published.published_top1_rows()
    assert {r["source"] for r in rows} == {"Cui et al. 2019, Table 2", "Cao et al. 2019, Table 2"}
    cell = {(r["source"], r["dataset"], r["lt_profile"], r["loss"], r["imbalance"]): r["top1_error"] for r in rows}
    # the one cell where the two papers differ (REFERENCES.md): each number stays with its paper
    assert cell[("Cui et al. 2019, Table 2", "cifar100-lt", "exp", "Softmax CE", 10.0)] == 44.29
    assert cell[("Cao et al. 2019, Table 2", "cifar100-lt", "exp", "ERM (CE)", 10.0)] == 44.30
    assert cell[("Cao et al. 2019, Table 2", "cifar10-lt", "step", "CB Focal", 100.0)] == 39.73
    assert len(published.published_top1_rows("cifar10-lt", [100])) == 4 + 4 * 2
    with pytest.raises(ValueError, match="dataset must be one of"):
        published.published_top1_rows("mnist")


@pytest.mark.parametrize("dataset, comparable", [("cifar10-lt", True), ("fashion-mnist-lt", False)])
def test_comparison_table_labels_theirs_and_ours(dataset, comparable):
    ours = {"CE": "20.00 ± 0.50", "focal γ=2": "21.00 ± 0.40", "CB focal γ=1": "18.00 ± 0.30"}
    t = published.comparison_table(ours, dataset, 100, "my runs")
    assert t.columns[0] == "ours: my runs"
    assert all(c.startswith("published: ") for c in t.columns[1:])
    assert all(("not comparable" in c) != comparable for c in t.columns[1:])
    assert t.loc["CE"].tolist()[1:] == ["29.64", "= Cui et al."]  # Cao et al. reprint Cui et al.'s CE row
    assert t.loc["focal γ=2"].tolist()[1:] == ["—", "—"]  # no matching published row
    assert t.loc["CB focal γ=1"].tolist()[1:] == ["25.43", "= Cui et al."]  # Cao's cell equals Cui's best CB


def test_comparison_table_missing_imbalance_is_a_dash():
    t = published.comparison_table({"CE": "x"}, "cifar10-lt", 50, "ours")
    assert t.loc["CE"].tolist() == ["x", "25.19", "—"]  # Cao et al. report rho 100 and 10 only


def test_published_calibration_rows():
    rows = {r["loss"]: r for r in published.published_calibration_rows()}
    assert rows["CE"]["temperature"] == 2.5 and rows["FLSD-53"]["ece_after"] == 0.95
    assert all("balanced CIFAR-10" in r["source"] for r in rows.values())


def test_description_follows_overrides():
    p = get_profile("gpu", epochs=5, seeds=1, imbalances=(10,))
    assert p.description.startswith("cifar10-lt and cifar100-lt (exp profile, imbalance 10), resnet32, 5 epochs, "
                                    "1 seed")
    assert get_profile("smoke").facts()["profile_description"] == PROFILES["smoke"].description
