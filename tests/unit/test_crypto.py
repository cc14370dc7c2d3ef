"""Fernet encryption at rest: `Cipher`, key checks, and the key file made for a local SQLite database."""

from __future__ import annotations

import base64
import logging
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.adapters.crypto import Cipher, is_key, key_file_for, load_cipher, new_key
from bot.errors import ConfigError, StoredKeyUnreadable
from tests.conftest import ENCRYPTION_KEY, OLD_ENCRYPTION_KEY

SECRET = "brz_live_CryptoTestSecret_9Z8Y"
GENERATED = "generated an encryption key"


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="bot.adapters.crypto")
    return caplog


@contextmanager
def often_switching_threads() -> Iterator[None]:
    """Let threads interleave at almost every bytecode, so that races show up."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def messages(caplog: pytest.LogCaptureFixture, containing: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if containing in r.getMessage()]


# --- Cipher ----------------------------------------------------------------------------------------


def test_cipher_round_trips_text() -> None:
    cipher = Cipher([ENCRYPTION_KEY])

    for plain in (SECRET, "xoxb-1-2-3", "ünïcödé ✓", ""):
        token = cipher.encrypt(plain)
        assert token.isascii()
        assert cipher.decrypt(token) == plain
    assert SECRET not in cipher.encrypt(SECRET)


def test_the_same_secret_encrypts_differently_each_time() -> None:
    cipher = Cipher([ENCRYPTION_KEY])

    tokens = {cipher.encrypt(SECRET) for _ in range(5)}

    assert len(tokens) == 5
    assert {cipher.decrypt(token) for token in tokens} == {SECRET}


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old_token = Cipher([OLD_ENCRYPTION_KEY]).encrypt(SECRET)
    both = Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY])

    assert both.decrypt(old_token) == SECRET
    assert Cipher([ENCRYPTION_KEY]).decrypt(both.encrypt(SECRET)) == SECRET
    with pytest.raises(StoredKeyUnreadable):
        Cipher([OLD_ENCRYPTION_KEY]).decrypt(both.encrypt(SECRET))


def test_rotate_re_encrypts_with_the_first_key() -> None:
    old_token = Cipher([OLD_ENCRYPTION_KEY]).encrypt(SECRET)

    rotated = Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY]).rotate(old_token)

    assert rotated != old_token
    assert Cipher([ENCRYPTION_KEY]).decrypt(rotated) == SECRET
    with pytest.raises(StoredKeyUnreadable):
        Cipher([OLD_ENCRYPTION_KEY]).decrypt(rotated)


@pytest.mark.parametrize("token", ["not a token", "gAAAAA-truncated", "ünïcödé", ""])
def test_what_no_key_opens_is_unreadable_without_showing_it(token: str) -> None:
    cipher = Cipher([ENCRYPTION_KEY])

    for operation in (cipher.decrypt, cipher.rotate):
        with pytest.raises(StoredKeyUnreadable, match="BREEZE_ENCRYPTION_KEYS") as raised:
            operation(token)
        assert ENCRYPTION_KEY not in str(raised.value)


def test_a_token_of_a_lost_key_is_unreadable() -> None:
    token = Cipher([new_key()]).encrypt(SECRET)

    with pytest.raises(StoredKeyUnreadable):
        Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY]).decrypt(token)
    with pytest.raises(StoredKeyUnreadable):
        Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY]).rotate(token)


def test_a_cipher_needs_a_key() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Cipher([])


# --- is_key / new_key ------------------------------------------------------------------------------


def test_new_keys_are_valid_fernet_keys_and_all_different() -> None:
    keys = {new_key() for _ in range(5)}

    assert len(keys) == 5
    for key in keys:
        assert is_key(key)
        assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"


@pytest.mark.parametrize("text", [ENCRYPTION_KEY, OLD_ENCRYPTION_KEY, Fernet.generate_key().decode()])
def test_is_key_accepts_fernet_keys(text: str) -> None:
    assert is_key(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "too-short",
        ENCRYPTION_KEY[:-4],  # base64, but not 32 bytes
        base64.urlsafe_b64encode(b"k" * 33).decode(),  # base64, one byte too long
        "é" * 44,
        "!" * 44,
        ENCRYPTION_KEY.replace("=", "") + "#",
    ],
)
def test_is_key_refuses_anything_else(text: str) -> None:
    assert not is_key(text)


# --- load_cipher and the key file ------------------------------------------------------------------


def test_the_key_file_sits_next_to_the_database() -> None:
    assert key_file_for(Path("/srv/data/app.db")) == Path("/srv/data/app.db.key")
    assert key_file_for(Path("relative.db")) == Path("relative.db.key")


def test_configured_keys_are_used_and_no_key_file_is_made(
    tmp_path: Path, warnings: pytest.LogCaptureFixture
) -> None:
    key_file = key_file_for(tmp_path / "app.db")

    cipher = load_cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY], key_file=key_file)

    assert not key_file.exists()
    assert Cipher([ENCRYPTION_KEY]).decrypt(cipher.encrypt(SECRET)) == SECRET
    assert warnings.records == []


def test_a_key_file_is_generated_once_with_mode_0600_and_reused(
    tmp_path: Path, warnings: pytest.LogCaptureFixture
) -> None:
    key_file = key_file_for(tmp_path / "app.db")

    first = load_cipher([], key_file=key_file)
    content = key_file.read_text()
    token = first.encrypt(SECRET)
    second = load_cipher([], key_file=key_file)
    third = load_cipher([], key_file=key_file)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert content.endswith("\n")
    assert is_key(content.strip())
    assert key_file.read_text() == content
    assert second.decrypt(token) == third.decrypt(token) == SECRET
    assert Cipher([content.strip()]).decrypt(token) == SECRET
    [warning] = messages(warnings, GENERATED)
    assert str(key_file) in warning
    assert "BREEZE_ENCRYPTION_KEYS" in warning
    assert content.strip() not in warnings.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db.key"]  # no temporary files left


def test_workers_starting_together_share_one_generated_key(
    tmp_path: Path, warnings: pytest.LogCaptureFixture
) -> None:
    """Each web worker loads the cipher as it starts: none may read a half-written key file."""
    key_file = key_file_for(tmp_path / "app.db")
    workers = 8
    start = threading.Barrier(workers)
    ciphers: list[Cipher] = []
    failures: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            ciphers.append(load_cipher([], key_file=key_file))
        except BaseException as exc:
            failures.append(exc)

    with often_switching_threads():
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert failures == []
    token = Cipher([key_file.read_text().strip()]).encrypt(SECRET)
    assert [cipher.decrypt(token) for cipher in ciphers] == [SECRET] * workers
    assert len(messages(warnings, GENERATED)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db.key"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_can_read_is_warned_about(
    tmp_path: Path, warnings: pytest.LogCaptureFixture, mode: int
) -> None:
    key_file = key_file_for(tmp_path / "app.db")
    key_file.write_text(ENCRYPTION_KEY + "\n")
    key_file.chmod(mode)

    cipher = load_cipher([], key_file=key_file)

    assert Cipher([ENCRYPTION_KEY]).decrypt(cipher.encrypt(SECRET)) == SECRET
    [warning] = messages(warnings, "can be read by others")
    assert str(key_file) in warning
    assert f"{mode:o}" in warning
    assert ENCRYPTION_KEY not in warnings.text


def test_a_private_key_file_is_read_silently(tmp_path: Path, warnings: pytest.LogCaptureFixture) -> None:
    key_file = key_file_for(tmp_path / "app.db")
    key_file.write_text(f"  {ENCRYPTION_KEY}\n\n")
    key_file.chmod(0o600)

    cipher = load_cipher([], key_file=key_file)

    assert Cipher([ENCRYPTION_KEY]).decrypt(cipher.encrypt(SECRET)) == SECRET
    assert warnings.records == []


@pytest.mark.parametrize(
    "content",
    [b"garbage\n", b"", b"\n", ENCRYPTION_KEY[:-4].encode(), b"\xff\xfe\x00binary", "é".encode() * 22],
    ids=["garbage", "empty", "blank", "truncated", "binary", "non-ascii"],
)
def test_a_damaged_key_file_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    key_file = key_file_for(tmp_path / "app.db")
    key_file.write_bytes(content)
    key_file.chmod(0o600)

    with pytest.raises(ConfigError, match="damaged") as raised:
        load_cipher([], key_file=key_file)

    assert str(key_file) in str(raised.value)
    assert key_file.read_bytes() == content  # never overwritten: it may be restorable


def test_a_key_file_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    key_file = key_file_for(tmp_path / "app.db")
    key_file.mkdir()

    with pytest.raises(ConfigError, match="cannot be read"):
        load_cipher([], key_file=key_file)


def test_a_key_file_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    key_file = key_file_for(tmp_path / "missing-folder" / "app.db")

    with pytest.raises(ConfigError, match="cannot be created") as raised:
        load_cipher([], key_file=key_file)

    assert "BREEZE_ENCRYPTION_KEYS" in str(raised.value)


def test_without_keys_or_a_key_file_the_setting_is_required(warnings: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="BREEZE_ENCRYPTION_KEYS is not set") as raised:
        load_cipher([], key_file=None)

    assert "python -m bot new-encryption-key" in str(raised.value)
    assert warnings.records == []


def test_an_in_memory_database_may_use_a_throwaway_key(warnings: pytest.LogCaptureFixture) -> None:
    first = load_cipher([], key_file=None, ephemeral_ok=True)
    second = load_cipher([], key_file=None, ephemeral_ok=True)

    assert first.decrypt(first.encrypt(SECRET)) == SECRET
    with pytest.raises(StoredKeyUnreadable):
        second.decrypt(first.encrypt(SECRET))
    assert len(messages(warnings, "throwaway key")) == 2


def test_configured_keys_win_over_an_existing_key_file(tmp_path: Path) -> None:
    key_file = key_file_for(tmp_path / "app.db")
    key_file.write_text(OLD_ENCRYPTION_KEY + "\n")
    key_file.chmod(0o600)

    cipher = load_cipher([ENCRYPTION_KEY], key_file=key_file)

    with pytest.raises(StoredKeyUnreadable):
        Cipher([OLD_ENCRYPTION_KEY]).decrypt(cipher.encrypt(SECRET))
