"""The audit checkpoint key: an ECDSA P-256 key of this gateway, kept apart from the token-signing ring (those keys
rotate within minutes; a checkpoint must stay verifiable for the whole retention period).

`audit-checkpoint-key.pem` (mode 0600) signs; every public key ever used is kept as
`audit-checkpoint-<key id>.pub.pem`, so checkpoints signed before a key change still verify. The key id is the
first 16 hex digits of the SHA-256 of the public key (DER SubjectPublicKeyInfo). All instances of one gateway
share the directory (ZCC_AUDIT_KEY_DIR, default: ZCC_AUTH_KEY_DIR or var/keys).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit.checkpoints import SignatureCheck, Signer, ec_signature_check, ec_signer

PRIVATE_FILE = "audit-checkpoint-key.pem"


def default_key_dir() -> Path:
    return Path(os.environ.get("ZCC_AUDIT_KEY_DIR") or os.environ.get("ZCC_AUTH_KEY_DIR") or "var/keys")


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


@dataclass(frozen=True)
class CheckpointKey:
    key_id: str
    sign: Signer
    check: SignatureCheck  # verifies with whichever kept public key the payload's keyId names


def load_checkpoint_key(key_dir: Path | None = None, create: bool = True) -> CheckpointKey:
    """Load (or create, mode 0600) the signing key; raise FileNotFoundError when absent and `create` is False."""
    directory = key_dir or default_key_dir()
    path = directory / PRIVATE_FILE
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"no audit checkpoint key at {path}")
        _create(path)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    public = private.public_key()
    kid = key_id(public)
    _keep_public(directory, kid, public)
    return CheckpointKey(kid, ec_signer(private), _checker(directory))


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    try:  # several workers may start at once: the first link wins, the others load that key
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _keep_public(directory: Path, kid: str, public: ec.EllipticCurvePublicKey) -> None:
    path = directory / f"audit-checkpoint-{kid}.pub.pem"
    if not path.exists():
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        path.write_bytes(pem)


def _checker(directory: Path) -> SignatureCheck:
    def check(payload: bytes, signature: bytes) -> bool:
        try:
            kid = str(json.loads(payload)["keyId"])
        except (ValueError, KeyError, TypeError):
            return False
        path = directory / f"audit-checkpoint-{kid}.pub.pem"
        if not kid.isalnum() or not path.exists():
            return False
        public = serialization.load_pem_public_key(path.read_bytes())
        return ec_signature_check(public)(payload, signature)

    return check
