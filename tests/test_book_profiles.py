"""focal.book.profiles: the book's profiles, a base Config each, and the runs they ask for."""
import dataclasses

import pytest
import torch

from focal.book import profiles
from focal.book.labels import LOSS_SETTINGS
from focal.book.profiles import PROFILES, configs, get_profile
from focal.engine.config import LOSSES, RECIPE_EPOCHS, run_name
from focal.engine.data import BALANCED_SIZES, DATASETS, longtail_counts
from focal.engine.models import MODELS


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles_name_valid_datasets_models_losses(name):
    p = PROFILES[name]
    assert p.name == name
    assert set(p.datasets) <= set(DATASETS) and all(d.endswith("-lt") for d in p.datasets)
    assert p.base.model in MODELS
    assert {loss for loss, _ in p.losses} <= set(LOSSES)
    assert p.image_dataset in DATASETS and not p.image_dataset.endswith("-lt")


def test_profiles_match_the_issue():
    smoke, cpu, gpu = PROFILES["smoke"], PROFILES["cpu"], PROFILES["gpu"]
    assert smoke.datasets == ("synthetic-lt",) and smoke.base.epochs == 1 and len(smoke.seeds) <= 2
    assert "pipeline runs" in smoke.description
    assert cpu.datasets[0] == "fashion-mnist-lt" and cpu.imbalance == 100 and len(cpu.seeds) >= 5
    assert cpu.base.model in ("small-cnn", "resnet20")
    assert set(gpu.datasets) == {"cifar10-lt", "cifar100-lt"} and set(gpu.imbalances) == {100, 50, 10}
    assert gpu.base.model == "resnet32" and gpu.base.epochs == RECIPE_EPOCHS and len(gpu.seeds) == 3
    assert gpu.base.compile and gpu.base.checkpoint_every == gpu.base.eval_every > 1  # graphs; every k epochs
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
    p = PROFILES[name]
    per_class, num_classes = BALANCED_SIZES[p.image_dataset]
    lt_total = sum(longtail_counts(per_class, num_classes, p.imbalance, p.base.lt_profile))
    refs = profiles.reference_configs(p)
    assert len(refs) == len(p.reference_losses) * len(p.reference_seeds) == len({run_name(c) for c in refs})
    for c in refs:
        assert c.imbalance == 1.0 and c.dataset == p.dataset and c.epochs == p.base.epochs and c.model == p.base.model
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
        varied = dict(dataset=c.dataset, imbalance=c.imbalance, loss=c.loss, gamma=c.gamma, seed=c.seed)
        assert c == p.base.replace(**varied)  # everything else is the profile's base Config
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
    assert p.base.epochs == 3 and p.seeds == PROFILES["cpu"].seeds
    assert p.base == PROFILES["cpu"].base.replace(epochs=3)  # a Config field goes to the base
    assert get_profile("cpu", seeds=2).seeds == (0, 1)  # an int n means seeds 0..n-1
    assert get_profile(p) is p
    assert get_profile("smoke") is PROFILES["smoke"]
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_profile("fast")
    with pytest.raises(TypeError, match="unknown Profile or Config field"):
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
    (dict(base=dict(epochs=1)), TypeError), (dict(datasets=("cifar11-lt",)), ValueError),
    (dict(seeds=(0.5,)), TypeError), (dict(imbalances=(0.5,)), ValueError),
    (dict(losses=(("mse", None),)), ValueError), (dict(reference_seeds=()), ValueError),
])
def test_profile_validation(change, error):
    with pytest.raises(error):
        dataclasses.replace(PROFILES["smoke"], **change)


def test_description_follows_overrides():
    p = get_profile("gpu", epochs=5, seeds=1, imbalances=(10,))
    assert p.description.startswith("cifar10-lt and cifar100-lt (exp long tail, imbalance 10), resnet32, 5 epochs, "
                                    "1 seed")
    assert get_profile("smoke").facts()["profile_description"] == PROFILES["smoke"].description


def test_the_gpu_profile_asks_for_cuda_and_stops_before_anything_trains(monkeypatch, tmp_path):
    """No silent CPU fallback: the gpu profile's runs ask for device "cuda" (not "auto"), and `make book` at that
    profile on a machine without a usable GPU stops before staging, training or executing, saying why."""
    import focal.book.build as fb

    assert PROFILES["gpu"].base.device == "cuda" and PROFILES["cpu"].base.device == "auto"

    def must_not_run(*args, **kwargs):
        raise AssertionError("the build went on without CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for step in ("stage_book", "train_book_runs", "execute_book"):
        monkeypatch.setattr(fb, step, must_not_run)
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available: this torch"):
        fb.build("gpu", root=tmp_path, progress=False)


def test_a_cifar_profile_gets_its_data_before_anything_trains(monkeypatch, tmp_path):
    """With a GPU but without CIFAR, `make book` at the gpu profile stops with fetch_cifar's message (which names the
    archives to copy where on an offline host) before chapter 1, not in chapter 3; the cpu profile never asks."""
    import focal.book.build as fb

    asked = []

    def no_cifar(root):
        asked.append(root)
        raise FileNotFoundError("could not obtain CIFAR10 (...): copy the two archives ...")

    def must_not_run(*args, **kwargs):
        raise AssertionError("the build went on without the data")

    monkeypatch.setattr(fb, "resolve_device", lambda name: torch.device("cpu"))
    monkeypatch.setattr(fb, "fetch_cifar", no_cifar)
    for step in ("stage_book", "train_book_runs", "execute_book"):
        monkeypatch.setattr(fb, step, must_not_run)
    with pytest.raises(FileNotFoundError, match="copy the two archives"):
        fb.build("gpu", root=tmp_path, progress=False)
    assert asked == [PROFILES["gpu"].base.data_root]
    with pytest.raises(AssertionError, match="without the data"):  # the cpu profile goes straight on
        fb.build("cpu", root=tmp_path, progress=False)
    assert len(asked) == 1
