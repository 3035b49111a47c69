"""Reads a file the user named, bounded: regular files only, never more than a byte limit."""

from __future__ import annotations

import os
import stat

# Reads go in pieces of this size, so a refused file never costs more than the limit plus one
# piece of memory, whatever the file system says about its size.
CHUNK_BYTES = 64 * 2**10

# Opening a FIFO for reading waits for a writer unless O_NONBLOCK is set; O_NOCTTY keeps a
# terminal from becoming this process's controlling terminal. Neither matters to a regular file.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileReadError(ValueError):
    """A named file that cannot be read: one line that names the path and why."""


def read_user_file(
    path: str | os.PathLike[str], limit_bytes: int, error: type[ValueError] = FileReadError
) -> bytes:
    """The whole of the regular file at `path` if it holds at most `limit_bytes`; else raises
    `error` (FileReadError unless told otherwise) with one line naming the path.

    Never blocks and never reads more than limit_bytes + 1: a FIFO, /dev/zero, a directory or a
    socket is refused before any read, and st_size is not trusted (files under /proc report 0,
    and a file can grow while it is read). Symbolic links are followed (Hugging Face's cache
    links config.json to a blob), and the file they lead to is held to the same rules."""
    shown = os.fspath(path) or "''"
    try:
        mode = os.stat(path).st_mode
    except OSError as problem:
        raise error(f"cannot read {shown}: {problem.strerror or problem}") from None
    except ValueError:
        # os.stat raises ValueError, not OSError, for a NUL character or an unencodable name.
        raise error(f"cannot read {shown}: not a valid file name") from None
    # Checked before opening, so a device is refused unopened (opening some has side effects:
    # a tape rewinds, a watchdog starts), and again on the descriptor, for what was opened.
    _check_kind(shown, mode, error)
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as problem:
        raise error(f"cannot read {shown}: {problem.strerror or problem}") from None
    try:
        status = os.fstat(descriptor)
        _check_kind(shown, status.st_mode, error)
        if status.st_size > limit_bytes:
            raise error(_too_large(shown, limit_bytes, status.st_size))
        pieces: list[bytes] = []
        remaining = limit_bytes + 1
        while remaining > 0:
            piece = os.read(descriptor, min(CHUNK_BYTES, remaining))
            if not piece:
                break
            pieces.append(piece)
            remaining -= len(piece)
    except OSError as problem:
        raise error(f"cannot read {shown}: {problem.strerror or problem}") from None
    finally:
        os.close(descriptor)
    data = b"".join(pieces)
    if len(data) > limit_bytes:
        raise error(_too_large(shown, limit_bytes, None))
    return data


def _check_kind(shown: str, mode: int, error: type[ValueError]) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise error(f"cannot read {shown}: it is {kind}, not a regular file")


def _too_large(shown: str, limit_bytes: int, size_bytes: int | None) -> str:
    size = f"{size_bytes:,} bytes" if size_bytes is not None else f"more than {limit_bytes:,} bytes"
    label = f" ({size_label(limit_bytes)})" if limit_bytes >= 2**10 else ""
    return f"{shown} is {size}; the limit is {limit_bytes:,} bytes{label}"


def size_label(size_bytes: int) -> str:
    """'1 MiB', '64 KiB' or '500 bytes': a limit as people say it."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size_bytes >= factor:
            return f"{size_bytes / factor:g} {unit}"
    return f"{size_bytes:,} bytes"
