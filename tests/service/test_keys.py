"""Keys outside the database: key files (mode, format, rotation), keys from the environment, sub-keys."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest

from theradose.errors import InputError
from theradose.service.keys import add_key_to_file, derive, read_key_file, ring_from_text
from theradose.service.settings import Settings


def test_key_file_is_created_private_and_rotates(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    first, created = add_key_to_file(path, "a")
    assert created and first == "a" and (path.stat().st_mode & 0o777) == 0o600
    second, created = add_key_to_file(path)
    assert not created and second.startswith("k") and len(second) == 9
    ring = read_key_file(path)
    assert ring.active_id == second and set(ring.keys) == {"a", second}
    assert all(len(k) == 32 for k in ring.keys.values())
    assert "a" in repr(ring) and ring.keys["a"].hex() not in repr(ring)  # never shows key material
    with pytest.raises(InputError, match="already in"):
        add_key_to_file(path, "a")


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    add_key_to_file(path, "a")
    os.chmod(path, 0o644)
    with pytest.raises(InputError, match=r"mode 0644: group and others must have no access; run `chmod 600"):
        read_key_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no key"),
        ("a 00ff\n", "at least 32 are needed"),
        ("a zz\n", "expected '<key id> <hex key>'"),
        ("a " + "11" * 32 + "\na " + "22" * 32 + "\n", "appears twice"),
        ("bad/id " + "11" * 32 + "\n", "use 1-32 letters"),
    ],
)
def test_bad_key_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "keys"
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(InputError, match=message):
        read_key_file(path)


def test_missing_key_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="theradose audit keygen --key-file"):
        read_key_file(tmp_path / "nope")


def test_environment_key_and_its_id() -> None:
    ring = ring_from_text("a-long-enough-secret")
    key = b"a-long-enough-secret"
    expected_id = "env-" + hmac.new(key, b"theradose/key-id", hashlib.sha256).hexdigest()[:12]
    assert ring.active_id == expected_id and ring.keys[expected_id] == key
    with pytest.raises(InputError, match="at least 16"):
        ring_from_text("short")


def test_sub_keys_are_separated_by_purpose() -> None:
    master = b"m" * 32
    assert (
        derive(master, "audit-chain") == hmac.new(master, b"theradose/audit-chain", hashlib.sha256).digest()
    )
    assert derive(master, "audit-chain") != derive(master, "e-signature")


def test_settings_need_exactly_one_key_source(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(InputError, match="no key to seal"):
        Settings(db_url=url, secret_key=None, key_file=None).keyring()
    path = tmp_path / "keys"
    add_key_to_file(path, "a")
    with pytest.raises(InputError, match="keep one of them"):
        Settings(db_url=url, secret_key="x" * 20, key_file=path).keyring()
    assert Settings(db_url=url, secret_key=None, key_file=path).keyring().active_id == "a"


def test_cli_keygen_and_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    import json

    from theradose.cli import main

    for name in ("THERADOSE_SECRET_KEY", "THERADOSE_CHECKPOINT", "THERADOSE_DB"):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "site.key"
    main(["audit", "keygen", "--key-file", str(key_file), "--key-id", "site-1", "--json"])
    assert json.loads(capsys.readouterr().out) == {
        "key_file": str(key_file),
        "key_id": "site-1",
        "created": True,
    }
    monkeypatch.setenv("THERADOSE_KEY_FILE", str(key_file))
    db = str(tmp_path / "s.db")
    main(["db", "upgrade", "--db", db, "--json"])
    monkeypatch.setenv("THERADOSE_PASSWORD", "long-enough-pw")
    main(["users", "add", "boss", "--role", "admin", "--db", db, "--json"])
    capsys.readouterr()
    cp = tmp_path / "cp"
    cp.mkdir()
    main(["audit", "checkpoint", "--to", str(cp), "--db", db, "--json"])
    written = json.loads(capsys.readouterr().out)
    assert written["written"] is True and written["seq"] == 1
    main(["audit", "verify", "--db", db, "--checkpoint", str(cp), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert (
        result["ok"] is True and result["checkpoint"]["checkpoints"] == 1 and result["key_ids"] == ["site-1"]
    )
