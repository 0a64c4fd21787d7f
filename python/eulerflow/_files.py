"""Files written atomically and read without unpickling (shared by network
files and training checkpoints)."""

from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np

__all__ = ["atomic_savez", "read_npz"]


def atomic_savez(path, arrays: dict[str, np.ndarray]) -> None:
    """Writes ``arrays`` to ``path`` as an .npz: a temporary file in the same
    folder, flushed and fsynced, then renamed over ``path``, so a reader sees
    the old file or the whole new one, never a part."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".eulerflow-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _check_sizes(npz, path, what: str) -> None:
    """Every member's header must describe the bytes the archive holds for it: a
    tampered shape is refused before NumPy allocates for it."""
    for info in npz.zip.infolist():
        with npz.zip.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"{path} is not a valid {what}: member {info.filename} has "
                                 f"unsupported .npy version {version}")
            header = member.tell()
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if dtype.hasobject or need != info.file_size - header:
            raise ValueError(f"{path} is not a valid {what}: member {info.filename} declares "
                             f"shape {shape} of {dtype} ({need} bytes) but holds "
                             f"{info.file_size - header} bytes")


def read_npz(path, what: str) -> dict[str, np.ndarray]:
    """All arrays of an .npz file, never unpickling; a foreign, truncated or
    corrupt file is refused with ValueError."""
    try:
        with open(path, "rb") as fh:
            npz = np.load(fh, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError(f"{path} is not a valid {what}: not an .npz archive")
            with npz:
                _check_sizes(npz, path, what)
                return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if str(exc).startswith(f"{path} is not a valid"):
            raise
        raise ValueError(f"{path} is not a valid {what}: unreadable "
                         f"({type(exc).__name__}: {exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError) as exc:
        raise ValueError(f"{path} is not a valid {what}: unreadable "
                         f"({type(exc).__name__}: {exc})") from None
