"""Config -> training run -> results on disk: resumable, and reused only when the same code produced them.

:func:`train` runs a :class:`~focal.engine.config.Config` with the LDAM-DRW recipe :cite:`cao2019ldam` (SGD,
momentum 0.9, weight decay 2e-4, batch 128, lr 0.1 with a 5-epoch linear warm-up, ×0.01 at epochs 160 and 180 of
200) and writes the run directory described in :mod:`focal.engine.runs`, named by
:func:`~focal.engine.config.run_name`.

A killed run resumes from its checkpoint and ends with the same numbers as an uninterrupted one. A finished run is
loaded instead of retrained when this code produced it; a run of other code (a different
:func:`~focal.engine.runs.code_fingerprint`) is *stale* and retrained, unless ``reuse_stale=True`` keeps it with a
warning. A run folder with a truncated or unreadable file is reported with the file's path, moved to
``<out>/.archive`` and retrained. Launched by ``torchrun`` (``WORLD_SIZE`` > 1) it trains with
DistributedDataParallel (nccl on CUDA, gloo on CPU), the global batch split across ranks; rank 0 evaluates and
writes.

"""

from __future__ import annotations

import os
import pickle
import time
import warnings
import zipfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from focal.engine import metrics
from focal.engine.config import Config, identity, lr_schedule, run_name
from focal.engine.data import DeviceLoader, load_data
from focal.engine.files import UnreadableFile, atomic_write, write_json, write_npz
from focal.engine.models import build_model
from focal.engine.runs import archive_run, code_fingerprint, code_record, inspect_run, load_run, runs_root
from focal.engine.step import compiled_forward, evaluate, predict, train_epoch
from focal.engine.system import hardware, resolve_device
from focal.losses import class_balanced_weights, focal_loss, sigmoid_focal_loss

__all__ = ["RunWarning", "make_criterion", "model_prior", "prepare_run", "train"]


class RunWarning(UserWarning):
    """A run that was not reused as it stood: stale (other code), broken (an unreadable file) or kept stale."""


def make_criterion(config: Config, train_counts: list[int], device: torch.device | str = "cpu"):
    """The training loss of ``config`` as ``criterion(logits, target) -> scalar``.

    - ``ce``: softmax cross-entropy.
    - ``focal``: softmax focal loss with ``gamma`` (Cao et al. use γ=1).
    - ``focal-flsd53``: focal with γ=5 where p_t < 0.2, else 3 :cite:`mukhoti2020calibrating`.
    - ``cb-focal``: focal with α_y = class-balanced weight of the target class (sum to C) :cite:`cui2019classbalanced`,
      averaged over the batch as in LDAM-DRW's CB focal (not normalised by Σα).
    - ``sigmoid-focal``: per-class sigmoid focal on one-hot targets without α (as Cui et al.), summed over classes
      and divided by the batch size; pair it with the classifier bias prior π = 1/C (:func:`model_prior`).

    Example:
        >>> crit = make_criterion(Config(dataset="synthetic", loss="ce"), [10, 10])
        >>> float(crit(torch.zeros(2, 2), torch.tensor([0, 1]))) == float(torch.log(torch.tensor(2.0)))
        True
    """
    if config.loss == "ce":
        return F.cross_entropy
    if config.loss == "focal":
        return lambda logits, y: focal_loss(logits, y, gamma=config.gamma)
    if config.loss == "focal-flsd53":
        return lambda logits, y: focal_loss(logits, y, gamma="flsd53")
    if config.loss == "cb-focal":
        alpha = class_balanced_weights(train_counts, beta=config.beta).to(device=device, dtype=torch.float32)
        return lambda logits, y: focal_loss(logits, y, gamma=config.gamma, alpha=alpha)

    def sigmoid_focal(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        loss = sigmoid_focal_loss(logits, onehot, alpha=-1, gamma=config.gamma, reduction="sum")
        return loss / logits.shape[0]

    return sigmoid_focal


def model_prior(config: Config, num_classes: int) -> float | None:
    """Classifier bias prior: π = 1/C (bias -log(C-1), Cui et al.) for sigmoid-focal, else None (zero bias)."""
    return 1.0 / num_classes if config.loss == "sigmoid-focal" else None


# ------------------------------------------------------------------------------------------------ checkpoints


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, every tensor on the CPU; a truncated, corrupt or foreign file raises
    ``UnreadableFile`` naming it.

    Always to the CPU, whatever the training device: ``load_state_dict`` copies weights and optimizer state onto the
    model's device, and the RNG states must stay CPU byte tensors (``torch.set_rng_state`` rejects a CUDA one, so a
    run saved on one device and resumed with ``map_location`` of another could never resume).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, zipfile.BadZipFile) as err:
        raise UnreadableFile(path, f"cannot be read ({err.__class__.__name__}), probably truncated") from err
    except (RuntimeError, pickle.UnpicklingError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UnreadableFile(path, f"not a checkpoint of this engine ({err.__class__.__name__}: {first})") from err


# ------------------------------------------------------------------------------------------- devices and DDP


def _init_distributed(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world_size, whether we started the process group) from torchrun's environment."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, False
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), True


