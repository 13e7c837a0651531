"""Files that are never seen half-written, and readers that name the file they could not read.

Every file the engine writes (a run's JSON, npz and checkpoint, a fake CIFAR batch) goes through
:func:`atomic_write`: the bytes go to a temporary file in the same folder, which then replaces the target in one
``os.replace``, so a reader sees the old file or the new one, never a prefix of it. Reading such files back,
:func:`read_json` and :class:`UnreadableFile` turn a truncated or corrupt file into one error that carries its path.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["UnreadableFile", "RunLock", "atomic_write", "write_json", "write_npz", "write_pickle", "read_json"]


class UnreadableFile(OSError):
    """A file that exists but cannot be read back (truncated, corrupt, wrong format); ``path`` names it.

    Example:
        >>> str(UnreadableFile("/tmp/x.json", "not valid JSON"))
        '/tmp/x.json: not valid JSON'
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = Path(path)
        self.reason = reason

    def __reduce__(self):  # so that it crosses process boundaries (parallel training workers) intact
        return type(self), (os.fspath(self.path), self.reason)


class RunLock:
    """An exclusive lock on one file path, held by at most one process: ``flock`` on the file (created if needed).

    Grid workers, in one command or in several started on one output folder, take a run's lock before they look at
    or train its folder, so no two ever train the same run. The operating system drops the lock when its process
    ends, so a killed worker never leaves a run locked. POSIX only: where ``fcntl`` is missing (Windows) every
    acquire succeeds, i.e. there is no locking.

    Example:
        >>> import tempfile
        >>> a = RunLock(Path(tempfile.mkdtemp()) / "run.lock")
        >>> a.acquire(wait=False), RunLock(a.path).acquire(wait=False)   # the second holder is refused
        (True, False)
        >>> a.release(); RunLock(a.path).acquire(wait=False)
        True
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock; with ``wait=False`` return False at once if another holder has it."""
        try:
            import fcntl
        except ImportError:  # no flock here: no locking
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` on a temporary path next to ``path``, then move it into place.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "a.txt"
        >>> atomic_write(target, lambda tmp: tmp.write_text("hello"))
        >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
        ('hello', ['a.txt'])
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """``obj`` as indented JSON (NaN allowed), written atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1, allow_nan=True) + "\n"))


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Arrays as an uncompressed ``.npz`` at exactly ``path``, written atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object stops numpy from appending ".npz" to the tmp name
            np.savez(fh, **arrays)

    atomic_write(path, write)


def write_pickle(path: str | os.PathLike, obj: Any, protocol: int = 2) -> None:
    """``obj`` pickled with ``protocol`` (2: the Python 2 layout of the real CIFAR batches), written atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=protocol)

    atomic_write(path, write)


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        UnreadableFile: if it exists but is not valid JSON (e.g. truncated), naming the path.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableFile(path, f"cannot be read ({err.__class__.__name__}: {err})") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UnreadableFile(path, f"not valid JSON ({err.msg} at line {err.lineno}), probably truncated") from err
