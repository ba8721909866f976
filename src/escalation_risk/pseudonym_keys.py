"""The secret key behind every pseudonym: where it comes from, and how to make one.

Pseudonyms are HMAC-SHA256 hashes of names, id numbers and phones. With a known key
an 11-digit phone or a structured id number is recovered by brute force in minutes,
so there is no default key: the caller passes one, or points
``ESCALATION_RISK_PSEUDONYM_KEY_FILE`` at a key file made by
``escalation-risk keygen PATH`` (or, less safely, puts the key itself in
``ESCALATION_RISK_PSEUDONYM_KEY``). A key shorter than 32 bytes, with almost no
variety in it, or the development key earlier versions published is refused.

The committed sample district comes with ``data/sample/SAMPLE_KEY``, a key that is
public on purpose: for the synthetic sample, the tests and the notebooks only. A
folder is read with it only when it carries a ``SYNTHETIC`` marker
(:func:`refuse_sample_key`).

A key is named without being shown by its fingerprint (:func:`key_fingerprint`, an
HMAC of a constant under the key): the ``PSEUDONYMISED`` marker of a folder of
pseudonyms carries it, so pseudonyms made with another key are refused by name.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import warnings
from pathlib import Path

__all__ = ["KEY_ENV", "KEY_FILE_ENV", "MIN_KEY_BYTES", "SAMPLE_KEY_FINGERPRINT", "PseudonymKeyError",
           "generate_key_file", "key_fingerprint", "read_key_file", "refuse_sample_key", "resolve_pseudonym_key"]

KEY_ENV = "ESCALATION_RISK_PSEUDONYM_KEY"
KEY_FILE_ENV = "ESCALATION_RISK_PSEUDONYM_KEY_FILE"
MIN_KEY_BYTES = 32
MIN_DISTINCT_BYTES = 10
# Published by escalation-risk <= 0.x as a silent default: known to everyone, so refused.
_PUBLISHED_KEYS = frozenset({b"escalation-risk-development-key"})
_HOW = (f"make one with `escalation-risk keygen PATH` and set {KEY_FILE_ENV}=PATH "
        "(or pass pseudonym_key=...)")


# The constant whose HMAC names a key: changing it changes every fingerprint.
_FINGERPRINT_MESSAGE = b"escalation-risk pseudonym key fingerprint v1"
#: The fingerprint of the public sample key, ``data/sample/SAMPLE_KEY``.
SAMPLE_KEY_FINGERPRINT = "fd69472651240d4a"


class PseudonymKeyError(ValueError):
    """No usable pseudonym key; the message says how to make one."""


def key_fingerprint(key: bytes) -> str:
    """A name for ``key`` that reveals nothing of it: 16 hex characters of an HMAC of a
    constant. Two keys with the same fingerprint are the same key (to 64 bits)."""
    return hmac.new(key, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:16]


def refuse_sample_key(fingerprint: str, synthetic: bool, where: str) -> None:
    """Raise when the public sample key (by its fingerprint) is used for ``where`` and that
    is not marked synthetic: real data hashed with a published key is not pseudonymised."""
    if fingerprint == SAMPLE_KEY_FINGERPRINT and not synthetic:
        raise PseudonymKeyError(f"{where} has no SYNTHETIC marker, and the pseudonym key is the public sample "
                                f"key (data/sample/SAMPLE_KEY), which hides nothing: it is for synthetic data "
                                f"only; {_HOW}")


def check_key(key: bytes, where: str) -> bytes:
    """``key`` if it is long and varied enough to keep pseudonyms secret, else raise."""
    if key in _PUBLISHED_KEYS:
        raise PseudonymKeyError(f"the pseudonym key from {where} is the published development key, which "
                                f"hides nothing; {_HOW}")
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"the pseudonym key from {where} has {len(key)} bytes; at least "
                                f"{MIN_KEY_BYTES} are needed; {_HOW}")
    if len(set(key)) < MIN_DISTINCT_BYTES:
        raise PseudonymKeyError(f"the pseudonym key from {where} is too repetitive to be secret; {_HOW}")
    return key


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The key in a key file (surrounding whitespace ignored), checked."""
    p = Path(path)
    try:
        text = p.read_bytes().strip()
    except FileNotFoundError:
        raise PseudonymKeyError(f"pseudonym key file {p} does not exist; {_HOW}") from None
    except OSError as e:
        raise PseudonymKeyError(f"pseudonym key file {p} cannot be read ({e.strerror})") from None
    if os.name == "posix" and p.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO) and \
            not p.name.startswith("SAMPLE"):
        warnings.warn(f"pseudonym key file {p} is readable by other users; `chmod 600 {p}`",
                      UserWarning, stacklevel=3)
    return check_key(text, f"file {p}")


def find_key(key: str | bytes | os.PathLike[str] | None, *, argument: str, env: str, file_env: str
             ) -> bytes | None:
    """A key from, in order: the argument (a key, or a ``Path`` to a key file), the
    environment variable ``env``, the file named by ``file_env``; None when none is set.
    Every key found is checked for strength."""
    if isinstance(key, os.PathLike):
        return read_key_file(key)
    if key is not None:
        return check_key(key.encode() if isinstance(key, str) else bytes(key), f"the {argument} argument")
    value = os.environ.get(env)
    if value is not None:
        return check_key(value.strip().encode(), f"${env}")
    path = os.environ.get(file_env)
    return read_key_file(path) if path else None


def resolve_pseudonym_key(key: str | bytes | os.PathLike[str] | None = None) -> bytes:
    """The HMAC key: the argument (a key, or a ``Path`` to a key file), else
    ``$ESCALATION_RISK_PSEUDONYM_KEY``, else the file named by
    ``$ESCALATION_RISK_PSEUDONYM_KEY_FILE``; raise :class:`PseudonymKeyError` when
    there is none or it is too weak. Nothing falls back to a default."""
    found = find_key(key, argument="pseudonym_key", env=KEY_ENV, file_env=KEY_FILE_ENV)
    if found is None:
        raise PseudonymKeyError(f"no pseudonym key: neither {KEY_ENV} nor {KEY_FILE_ENV} is set; {_HOW}")
    return found


def generate_key_file(path: str | os.PathLike[str]) -> Path:
    """Write a new random key (32 bytes, hex) to ``path``, readable only by its owner.

    Never overwrites: a lost key makes every earlier pseudonym unlinkable, so an
    existing file raises ``FileExistsError``.
    """
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
    os.chmod(p, 0o600)  # whatever the umask was
    return p