def _barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()



# ------------------------------------------------------------------------------------------------ training


def _refuse_other_config(run_dir: Path, saved: Config | None, config: Config) -> None:
    if saved is None:
        return
    old, new = identity(saved), identity(config)
    if old != new:
        diff = {k: (old.get(k), new.get(k)) for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        raise FileExistsError(f"{run_dir} holds a run of a different config (saved, requested): {diff}; move it away "
                              f"or pass another --out")


def prepare_run(config: Config, out: str | os.PathLike | None = None, *, reuse_stale: bool = False
                ) -> tuple[str, str | None]:
    """Decide what :func:`train` does with the folder of ``config``, and clear what cannot be reused.

    Returns ``(status, message)``. ``status`` is ``"reused"`` (finished by this code), ``"reused-stale"`` (finished
    by other code, kept because ``reuse_stale``), ``"resume"`` (a checkpoint of this code), or ``"train"`` (nothing
    usable). A stale or broken run, or a checkpoint of other code (never resumed, even with ``reuse_stale``: one run
    is trained by one code), is moved to ``<out>/.archive`` first; ``message`` then says so, naming the run and the
    file, and is None when there is nothing to say.

    Raises:
        FileExistsError: if the folder holds a run of a different config (its ``config.json``, ``metrics.json`` or
            checkpoint says so; two configs never share a name, so the folder was put there by hand).
    """
    run_dir = runs_root(out) / run_name(config)
    state = inspect_run(run_dir)
    name = run_name(config)
    _refuse_other_config(run_dir, state.config, config)
    if state.kind == "finished":
        return "reused", None
    if state.kind == "stale" and reuse_stale:
        return "reused-stale", f"run {name} is stale ({state.reason}); reused as it is because of --reuse-stale"
    if state.kind in ("stale", "broken"):
        moved = archive_run(run_dir, state.kind)
        return "train", f"run {name} is {state.kind} ({state.reason}); retraining it (old files kept in {moved})"
    if state.kind == "partial":
        try:
            checkpoint = _read_checkpoint(run_dir / "checkpoint.pt")
            saved = Config.from_dict(checkpoint["config"])
        except (UnreadableFile, KeyError, TypeError, ValueError) as err:
            moved = archive_run(run_dir, "broken")
            return "train", f"run {name}: {err}; training it from the start (old files kept in {moved})"
        _refuse_other_config(run_dir, saved, config)
        saved_code = (checkpoint.get("code") or {}).get("fingerprint")
        if saved_code != code_fingerprint():
            moved = archive_run(run_dir, "stale")
            return "train", (f"run {name} has a checkpoint of other code ({saved_code or 'before fingerprints'}); "
                             f"training it from the start with code {code_fingerprint()} (old files kept in {moved})")
        return "resume", None
    return "train", None


def _writable(root: Path) -> None:
    """Create ``root`` if needed; a file in the way or a folder that cannot be written is one clear error."""
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"out={os.fspath(root)!r} is a file, not a folder; pass a folder for the runs")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:  # keep the kind (permission, read-only or full file system), add what to do
        raise type(err)(f"cannot write runs to out={os.fspath(root)!r} ({err.strerror or err}); pass a writable "
                        f"folder with free space") from err


