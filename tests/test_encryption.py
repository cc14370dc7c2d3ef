"""Fernet encryption at rest: the cipher, and the key file generated for a local SQLite database."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from bot.crypto import Cipher, is_key, key_file_for, load_cipher, new_key
from bot.errors import ConfigError, StoredKeyUnreadable
from tests.conftest import ENCRYPTION_KEY, OLD_ENCRYPTION_KEY

SECRET = "brz_live_SomethingSecret_1234"


def test_round_trip_and_no_two_tokens_alike() -> None:
    cipher = Cipher([ENCRYPTION_KEY])

    first, second = cipher.encrypt(SECRET), cipher.encrypt(SECRET)

    assert first != second
    assert SECRET not in first
    assert cipher.decrypt(first) == cipher.decrypt(second) == SECRET


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old_token = Cipher([OLD_ENCRYPTION_KEY]).encrypt(SECRET)
    both = Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY])

    assert both.decrypt(old_token) == SECRET
    rotated = both.rotate(old_token)
    assert Cipher([ENCRYPTION_KEY]).decrypt(rotated) == SECRET
    with pytest.raises(StoredKeyUnreadable):
        Cipher([OLD_ENCRYPTION_KEY]).decrypt(rotated)
    with pytest.raises(StoredKeyUnreadable):
        Cipher([ENCRYPTION_KEY]).decrypt("not a fernet token")


def test_new_keys_are_valid_and_different() -> None:
    first, second = new_key(), new_key()

    assert first != second
    assert is_key(first)
    assert is_key(ENCRYPTION_KEY)
    assert not is_key("too-short")
    assert not is_key("é" * 44)


def test_configured_keys_win_over_any_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "app.db.key"

    cipher = load_cipher([ENCRYPTION_KEY], key_file=key_file)

    assert not key_file.exists()
    assert Cipher([ENCRYPTION_KEY]).decrypt(cipher.encrypt(SECRET)) == SECRET


def test_sqlite_without_keys_gets_a_private_key_file_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    key_file = key_file_for(tmp_path / "app.db")
    assert key_file.name == "app.db.key"

    first = load_cipher([], key_file=key_file)
    token = first.encrypt(SECRET)
    again = load_cipher([], key_file=key_file)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert is_key(key_file.read_text().strip())
    assert again.decrypt(token) == SECRET
    warnings = [r.getMessage() for r in caplog.records if "generated an encryption key" in r.getMessage()]
    assert len(warnings) == 1
    assert str(key_file) in warnings[0]
    assert key_file.read_text().strip() not in caplog.text


def test_a_key_file_others_can_read_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key_file = tmp_path / "app.db.key"
    key_file.write_text(ENCRYPTION_KEY + "\n")
    key_file.chmod(0o644)

    load_cipher([], key_file=key_file)

    assert "can be read by others" in caplog.text


def test_a_damaged_key_file_stops_start_up(tmp_path: Path) -> None:
    key_file = tmp_path / "app.db.key"
    key_file.write_text("garbage\n")

    with pytest.raises(ConfigError, match="damaged"):
        load_cipher([], key_file=key_file)


def test_without_keys_or_a_key_file_the_setting_is_required() -> None:
    with pytest.raises(ConfigError, match="BREEZE_ENCRYPTION_KEYS is not set"):
        load_cipher([], key_file=None)
