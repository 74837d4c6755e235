from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.auth.keys import KEY_FILE, SigningKeys


def test_creates_a_private_key_file_only_the_owner_can_read(tmp_path: Path) -> None:
    SigningKeys(tmp_path)
    mode = stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode)
    assert mode == 0o600


def test_published_jwks_holds_no_private_material(tmp_path: Path) -> None:
    jwks = SigningKeys(tmp_path).public_jwks()
    assert jwks["keys"] and all("d" not in key for key in jwks["keys"])
    assert jwks["keys"][0]["alg"] == "ES384"


def test_rotation_changes_signing_key_and_keeps_old_one_published(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path)
    old = keys.signing_key().kid
    new = keys.rotate()
    assert new != old and keys.signing_key().kid == new
    assert [key["kid"] for key in keys.public_jwks()["keys"]] == [new, old]
    assert keys.find(old) is not None


def test_rotation_retires_keys_beyond_keep(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path)
    first = keys.signing_key().kid
    keys.rotate(keep=1)
    keys.rotate(keep=1)
    assert keys.find(first) is None
    assert len(keys.public_jwks()["keys"]) == 2


def test_another_process_sees_the_rotation(tmp_path: Path) -> None:
    worker_a, worker_b = SigningKeys(tmp_path), SigningKeys(tmp_path)
    new = worker_a.rotate()
    assert worker_b.find(new) is not None
    assert worker_b.signing_key().kid == new


def test_rotation_must_keep_a_previous_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SigningKeys(tmp_path).rotate(keep=0)
