"""Values from the wire (a carrier's ids, DTMF keys, mark names, what a caller said) made safe:
``printable`` for a log line or the terminal, ``file_stem`` and ``file_in`` for a file name.

Ground floor: imports nothing of voiceagent.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

PRINT_LIMIT = 200  # characters of a wire value on a log line (an id is ~34)
STEM_LIMIT = 100  # characters of a file stem made from a wire value
HASH_MARK = "~"  # never kept from an id: a stem holding it was made by ``file_stem``
HASH_CHARS = 16  # hex digits of the original's SHA-256 after ``HASH_MARK``

# C0 and C1 controls and DEL (newlines, ESC, NUL, NEL…), the line and paragraph separators,
# the bidirectional controls (Trojan Source), and lone surrogates (they cannot be encoded).
# Zero-width joiners stay: Indic scripts and emoji need them.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, limit: int | None = PRINT_LIMIT) -> str:
    """``value`` as one line of inert text: every control character (newline, ESC…) written
    as ``\\xNN`` or ``\\uNNNN``, and cut at ``limit`` characters with a note (None: whole)."""
    text = value if isinstance(value, str) else str(value)
    if _UNPRINTABLE.search(text) is not None:
        text = _UNPRINTABLE.sub(_escape, text)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}…(+{len(text) - limit} chars)"
    return text


def one_line(text: str) -> str:
    """Spoken or heard words as one printable line: runs of whitespace (newlines included)
    become one space; the controls left are escaped. Never cut."""
    return printable(" ".join(text.split()), None)


def file_stem(wire_id: str, limit: int = STEM_LIMIT) -> str:
    """A file name stem for an id from the wire: never empty, never a path, never hidden.

    An id of ``[A-Za-z0-9_.-]`` only, not starting with a dot, at most ``limit`` long, is
    kept as it is. Any other has each other character replaced by ``_``, its leading dots
    dropped, is cut to fit, and ends in ``~`` and 16 hex digits of its SHA-256: two ids
    never share a stem (a kept id never holds ``~``).
    """
    if limit < HASH_CHARS + 9:
        raise ValueError(f"limit {limit} leaves no room for the id beside its hash")
    stem = _UNSAFE_IN_NAME.sub("_", wire_id).lstrip(".")
    if stem == wire_id and stem and len(stem) <= limit:
        return stem
    digest = hashlib.sha256(wire_id.encode("utf-8", "surrogatepass")).hexdigest()
    prefix = stem[: limit - HASH_CHARS - 1] or "id"
    return f"{prefix}{HASH_MARK}{digest[:HASH_CHARS]}"


def file_in(folder: Path, wire_id: str, suffix: str) -> Path:
    """``folder / (file_stem(wire_id) + suffix)``, checked to land in ``folder`` itself
    (ValueError otherwise: e.g. a symlink there pointing elsewhere)."""
    path = folder / f"{file_stem(wire_id)}{suffix}"
    if path.resolve().parent != folder.resolve():
        raise ValueError(f"{printable(wire_id)!s}: its file would land outside {folder}")
    return path
