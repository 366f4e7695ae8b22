"""Keeps credentials out of logs, errors and reprs: masking of keys and bearer tokens."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

MASK = "***"

# A bearer token, or anything shaped like an API key ("sk-…"), even when it is not ours.
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_KEY_SHAPED = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")


def key_fingerprint(api_key: str | None) -> str:
    """A stable, non-reversible id for a key (sha256 hex), '' for no key."""
    if not api_key:
        return ""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return `text` with every known secret, bearer token and key-shaped word masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _KEY_SHAPED.sub(MASK, text)


def redact_value(value: object, secrets: Iterable[str | None] = ()) -> object:
    """Redact strings inside JSON-like data (dicts, lists, strings), leaving the shape."""
    known = tuple(secrets)
    if isinstance(value, str):
        return redact(value, known)
    if isinstance(value, Mapping):
        return {str(k): redact_value(v, known) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, known) for v in value]
    return value
