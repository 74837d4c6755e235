"""Signed checkpoints of the chain head: `sign(payload) -> signature` and `verify(payload, signature) -> bool`
are injected (the gateway key lives elsewhere). The payload is the canonical JSON of the head, so anyone with
the public key can check that the log up to that point has not been rewritten since."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.audit.jcs import canonicalize

Signer = Callable[[bytes], bytes]
SignatureCheck = Callable[[bytes, bytes], bool]


@dataclass(frozen=True)
class Checkpoint:
    upto_seq: int
    count: int
    hash: str
    recorded: str
    key_id: str
    payload: bytes
    signature: bytes


def checkpoint_payload(upto_seq: int, count: int, chain_hash: str, recorded: str, key_id: str) -> bytes:
    return canonicalize(
        {
            "type": "zcc-audit-checkpoint",
            "uptoSeq": upto_seq,
            "count": count,
            "hash": chain_hash,
            "recorded": recorded,
            "keyId": key_id,
        }
    )


def make_checkpoint(upto_seq: int, count: int, chain_hash: str, recorded: str, key_id: str, sign: Signer) -> Checkpoint:
    payload = checkpoint_payload(upto_seq, count, chain_hash, recorded, key_id)
    return Checkpoint(upto_seq, count, chain_hash, recorded, key_id, payload, sign(payload))


def checkpoint_problem(checkpoint: Checkpoint, chain_hash_at: str | None, check: SignatureCheck) -> str | None:
    """Why the checkpoint does not hold against the chain, or None."""
    expected = checkpoint_payload(
        checkpoint.upto_seq, checkpoint.count, checkpoint.hash, checkpoint.recorded, checkpoint.key_id
    )
    if expected != checkpoint.payload:
        return "checkpoint payload does not match its fields"
    if not check(checkpoint.payload, checkpoint.signature):
        return "checkpoint signature is not valid"
    if chain_hash_at is None:
        return f"the event at seq {checkpoint.upto_seq} named by the checkpoint is missing"
    if chain_hash_at != checkpoint.hash:
        return f"the chain at seq {checkpoint.upto_seq} differs from the signed checkpoint"
    return None


def ec_signer(private_key: object) -> Signer:
    """A Signer for a `cryptography` EC private key (ECDSA with SHA-256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return lambda payload: private_key.sign(payload, ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]


def ec_signature_check(public_key: object) -> SignatureCheck:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    def check(payload: bytes, signature: bytes) -> bool:
        try:
            public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]
        except InvalidSignature:
            return False
        return True

    return check
