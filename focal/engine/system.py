"""The machine a run uses: its device, the cores it may use, and one line that describes both for result pages."""
from __future__ import annotations

import os
import platform

import torch

__all__ = ["hardware", "usable_cores", "default_workers", "worker_devices", "resolve_device", "cuda_unavailable_reason",
           "RUNS_PER_GPU"]

#: Runs a grid trains at once on each GPU by default (:func:`default_workers`): ResNet-32 at batch 128 leaves most of
#: a large GPU idle, so independent runs share it. A starting point until ``benchmarks/train.py --grid`` has measured
#: the best count on a given GPU; ``--workers`` overrides it.
RUNS_PER_GPU = 4


def cuda_unavailable_reason() -> str:
    """Why ``torch.cuda.is_available()`` is False here, and what to install or check: a CPU-only torch build, or a
    CUDA build that finds no usable GPU (none visible, or a driver older than the build's CUDA).

    Example:
        >>> isinstance(cuda_unavailable_reason(), str)
        True
    """
    build = torch.version.cuda
    if build is None:
        return (f"this torch ({torch.__version__}) is a CPU-only build. Install the CUDA build of the same version "
                "(its version ends in +cuXYZ, e.g. +cu130 for CUDA 13.0) for a CUDA release your driver supports: "
                "`nvidia-smi` prints the newest one (\"CUDA Version\").")
    return (f"this torch ({torch.__version__}) is built for CUDA {build}, but it finds no usable GPU. Either none is "
            "visible (`nvidia-smi` lists no GPU; in a container, pass the GPUs through, e.g. `docker run --gpus "
            f"all`; check CUDA_VISIBLE_DEVICES), or the driver is older than CUDA {build} needs (`nvidia-smi` prints "
            "the newest CUDA it supports): update the driver, or install the torch build for that older CUDA.")


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The device for ``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``); ``auto`` picks CUDA when available.

    Raises:
        ValueError: for ``cuda`` without a CUDA device, or an index beyond the devices present. Training never falls
            back to the CPU silently.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={name!r} but CUDA is not available: {cuda_unavailable_reason()} "
                             "(Or train on the CPU: --device cpu, or auto.)")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise ValueError(f"device={str(device)!r} but only {torch.cuda.device_count()} CUDA device(s) are present")
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return device


def hardware(device: torch.device | str | None = None, world_size: int = 1) -> str:
    """One line naming the hardware and the torch version, stored with every run and printed on the book's pages.

    Args:
        device: the training device; None means CUDA when available, else the CPU.
        world_size: processes of a DDP run (shown as ``N x``).

    Returns:
        e.g. ``"CPU: AMD EPYC 7B13 (2 threads), torch 2.14.1"`` or ``"NVIDIA H200, torch 2.14.1"``.

    Example:
        >>> hardware("cpu").startswith("CPU: ") and "torch" in hardware("cpu")
        True
    """
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as fh:
                name = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        threads = torch.get_num_threads()
        name = f"CPU: {name} ({threads} thread{'s' * (threads != 1)})"
    return f"{f'{world_size} x ' if world_size > 1 else ''}{name}, torch {torch.__version__}"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's share), not the host's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return os.cpu_count() or 1


def _kind(device: str) -> str:
    kind = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else str(device).split(":")[0]
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return kind


def default_workers(cores: int | None = None, device: str = "cpu", gpus: int | None = None) -> int:
    """Parallel training workers for this machine: on the CPU one single-threaded worker per core, on CUDA
    :data:`RUNS_PER_GPU` per GPU the runs may use (one GPU for ``cuda:N``, every visible one for ``cuda``).

    ``device`` is a run's device setting: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available); ``gpus``
    the visible GPUs (default: ``torch.cuda.device_count()``).

    Small CPU models scale poorly across threads: on two AMD EPYC cores two single-threaded workers trained the small
    CNN 1.28x faster than one worker with two threads (4,100 against 3,200 images/s), and a single-threaded worker
    slows down gracefully when something else needs a core, where a two-threaded one stalls.

    Example:
        >>> default_workers(1), default_workers(2), default_workers(16), default_workers(16, "cuda", gpus=8)
        (1, 2, 16, 32)
        >>> default_workers(16, "cuda:3", gpus=8)
        4
    """
    if _kind(device) == "cuda":
        gpus = torch.cuda.device_count() if gpus is None else gpus
        return RUNS_PER_GPU * (1 if str(device).startswith("cuda:") else max(1, gpus))
    cores = cores if cores is not None else usable_cores()
    return max(1, cores)


def worker_devices(device: str, workers: int, gpus: int | None = None) -> list[str] | None:
    """The device of each of ``workers`` grid workers: runs set to ``cuda`` (or ``auto`` with CUDA) are spread over
    the visible GPUs in turn, ``cuda:N`` stays on GPU N; None on the CPU (every run keeps its own setting).

    Example:
        >>> worker_devices("cuda", 5, gpus=2)
        ['cuda:0', 'cuda:1', 'cuda:0', 'cuda:1', 'cuda:0']
        >>> worker_devices("cuda:1", 2, gpus=2), worker_devices("cpu", 2)
        (['cuda:1', 'cuda:1'], None)
    """
    if _kind(device) != "cuda":
        return None
    if str(device).startswith("cuda:"):
        return [str(device)] * workers
    gpus = torch.cuda.device_count() if gpus is None else gpus
    return [f"cuda:{i % max(1, gpus)}" for i in range(workers)]
