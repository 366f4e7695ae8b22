"""G.711 μ-law and A-law in voiceagent.audio: bit-exact with CPython's audioop codec."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from voiceagent import audio

EVERY_SAMPLE = np.arange(-32768, 32768, dtype="<i2").tobytes()
EVERY_CODE = bytes(range(256))


def reference_codec() -> ModuleType:
    """CPython's audioop (stdlib below 3.13, the audioop-lts package from 3.13 on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # audioop warns on 3.11-3.12
        try:
            return importlib.import_module("audioop")
        except ImportError:
            pytest.skip(
                f"no reference codec on Python {sys.version_info[:2]}: the stdlib audioop is "
                "gone from 3.13; pip install audioop-lts to compare against it"
            )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(audio.ulaw_encode, "lin2ulaw"), (audio.alaw_encode, "lin2alaw")],
    ids=["ulaw", "alaw"],
)
def test_encoding_every_sample_matches_audioop(ours: Callable[[bytes], bytes], theirs: str) -> None:
    expected = getattr(reference_codec(), theirs)(EVERY_SAMPLE, 2)
    assert ours(EVERY_SAMPLE) == expected


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(audio.ulaw_decode, "ulaw2lin"), (audio.alaw_decode, "alaw2lin")],
    ids=["ulaw", "alaw"],
)
def test_decoding_every_code_matches_audioop(ours: Callable[[bytes], bytes], theirs: str) -> None:
    expected = getattr(reference_codec(), theirs)(EVERY_CODE, 2)
    assert ours(EVERY_CODE) == expected


@pytest.mark.parametrize(
    ("encode", "decode"),
    [(audio.ulaw_encode, audio.ulaw_decode), (audio.alaw_encode, audio.alaw_decode)],
    ids=["ulaw", "alaw"],
)
def test_every_decoded_value_survives_a_second_trip(
    encode: Callable[[bytes], bytes], decode: Callable[[bytes], bytes]
) -> None:
    # Not encode(decode(code)) == code: μ-law has two zeros (0x7F and 0xFF).
    decoded = decode(EVERY_CODE)
    assert decode(encode(decoded)) == decoded


@pytest.mark.parametrize(
    "codec",
    [audio.ulaw_encode, audio.ulaw_decode, audio.alaw_encode, audio.alaw_decode],
)
def test_empty_input_gives_empty_output(codec: Callable[[bytes], bytes]) -> None:
    assert codec(b"") == b""


def test_one_code_per_whole_sample() -> None:
    assert len(audio.ulaw_encode(bytes(7))) == 3
    assert len(audio.ulaw_decode(bytes(3))) == 6
