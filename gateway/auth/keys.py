"""The gateway's own token-signing keys: a small key ring with rotation, published as a JWKS.

The ring lives in one private JWKS file (mode 0600) so that every worker process signs and verifies with the
same keys. The newest key signs; older keys stay published so that tokens signed just before a rotation keep
verifying until they expire (tokens live at most 300 s, so keeping one or two previous keys is enough).
Workers notice a rotation done by another process through the file's modification time."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet

SIGNING_ALG = "ES384"
_CURVE = "P-384"
KEY_FILE = "gateway-signing-keys.json"


class SigningKeys:
    """Load-or-create the key ring in `key_dir`; `signing_key()` for issuing, `find(kid)` for verifying."""

    def __init__(self, key_dir: Path) -> None:
        self.path = Path(key_dir) / KEY_FILE
        self._lock = threading.Lock()
        self._keys: list[ECKey] = []
        self._mtime: float | None = None
        self._ensure_exists()
        self._reload()

    def signing_key(self) -> ECKey:
        self._reload_if_changed()
        return self._keys[-1]

    def find(self, kid: str) -> ECKey | None:
        """The key with this kid; re-reads the file once when the kid is unknown (rotated elsewhere)."""
        key = self._lookup(kid)
        if key is None:
            self._reload()
            key = self._lookup(kid)
        return key

    def public_jwks(self) -> dict[str, Any]:
        self._reload_if_changed()
        return {"keys": [_public_dict(key) for key in reversed(self._keys)]}

    def rotate(self, keep: int = 2) -> str:
        """Make a fresh key the signing key; keep the `keep` most recent old keys for verification."""
        if keep < 1:
            raise ValueError("keep at least one previous key so that tokens in flight still verify")
        with self._lock:
            self._reload()
            keys = [*self._keys[-keep:], _new_key()]
            self._write(keys)
            self._reload()
            return str(keys[-1].kid)

    def _lookup(self, kid: str) -> ECKey | None:
        self._reload_if_changed()
        return next((key for key in self._keys if key.kid == kid), None)

    def _ensure_exists(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: when several workers start at once exactly one creates the ring
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(descriptor, "w") as handle:
            json.dump(_serialise([_new_key()]), handle)

    def _reload_if_changed(self) -> None:
        if self._mtime != _mtime(self.path):
            self._reload()

    def _reload(self) -> None:
        for _ in range(20):  # a concurrent O_EXCL creator may not have written its content yet
            data = self.path.read_text()
            if data.strip():
                break
            time.sleep(0.05)
        mtime = _mtime(self.path)
        keys = [ECKey.import_key(entry) for entry in json.loads(data)["keys"]]
        if not keys or any(not key.is_private for key in keys):
            raise ValueError(f"{self.path} must hold at least one private EC key")
        self._keys, self._mtime = keys, mtime

    def _write(self, keys: list[ECKey]) -> None:
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(_serialise(keys), handle)
        os.replace(temporary, self.path)


def verification_keyset(jwks: dict[str, Any]) -> KeySet:
    """A public JWKS (e.g. fetched from /auth/jwks) as a joserfc KeySet, for resource servers elsewhere."""
    return KeySet.import_key_set(jwks)


def _new_key() -> ECKey:
    key = ECKey.generate_key(_CURVE, private=True)
    key.ensure_kid()
    return key


def _serialise(keys: list[ECKey]) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=True, alg=SIGNING_ALG, use="sig") for key in keys]}


def _public_dict(key: ECKey) -> dict[str, Any]:
    return key.as_dict(private=False, alg=SIGNING_ALG, use="sig")


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
