"""One-line secret files (OAuth client id, redirect URI, rotating refresh token) and their sibling lock.

The formats are those of the vendor's ``octogen-mcp-login``: one value per file, a trailing newline,
owner-only permissions. Reading strips surrounding whitespace. Writing is atomic (a temporary file in the
same directory, fsynced, then renamed over the target), so a reader never sees a half-written token, and the
file is mode 0600.

The lock is ``<file>.lock`` (the file's name plus ``.lock``, as the vendor's tools use), locked with
``fcntl.flock`` (the call the vendor uses; ``flock`` and ``lockf`` locks do not see each other on Linux).
Nothing is ever written into the lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from octogen_source.errors import OctogenError

LOCK_TIMEOUT_SECONDS = 120.0
_LOCK_POLL_SECONDS = 0.05
MAX_SECRET_FILE_BYTES = 64 * 1024


class SecretFileError(OctogenError):
    """A secret file is missing, unreadable, empty or cannot be written (message names the file only)."""


def lock_path_for(path: Path) -> Path:
    """``<file>.lock`` next to ``path`` (not resolved through symlinks, like the vendor's tools)."""
    expanded = path.expanduser()
    return expanded.with_name(expanded.name + ".lock")


def _unreadable(expanded: Path, what: str, exc: OSError) -> SecretFileError:
    if isinstance(exc, FileNotFoundError):
        return SecretFileError(f"{what} file {expanded} does not exist")
    if isinstance(exc, IsADirectoryError):
        return SecretFileError(f"{what} file {expanded} is a directory")
    if isinstance(exc, PermissionError):
        return SecretFileError(f"{what} file {expanded} is not readable (permission denied)")
    return SecretFileError(f"{what} file {expanded} cannot be read: {exc.strerror or type(exc).__name__}")


def check_readable_file(path: Path, *, what: str) -> None:
    """:class:`SecretFileError` (as :func:`read_secret_file` words it) when ``path`` cannot be opened for
    reading. The content is not judged: a file another tool is rewriting in place may be empty for a moment,
    and is read under its lock when used."""
    expanded = path.expanduser()
    try:
        with expanded.open("rb"):
            pass
    except OSError as exc:
        raise _unreadable(expanded, what, exc) from None


def read_secret_file(path: Path, *, what: str) -> str:
    """The stripped one-line value of ``path``; :class:`SecretFileError` naming ``what`` and the file."""
    expanded = path.expanduser()
    try:
        with expanded.open("rb") as handle:
            raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise _unreadable(expanded, what, exc) from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(f"{what} file {expanded} is too large to hold a token")
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretFileError(f"{what} file {expanded} is not UTF-8 text") from None
    if not value:
        raise SecretFileError(f"{what} file {expanded} is empty")
    if any(character.isspace() for character in value) or not value.isprintable():
        raise SecretFileError(f"{what} file {expanded} holds more than one line or control characters")
    return value


def unwritable_reason(path: Path) -> str | None:
    """Why :func:`write_secret_file` could never write ``path`` (its lock file included), or None.

    Missing directories are fine where they can be created (the nearest existing one is writable), as
    ``~/.config/octogen`` on a first sign-in.
    """
    expanded = path.expanduser()
    target = Path(os.path.realpath(expanded))
    if target.is_dir():
        return "it is a directory"
    for directory in dict.fromkeys((target.parent, expanded.parent)):  # the file's, and its lock's
        existing = directory
        while not os.path.lexists(existing) and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            if existing == directory:
                return f"{directory} is not a directory"
            return f"its directory {directory} cannot be created ({existing} is not a directory)"
        if not os.access(existing, os.W_OK | os.X_OK):
            if existing == directory:
                return f"its directory {directory} is not writable"
            return f"its directory {directory} cannot be created ({existing} is not writable)"
    return None


def write_secret_file(path: Path, value: str) -> None:
    """Replace ``path`` atomically with ``value`` + newline, mode 0600 (parent directories created 0700).

    A symlinked ``path`` keeps its link: the file it points to is replaced.
    """
    target = Path(os.path.realpath(path.expanduser()))
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def exclusive_file_lock(path: Path, *, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` for the block; wait at most ``timeout`` seconds."""
    lock_path = lock_path_for(path)
    try:
        lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise SecretFileError(
            f"cannot open the lock file {lock_path}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SecretFileError(
                        f"another run has held {lock_path} for more than {timeout:.0f} s; try again later"
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
