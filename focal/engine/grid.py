"""Many runs at once: the loss × γ × seed × imbalance grid, trained in parallel worker processes with progress.

:func:`train_many` is what ``python -m focal grid`` and the book use: it first looks at every run folder (in this
process, so each stale or broken run is reported once, by name), then trains what is left — one worker process per
usable core on the CPU, several per GPU on CUDA, spread over the GPUs (:func:`focal.engine.system.default_workers`,
:func:`~focal.engine.system.worker_devices`) — printing one line per
event: how many runs were found finished, ``run k/n training <name>``, and ``run k/n done`` with the elapsed time and
an estimate of the time left. A failing run stops the queue and its error is raised.

Several grid commands may share one output folder (one per GPU, say): each run has a lock
(``<runs>/.locks/<name>.lock``, :class:`~focal.engine.files.RunLock`) that a worker holds while it looks at and trains
the run, so no two train the same run. A run locked by another command is *left to it*: this command trains the
rest, then waits for that run and loads it (or, if the other command died, resumes it itself).

Example:
    >>> base = Config(dataset="synthetic-lt", model="small-cnn", epochs=1)
    >>> [run_name(c) for c in grid_configs(base, losses=("ce", "focal"), gammas=(1, 2), seeds=(0,))]
    ['synthetic-lt_if100_small-cnn_ce_e1_s0', 'synthetic-lt_if100_small-cnn_focal_g1_e1_s0', 'synthetic-lt_if100_small-cnn_focal_g2_e1_s0']
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TextIO

import torch

from focal.engine.config import GAMMA_LOSSES, LOSSES, Config, run_name
from focal.engine.files import RunLock
from focal.engine.runs import runs_root
from focal.engine.system import usable_cores
from focal.engine.train import RunWarning, prepare_run, train

__all__ = ["grid_configs", "train_many", "grid", "duration"]


def duration(seconds: float) -> str:
    """``"1 h 02 min"``, ``"4 min 05 s"`` or ``"12 s"``.

    Example:
        >>> duration(3725), duration(245), duration(12.4)
        ('1 h 02 min', '4 min 05 s', '12 s')
    """
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def grid_configs(base: Config, losses: Iterable[str] = LOSSES, gammas: Iterable[float] = (1.0,),
                 seeds: Iterable[int] = (0,), imbalances: Iterable[float] | None = None) -> list[Config]:
    """Every loss × γ × seed × imbalance variant of ``base``, each distinct run once, in loop order.

    γ varies only for the losses that use it (:data:`~focal.engine.config.GAMMA_LOSSES`); ``ce`` and
    ``focal-flsd53`` run once per seed and imbalance. ``imbalances=None`` keeps ``base.imbalance``.
    """
    configs, seen = [], set()
    for imbalance in (base.imbalance,) if imbalances is None else imbalances:
        for loss in losses:
            for gamma in gammas if loss in GAMMA_LOSSES else (base.gamma,):
                for seed in seeds:
                    config = base.replace(imbalance=imbalance, loss=loss, gamma=gamma, seed=seed)
                    if run_name(config) not in seen:
                        seen.add(run_name(config))
                        configs.append(config)
    return configs


def run_lock(config: Config, out: str | os.PathLike | None = None) -> RunLock:
    """The lock of ``config``'s run folder: ``<runs root>/.locks/<run name>.lock``."""
    return RunLock(runs_root(out) / ".locks" / f"{run_name(config)}.lock")


_WORKER_DEVICE: str | None = None  # the device this worker process trains on (set by _start_worker), if any


def _start_worker(devices, parent: int, threads: int) -> None:
    """Initializer of a worker process: take the next device of the pool's queue for every run it trains, give
    torch.compile's compiler at most ``threads`` processes (not one per core in every worker), and end with the
    thread that started the worker, the grid command's main thread (Linux: a parent killed by a signal would
    otherwise leave its workers training on, unseen; a killed worker's run resumes from its last checkpoint)."""
    global _WORKER_DEVICE
    _WORKER_DEVICE = devices.get()
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(threads))
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass
        if os.getppid() != parent:  # the parent died before the line above: nobody will collect this worker's results
            os._exit(1)