def train(config: Config, out: str | os.PathLike | None = None, *, progress: bool = True,
          reuse_stale: bool = False) -> dict[str, Any]:
    """Train ``config`` into ``out / run_name(config)``, resuming or loading whatever of this code is there.

    Args:
        config: the run.
        out: parent folder of run directories; default ``focal.engine.data.default_data_root() / "runs"``.
        progress: show tqdm bars (epochs, and batches within an epoch).
        reuse_stale: keep a finished run of other code (with a :class:`RunWarning`) instead of retraining it.

    Returns:
        The run's metrics (:func:`~focal.engine.runs.load_run`): ``history`` (per epoch: ``epoch`` 1-based, ``lr``,
        ``train_loss``, ``train_acc``, ``top1_error``, ``ece``, ``time_s``, ``ended_at`` in seconds since the epoch),
        ``final``
        (:func:`focal.engine.metrics.summarize` of the last epoch's test logits), ``final_top1_error``,
        ``best_epoch``, ``best_top1_error``, ``train_counts``, ``hardware``, ``code`` (fingerprint and torch
        version), ``trained_at``, ``data_files``, ``config`` and ``run_dir``; plus ``status``: ``"trained"``,
        ``"resumed"``, ``"reused"`` or ``"reused-stale"``. Ranks other than 0 of a DDP run return ``{}``.

    Raises:
        FileExistsError: if the run directory holds a run of a different config.
        NotADirectoryError, PermissionError: if ``out`` is a file or cannot be written.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a focal.engine.config.Config, got {type(config).__name__}")
    root = runs_root(out)
    run_dir = root / run_name(config)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not distributed:  # a finished run is loaded without touching the device (a CUDA run reads on a CPU machine)
        status, message = prepare_run(config, out, reuse_stale=reuse_stale)
        if message:
            warnings.warn(message, RunWarning, stacklevel=2)
        if status.startswith("reused"):
            return {**load_run(run_dir), "status": status}
    device = resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    rank, world_size, owns_group = _init_distributed(device)
    try:
        if distributed:  # rank 0 alone looks at (and may archive) the folder; the others follow its decision
            decision: list[Any] = [None]
            if rank == 0:
                try:
                    decision = [prepare_run(config, out, reuse_stale=reuse_stale)]
                    _writable(root)
                except OSError as err:  # every rank raises it, so torchrun ends with the message, not a hang
                    decision = [err]
            dist.broadcast_object_list(decision, src=0)
            if isinstance(decision[0], OSError):
                raise decision[0]
            status, message = decision[0]
            if message and rank == 0:
                warnings.warn(message, RunWarning, stacklevel=2)
            if status.startswith("reused"):
                return {**load_run(run_dir), "status": status} if rank == 0 else {}
        if not distributed:
            _writable(root)
        result = _run(config, run_dir, device, rank, world_size, progress)
    finally:
        if owns_group:
            dist.destroy_process_group()
    return {**result, "status": "resumed" if status == "resume" else "trained"} if result else result


def _load(config: Config, rank: int, world_size: int):
    kwargs = dict(root=config.data_root, imbalance=config.imbalance, lt_profile=config.lt_profile,
                  seed=config.subset_seed, download=config.download, verify=config.verify, n_max=config.n_max)
    if rank == 0:  # rank 0 downloads/unpacks first; the others then read what it left
        data = load_data(config.dataset, **kwargs)
    _barrier(world_size)
    return data if rank == 0 else load_data(config.dataset, **kwargs)


def _resume(checkpoint: Path, model, optimizer, device: torch.device) -> tuple[int, list[dict]]:
    """Restore model, optimizer and RNG from ``checkpoint`` if it exists: (epochs done, history so far)."""
    if not checkpoint.is_file():
        return 0, []
    state = _read_checkpoint(checkpoint)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng_cpu"])
    if device.type == "cuda" and state["rng_cuda"]:
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return state["epoch"], state["history"]


def _run(config: Config, run_dir: Path, device: torch.device, rank: int, world_size: int, progress: bool) -> dict:
    if config.compile and world_size > 1:
        raise ValueError("Config.compile is not supported with DDP (torchrun): CUDA graphs under DDP's gradient hooks "
                         "are untested here; train without --compile, or run the grid's independent runs instead")
    if config.batch_size % world_size:
        raise ValueError(f"Config.batch_size={config.batch_size} must be divisible by the {world_size} DDP ranks")
    data = _load(config, rank, world_size)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
    torch.manual_seed(config.seed)
    model = build_model(config.model, data.num_classes, data.in_channels, prior=model_prior(config, data.num_classes))
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format  # oneDNN on CPU prefers it too
    model = model.to(device=device, memory_format=fmt)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    criterion = make_criterion(config, data.train_counts, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and config.amp else nullcontext()
    norm = dict(mean=data.mean, std=data.std, device=device)
    train_loader = DeviceLoader(data.train_images, data.train_targets, config.batch_size // world_size, shuffle=True,
                                augment=config.augment, seed=config.seed, rank=rank, world_size=world_size, **norm)
    test_loader = DeviceLoader(data.test_images, data.test_targets, 512, **norm)

    checkpoint = run_dir / "checkpoint.pt"
    start, history = _resume(checkpoint, model, optimizer, device)
    if start == 0 and rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        # the data folder and files actually read, so the run says what it trained on (and can be rerun from it)
        write_json(run_dir / "config.json", {**config.replace(data_root=data.root).to_dict(),
                                             "data_files": list(data.files)})
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if cuda else None) \
        if world_size > 1 else model
    forward, graphs = compiled_forward(net, device, config.compile), config.compile and cuda
    lrs, show, logits = lr_schedule(config), progress and rank == 0, None
    with tqdm(total=config.epochs, initial=start, desc=run_name(config), unit="epoch", disable=not show) as bar:
        for epoch in range(start, config.epochs):
            tic = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = lrs[epoch]
            train_loader.set_epoch(epoch)
            with tqdm(total=len(train_loader), desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                      disable=not show) as batch_bar:
                totals = train_epoch(forward, net, train_loader, criterion, optimizer, autocast, fmt, batch_bar,
                                     graphs)
            if world_size > 1:
                dist.all_reduce(totals)
            loss_sum, correct, seen = totals.tolist()
            row = {"epoch": epoch + 1, "lr": lrs[epoch], "train_loss": loss_sum / seen, "train_acc": correct / seen,
                   "top1_error": None, "ece": None}
            if rank == 0 and (epoch + 1 == config.epochs or (epoch + 1) % config.eval_every == 0):
                logits = predict(model, test_loader, autocast, fmt)
                row.update(evaluate(logits, data.test_targets))
                bar.set_postfix(loss=f"{row['train_loss']:.3f}", err=f"{row['top1_error']:.1f}%")
            history.append({**row, "time_s": time.perf_counter() - tic, "ended_at": time.time()})
            if rank == 0 and (epoch + 1 == config.epochs or (epoch + 1) % config.checkpoint_every == 0):
                _save_checkpoint(checkpoint, {
                    "epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "rng_cpu": torch.get_rng_state(), "rng_cuda": torch.cuda.get_rng_state_all() if cuda else [],
                    "history": history, "config": config.to_dict(), "code": code_record()})
            _barrier(world_size)
            bar.update()
    if rank == 0:
        if logits is None:  # killed after the last checkpoint but before metrics.json
            logits = predict(model, test_loader, autocast, fmt)
        _finish(config, run_dir, data, history, logits, hardware(device, world_size))
    _barrier(world_size)
    return load_run(run_dir) if rank == 0 else {}


def _finish(config: Config, run_dir: Path, data, history: list[dict], logits: torch.Tensor, hw: str) -> None:
    """Write the test logits, then metrics.json (last: its presence marks a finished run)."""
    write_npz(run_dir / "test_logits.npz", logits=logits.numpy(), labels=data.test_targets.numpy())
    best = min((row for row in history if row["top1_error"] is not None), key=lambda row: row["top1_error"])
    write_json(run_dir / "metrics.json", {
        "name": run_name(config), "description": data.description,
        "config": config.replace(data_root=data.root).to_dict(), "history": history,
        "final": metrics.summarize(logits, data.test_targets, data.train_counts),
        "final_top1_error": history[-1]["top1_error"], "best_epoch": best["epoch"],
        "best_top1_error": best["top1_error"], "train_counts": list(data.train_counts), "hardware": hw,
        "train_time_s": sum(row["time_s"] for row in history), "code": code_record(),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "data_files": list(data.files)})
