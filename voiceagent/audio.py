"""PCM16 mono audio: conversions, durations, levels, WAV files, stateful resampling, G.711.

Ground floor. numpy and libsamplerate are imported on first use, so importing this is cheap.
"""

from __future__ import annotations

import functools
import importlib
import io
import math
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SAMPLE_WIDTH = 2  # bytes per sample: 16-bit signed little-endian, mono everywhere
# WAV rates read: a telephone's up to a studio's; a header claiming 1 Hz (or 10⁹) is no speech
# (and would make a resampler fail, or a second of audio last a day)
WAV_RATES = range(8000, 192_000 + 1)
FULL_SCALE = 32768.0


class WavFormatError(ValueError):
    """A WAV file that is not 16-bit PCM mono at 8-192 kHz (the only format voiceagent reads)."""


# --- conversions ---------------------------------------------------------------------------


def pcm_to_int16(pcm: bytes) -> npt.NDArray[np.int16]:
    """The samples of PCM16 bytes (a copy, so the array is writable)."""
    import numpy as np

    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def int16_to_pcm(samples: npt.NDArray[np.int16]) -> bytes:
    import numpy as np

    return np.asarray(samples, dtype="<i2").tobytes()


def pcm_to_float32(pcm: bytes) -> npt.NDArray[np.float32]:
    """Samples scaled to [-1.0, 1.0)."""
    import numpy as np

    scaled: npt.NDArray[np.float32] = np.frombuffer(pcm, dtype="<i2") / np.float32(FULL_SCALE)
    return scaled.astype(np.float32)


def float32_to_pcm(samples: npt.NDArray[np.floating[Any]]) -> bytes:
    """PCM16 of float samples; values beyond full scale are clipped, not wrapped."""
    import numpy as np

    scaled = np.rint(np.asarray(samples, dtype=np.float64) * FULL_SCALE)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


# --- durations -----------------------------------------------------------------------------


def pcm_samples(pcm: bytes) -> int:
    return len(pcm) // SAMPLE_WIDTH


def samples_to_ms(n_samples: int, sample_rate: int) -> float:
    return n_samples * 1000.0 / sample_rate


def ms_to_samples(ms: float, sample_rate: int) -> int:
    return round(ms * sample_rate / 1000.0)


def pcm_duration_ms(pcm: bytes, sample_rate: int) -> float:
    return samples_to_ms(pcm_samples(pcm), sample_rate)


def silence(n_samples: int) -> bytes:
    return bytes(n_samples * SAMPLE_WIDTH)


# --- levels --------------------------------------------------------------------------------


def rms_dbfs(pcm: bytes) -> float:
    """Root-mean-square level in dBFS (a full-scale square wave is 0); -inf for silence."""
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples))))
    return 20.0 * math.log10(rms / FULL_SCALE) if rms > 0 else -math.inf


def peak_dbfs(pcm: bytes) -> float:
    """Peak level in dBFS; -inf for silence."""
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    peak = int(np.max(np.abs(samples))) if samples.size else 0
    return 20.0 * math.log10(peak / FULL_SCALE) if peak > 0 else -math.inf


# --- WAV -----------------------------------------------------------------------------------


def parse_wav(data: bytes) -> tuple[bytes, int]:
    """(PCM16 mono bytes, sample rate) of a WAV file's contents; WavFormatError for another
    format or a rate outside ``WAV_RATES``.

    Tolerates the "unknown length" header that streaming writers (espeak-ng --stdout) emit.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            channels, width = reader.getnchannels(), reader.getsampwidth()
            rate = reader.getframerate()
            if channels != 1 or width != SAMPLE_WIDTH:
                raise WavFormatError(
                    f"expected 16-bit PCM mono WAV, got {channels} channel(s) of "
                    f"{8 * width}-bit samples at {rate} Hz"
                )
            if rate not in WAV_RATES:
                raise WavFormatError(
                    f"a sample rate of {rate} Hz: voiceagent reads WAV files at "
                    f"{WAV_RATES.start}-{WAV_RATES.stop - 1} Hz"
                )
            pcm = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as error:
        raise WavFormatError(f"not a 16-bit PCM mono WAV file: {error}") from error
    return pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH], rate


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """(PCM16 mono bytes, sample rate) of a WAV file; WavFormatError for any other format."""
    return parse_wav(Path(path).read_bytes())


def write_wav(path: str | Path, pcm: bytes, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(SAMPLE_WIDTH)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm)


# --- resampling ----------------------------------------------------------------------------

# libsamplerate holds a few ms of audio inside its filter; flushing pushes this much zero
# input through it, comfortably more than sinc_medium's delay at any ratio we use.
_FLUSH_PAD_MS = 30.0


class Resampler:
    """Stateful PCM16 mono rate converter for one stream in one direction (libsamplerate).

    Feed chunks of any size to ``process``; call ``flush`` at the end of an utterance to get
    the audio still inside the filter (never on an idle timer: that would cut words). After
    a flush the output of the utterance is exactly ``floor(n_in * to_rate / from_rate)``
    samples, and the resampler is ready for the next utterance.
    """

    def __init__(self, from_rate: int, to_rate: int, converter: str = "sinc_medium") -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} → {to_rate}")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._ratio = to_rate / from_rate
        self._carry = b""  # an odd trailing byte, kept until its sample is complete
        self._samples_in = 0
        self._samples_out = 0
        self._state: Any = None
        if from_rate != to_rate:
            # By name: samplerate is a compiled module without type information.
            samplerate = importlib.import_module("samplerate")
            self._state = samplerate.Resampler(converter, channels=1)

    @property
    def passthrough(self) -> bool:
        return self._state is None

    def process(self, pcm: bytes) -> bytes:
        """The converted audio available so far for this chunk of input."""
        data = self._carry + pcm
        whole = len(data) - len(data) % SAMPLE_WIDTH
        self._carry = data[whole:]
        data = data[:whole]
        if self._state is None or not data:
            return data
        self._samples_in += len(data) // SAMPLE_WIDTH
        return self._emit(self._state.process(pcm_to_float32(data), self._ratio))

    def flush(self) -> bytes:
        """The rest of the utterance's audio; then the resampler starts afresh."""
        self._carry = b""
        if self._state is None or self._samples_in == 0:
            return b""
        import numpy as np

        expected = self._samples_in * self.to_rate // self.from_rate
        pad = np.zeros(ms_to_samples(_FLUSH_PAD_MS, self.from_rate) + 64, dtype=np.float32)
        tail = self._state.process(pad, self._ratio, end_of_input=True)
        # The padding's own output is not audio: keep only what the input accounts for.
        missing = max(0, expected - self._samples_out)
        tail = tail[:missing]
        if len(tail) < missing:
            tail = np.concatenate([tail, np.zeros(missing - len(tail), dtype=np.float32)])
        out = self._emit(tail)
        self._state.reset()
        self._samples_in = self._samples_out = 0
        return out

    def _emit(self, samples: npt.NDArray[np.float32]) -> bytes:
        self._samples_out += len(samples)
        return float32_to_pcm(samples)


