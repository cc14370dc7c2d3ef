"""Encryption at rest with Fernet: the first of BREEZE_ENCRYPTION_KEYS encrypts, all decrypt."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.config import is_key as is_key
from bot.errors import ConfigError, StoredKeyUnreadable

log = logging.getLogger(__name__)

KEY_FILE_SUFFIX = ".key"


class Cipher:
    """Encrypts and decrypts short secrets; `rotate` re-encrypts with the first key."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])

    def encrypt(self, plain: str) -> str:
        """The Fernet token (ASCII) for `plain`."""
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The secret inside `token`; `StoredKeyUnreadable` if no configured key opens it."""
        return _opened(self._fernet.decrypt, token).decode("utf-8")

    def rotate(self, token: str) -> str:
        """`token` re-encrypted with the first key."""
        return _opened(self._fernet.rotate, token).decode("ascii")


def _opened(operation: Callable[[bytes], bytes], token: str) -> bytes:
    try:
        return operation(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        raise StoredKeyUnreadable(
            "a stored secret cannot be decrypted with any of BREEZE_ENCRYPTION_KEYS"
        ) from None


def new_key() -> str:
    """A fresh random Fernet key."""
    return Fernet.generate_key().decode("ascii")


def key_file_for(sqlite_file: Path) -> Path:
    """Where the generated key of a SQLite database lives: next to it."""
    return sqlite_file.with_name(sqlite_file.name + KEY_FILE_SUFFIX)


def load_cipher(keys: Sequence[str], *, key_file: Path | None, ephemeral_ok: bool = False) -> Cipher:
    """The cipher from BREEZE_ENCRYPTION_KEYS, else from (or into) `key_file` for local SQLite."""
    if keys:
        return Cipher(keys)
    if key_file is not None:
        return Cipher([_read_or_create(key_file)])
    if ephemeral_ok:
        log.warning("BREEZE_ENCRYPTION_KEYS is not set: using a throwaway key for this in-memory database")
        return Cipher([new_key()])
    raise ConfigError(
        "BREEZE_ENCRYPTION_KEYS is not set; it is required with this DATABASE_URL. "
        "Generate one with `python -m bot new-encryption-key` and keep it as safe as the database."
    )


def _read_or_create(path: Path) -> str:
    if path.exists():
        return _read(path)
    key = new_key()
    try:
        created = _create(path, key + "\n")
    except OSError as exc:
        raise ConfigError(
            f"The encryption key file {path} cannot be created ({_why(exc)}); "
            "make its folder writable, or set BREEZE_ENCRYPTION_KEYS."
        ) from None
    if not created:  # another process (a second worker) made it first: use theirs
        return _read(path)
    log.warning(
        "BREEZE_ENCRYPTION_KEYS is not set: generated an encryption key in %s (mode 0600). "
        "Keep it with the database; without it stored keys cannot be read. "
        "Set BREEZE_ENCRYPTION_KEYS in production.",
        path,
    )
    return key


def _create(path: Path, content: str) -> bool:
    """Create `path` (mode 0600) holding `content`, unless it exists; True if this call made it.

    The content is written under a temporary name and then linked into place, so that a process
    starting at the same moment finds either no file or a complete one, never an empty one.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        except OSError:
            # A file system without hard links: create it in place (a racing reader may see it empty).
            return _create_in_place(path, content)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _create_in_place(path: Path, content: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(content)
    return True


def _read(path: Path) -> str:
    try:
        key = path.read_text(encoding="ascii").strip()
    except UnicodeError:
        key = ""
    except OSError as exc:
        raise ConfigError(f"The encryption key file {path} cannot be read ({_why(exc)}).") from None
    if not is_key(key):
        raise ConfigError(f"The encryption key file {path} is damaged; restore it from a backup.")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the encryption key file %s can be read by others (mode %o); chmod 600 it", path, mode)
    return key


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