def _train_if_free(config: Config, out, progress: bool, threads: int | None = None,
                   device: str | None = None) -> dict[str, Any]:
    """Train (or resume) the run unless another process holds its lock: then ``{"status": "elsewhere"}``.

    The run trains on ``device``, else on this worker's device (:func:`_start_worker`), else on its own setting.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    device = device or _WORKER_DEVICE
    if device is not None and device != config.device:
        config = config.replace(device=device)  # where a run trains is not part of what it is (not in its name)
    lock = run_lock(config, out)
    if not lock.acquire(wait=False):
        return {"status": "elsewhere"}
    try:
        return train(config, out, progress=progress)
    finally:
        lock.release()


def train_many(configs: Sequence[Config], out: str | os.PathLike | None = None, *, progress: bool = True,
               file: TextIO | None = None, workers: int = 1, reuse_stale: bool = False, bars: bool = False,
               devices: Sequence[str] | None = None) -> list[tuple[Config, dict[str, Any]]]:
    """Train the runs of ``configs`` that are not finished by this code, load the others, in order.

    Progress is plain text, one line per event (a notebook stores each write as output and a static page cannot
    replay ``\\r``). Each stale or broken run is named with the reason before anything trains.

    Args:
        configs: the runs, e.g. from :func:`grid_configs` or :func:`focal.book.profiles.all_configs`.
        out: parent folder of the run directories (default ``<data root>/runs``).
        progress: print progress lines.
        file: where progress goes (default ``sys.stdout``, so it lands in the notebook or the terminal).
        workers: train this many runs at once in separate processes (each with ``cores // workers`` threads, at
            least one); 1 trains in this process.
        reuse_stale: keep finished runs of other code instead of retraining them (each is still named).
        bars: with one worker, also show each run's tqdm bars (epochs and batches), as in a terminal.
        devices: the device of each worker (e.g. :func:`~focal.engine.system.worker_devices`: four workers on two
            GPUs are ``["cuda:0", "cuda:1", "cuda:0", "cuda:1"]``); each trains all its runs there. None: every
            run trains on its own ``Config.device``.

    Returns:
        ``[(config, metrics)]`` in the order of ``configs``; each metrics dict has the ``status`` of
        :func:`~focal.engine.train.train` (``"trained"``, ``"resumed"``, ``"reused"``, ``"reused-stale"``), and
        ``trained_by="another process"`` for a run that another command held and this one waited for and loaded.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if devices is not None and (isinstance(devices, str) or len(devices) < 1):
        raise ValueError(f"devices must be a non-empty sequence of device names (one per worker), got {devices!r}")
    stream = file if file is not None else sys.stdout

    def say(text: str) -> None:
        if progress:
            print(text, file=stream, flush=True)

    names = [run_name(c) for c in configs]
    statuses = []
    for config in configs:
        lock = run_lock(config, out)
        if not lock.acquire(wait=False):  # another command is training it: do not even look at its folder
            statuses.append("elsewhere")
            continue
        try:
            status, message = prepare_run(config, out, reuse_stale=reuse_stale)
        finally:
            lock.release()
        statuses.append(status)
        if message:
            say(message) if progress else warnings.warn(message, RunWarning, stacklevel=2)
    todo = [i for i, status in enumerate(statuses) if not status.startswith("reused") and status != "elsewhere"]
    elsewhere = [i for i, status in enumerate(statuses) if status == "elsewhere"]
    stale = sum(status == "reused-stale" for status in statuses)
    n, loaded = len(configs), len(configs) - len(todo) - len(elsewhere)
    say(f"{n} run{'s' * (n != 1)}: {loaded} finished earlier (loaded from disk{f', {stale} of them stale' if stale else ''}), "
        f"{len(todo)} to train" + (f", {len(elsewhere)} being trained by another process" if elsewhere else ""))
    results: list = [None] * n
    for i, config in enumerate(configs):
        if i not in todo:
            with warnings.catch_warnings():  # already said above
                warnings.simplefilter("ignore", RunWarning)
                results[i] = (config, train(config, out, progress=False, reuse_stale=reuse_stale))
    tic = time.perf_counter()

    def done(k: int, i: int) -> None:
        elapsed = time.perf_counter() - tic
        left = elapsed / k * (len(todo) - k)
        say(f"run {k}/{len(todo)} done: {names[i]} in {duration(results[i][1].get('train_time_s', elapsed / k))}; "
            f"elapsed {duration(elapsed)}, about {duration(left)} left")

    def finished(k: int, i: int, result: dict[str, Any]) -> None:
        results[i] = (configs[i], result)
        if result["status"] == "elsewhere":
            elsewhere.append(i)
            say(f"run {k}/{len(todo)} left to another process, which is training it: {names[i]}")
        else:
            done(k, i)

    if workers == 1 or len(todo) < 2:
        for k, i in enumerate(todo, start=1):
            say(f"run {k}/{len(todo)} training {names[i]}")
            finished(k, i, _train_if_free(configs[i], out, bars, device=devices[0] if devices else None))
    else:
        workers = min(workers, len(todo))
        threads = max(1, usable_cores() // workers)
        where = f" on {', '.join(sorted(set(devices[:workers])))}" if devices else ""
        say(f"training {len(todo)} runs in {workers} worker processes of {threads} thread{'s' * (threads > 1)} "
            f"each{where}")
        context = multiprocessing.get_context("spawn")
        pool_devices = context.Queue()
        for k in range(workers):
            pool_devices.put(devices[k % len(devices)] if devices else None)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                 initargs=(pool_devices, os.getpid(), threads)) as pool:
            futures = {pool.submit(_train_if_free, configs[i], out, False, threads): i for i in todo}
            try:
                for k, future in enumerate(as_completed(futures), start=1):
                    finished(k, futures[future], future.result())
            except BaseException:  # a failed run (or Ctrl-C): do not start the queued ones
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    for i in sorted(elsewhere):  # wait for the other process, then load its run (or resume it, if that one died)
        say(f"waiting for another process to finish {names[i]}")
        lock = run_lock(configs[i], out)
        lock.acquire(wait=True)
        try:
            result = train(configs[i], out, progress=False, reuse_stale=reuse_stale)
        finally:
            lock.release()
        results[i] = (configs[i], {**result, "trained_by": "another process"} if result["status"] == "reused" else result)
    return results


def grid(base: Config, losses: Iterable[str] = LOSSES, gammas: Iterable[float] = (1.0,), seeds: Iterable[int] = (0,),
         imbalances: Iterable[float] | None = None, out: str | os.PathLike | None = None, *, progress: bool = True,
         workers: int = 1, reuse_stale: bool = False) -> list[tuple[Config, dict[str, Any]]]:
    """Train every variant of :func:`grid_configs` with :func:`train_many`; returns ``(config, metrics)`` per run."""
    return train_many(grid_configs(base, losses, gammas, seeds, imbalances), out, progress=progress,
                      workers=workers, reuse_stale=reuse_stale, bars=progress and workers == 1)