# --- G.711 μ-law and A-law -----------------------------------------------------------------
# Bit-exact with CPython's audioop (lin2ulaw/ulaw2lin/lin2alaw/alaw2lin at width 2), which
# is gone from Python 3.13: the same integer algorithm, run once over every input to fill
# lookup tables, so every Python gets identical bytes without audioop or audioop-lts.

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # audioop clips the 14-bit magnitude here before adding the bias
_ULAW_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segments(magnitude: npt.NDArray[np.int32], ends: tuple[int, ...]) -> npt.NDArray[np.int32]:
    """The first segment whose end is >= the magnitude (8 when beyond the last)."""
    import numpy as np

    return np.searchsorted(np.asarray(ends, dtype=np.int32), magnitude, side="left").astype(
        np.int32
    )


@functools.cache
def _ulaw_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    """(code of every int16 indexed by its bits as uint16, little-endian int16 of every code)."""
    import numpy as np

    value = np.arange(-32768, 32768, dtype=np.int32) >> 2  # audioop encodes 14 bits
    mask = np.where(value < 0, 0x7F, 0xFF).astype(np.int32)
    magnitude = np.minimum(np.abs(value), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = _segments(magnitude, _ULAW_SEGMENT_ENDS)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0xF)
    code = np.where(segment >= 8, 0x7F, code) ^ mask
    encode = code.astype(np.uint8)

    inverted = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((inverted & 0x0F) << 3) + _ULAW_BIAS) << ((inverted & 0x70) >> 4)
    decode = np.where(inverted & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype("<i2")
    return _unsigned_index(encode), decode


@functools.cache
def _alaw_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    """(code of every int16 indexed by its bits as uint16, little-endian int16 of every code)."""
    import numpy as np

    value = np.arange(-32768, 32768, dtype=np.int32) >> 3  # audioop encodes 13 bits
    negative = value < 0
    mask = np.where(negative, 0x55, 0xD5).astype(np.int32)
    magnitude = np.where(negative, -value - 1, value)
    segment = _segments(magnitude, _ALAW_SEGMENT_ENDS)
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code) ^ mask
    encode = code.astype(np.uint8)

    toggled = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (toggled & 0x70) >> 4
    t = (toggled & 0x0F) << 4
    t = np.where(segment == 0, t + 8, (t + 0x108) << np.maximum(segment - 1, 0))
    decode = np.where(toggled & 0x80, t, -t).astype("<i2")
    return _unsigned_index(encode), decode


def _encode(pcm16: bytes, table: npt.NDArray[np.uint8]) -> bytes:
    import numpy as np

    # the table is indexed by the sample's bits read as unsigned: one lookup, no arithmetic
    # (a phone call encodes 50 frames a second: bench/phone_load.py)
    samples = np.frombuffer(pcm16, dtype="<u2", count=len(pcm16) // SAMPLE_WIDTH)
    encoded: bytes = table[samples].tobytes()
    return encoded


def _decode(codes: bytes, table: npt.NDArray[np.int16]) -> bytes:
    import numpy as np

    return table[np.frombuffer(codes, dtype=np.uint8)].tobytes()


def _unsigned_index(encode: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A table indexed by sample + 32768 re-indexed by the sample's 16 bits as unsigned."""
    import numpy as np

    return np.roll(encode, 32768)


def ulaw_encode(pcm16: bytes) -> bytes:
    """G.711 μ-law bytes of PCM16 (one per sample; a trailing odd byte is ignored)."""
    return _encode(pcm16, _ulaw_tables()[0])


def ulaw_decode(ulaw: bytes) -> bytes:
    """PCM16 of G.711 μ-law bytes."""
    return _decode(ulaw, _ulaw_tables()[1])


def alaw_encode(pcm16: bytes) -> bytes:
    """G.711 A-law bytes of PCM16 (one per sample; a trailing odd byte is ignored)."""
    return _encode(pcm16, _alaw_tables()[0])


def alaw_decode(alaw: bytes) -> bytes:
    """PCM16 of G.711 A-law bytes."""
    return _decode(alaw, _alaw_tables()[1])
