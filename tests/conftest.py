"""Fixtures shared by the tests: a tiny fake CIFAR in the real pickle layout."""
import pytest

from focal.engine.data import write_fake_cifar


@pytest.fixture(scope="session")
def fake_root(tmp_path_factory):
    return write_fake_cifar(tmp_path_factory.mktemp("cifar"), n_train_per_class=24, n_test_per_class=6)
