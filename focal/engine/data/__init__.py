"""Long-tailed image data: the datasets' files (:mod:`~focal.engine.data.sources`, :mod:`~focal.engine.data.cifar`,
:mod:`~focal.engine.data.fashion_mnist`), long-tailed subsets (:mod:`~focal.engine.data.longtail`) and on-device
batching (:mod:`~focal.engine.data.loader`).

Every public name of these modules (their ``__all__``) is re-exported here; import from ``focal.engine.data``.
"""
from focal.engine.data.cifar import CIFAR_MEAN, CIFAR_STD, fetch_cifar, load_cifar, write_fake_cifar
from focal.engine.data.fashion_mnist import (
    DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES, FASHION_MNIST_FILES, FASHION_MNIST_MEAN, FASHION_MNIST_STD,
    load_fashion_mnist,
)
from focal.engine.data.loader import DeviceLoader
from focal.engine.data.longtail import (
    BALANCED_SIZES, DATASETS, DataBundle, load_data, longtail_counts, longtail_indices, train_size,
)
from focal.engine.data.sources import TITLES, SourceData, default_data_root, load_synthetic, synthetic_images

__all__ = [
    # longtail
    "BALANCED_SIZES", "DATASETS", "DataBundle", "load_data", "longtail_counts", "longtail_indices", "train_size",
    # loader
    "DeviceLoader",
    # sources, cifar, fashion_mnist
    "TITLES", "SourceData", "default_data_root", "load_synthetic", "synthetic_images",
    "CIFAR_MEAN", "CIFAR_STD", "fetch_cifar", "load_cifar", "write_fake_cifar",
    "DEBIAN_FASHION_MNIST", "FASHION_MNIST_CLASSES", "FASHION_MNIST_FILES", "FASHION_MNIST_MEAN", "FASHION_MNIST_STD",
    "load_fashion_mnist",
]
