"""voiceagent.audio: PCM conversions, levels, WAV files and the streaming resampler."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from voiceagent import audio
from voiceagent.audio import Resampler, WavFormatError

RATE_PAIRS = [
    (8000, 16000),
    (16000, 8000),
    (16000, 22050),
    (22050, 16000),
    (22050, 24000),
    (24000, 22050),
    (24000, 44100),
    (44100, 24000),
    (24000, 8000),
    (44100, 8000),
    (8000, 44100),
]


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    return audio.float32_to_pcm(amplitude * np.sin(2 * np.pi * freq * t))


def random_chunks(pcm: bytes, seed: int) -> list[bytes]:
    """Splits bytes at random places, odd offsets included (a sample may be cut in two)."""
    rng = np.random.default_rng(seed)
    chunks, start = [], 0
    while start < len(pcm):
        size = int(rng.integers(1, 1500))
        chunks.append(pcm[start : start + size])
        start += size
    return chunks


def resample_whole(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    resampler = Resampler(from_rate, to_rate)
    return resampler.process(pcm) + resampler.flush()


def resample_chunked(pcm: bytes, from_rate: int, to_rate: int, seed: int) -> bytes:
    resampler = Resampler(from_rate, to_rate)
    out = b"".join(resampler.process(chunk) for chunk in random_chunks(pcm, seed))
    return out + resampler.flush()


def samples(pcm: bytes) -> npt.NDArray[np.int32]:
    return audio.pcm_to_int16(pcm).astype(np.int32)


def test_int16_and_float32_conversions_round_trip_exactly() -> None:
    pcm = struct.pack("<5h", -32768, -1, 0, 1, 32767)
    assert audio.int16_to_pcm(audio.pcm_to_int16(pcm)) == pcm
    assert audio.float32_to_pcm(audio.pcm_to_float32(pcm)) == pcm
    assert audio.pcm_to_float32(pcm)[0] == -1.0


def test_float_samples_beyond_full_scale_are_clipped_not_wrapped() -> None:
    pcm = audio.float32_to_pcm(np.array([1.5, -1.5], dtype=np.float32))
    assert list(audio.pcm_to_int16(pcm)) == [32767, -32768]


def test_durations_and_silence_agree_on_sample_counts() -> None:
    assert audio.ms_to_samples(20, 24000) == 480
    assert audio.samples_to_ms(480, 24000) == 20.0
    quiet = audio.silence(480)
    assert len(quiet) == 960 and not any(quiet)
    assert audio.pcm_samples(quiet) == 480
    assert audio.pcm_duration_ms(quiet, 24000) == 20.0


def test_levels_of_a_full_scale_sine_and_of_silence() -> None:
    tone = sine(1000, 0.1, 16000, amplitude=1.0)
    assert audio.peak_dbfs(tone) == pytest.approx(0.0, abs=0.01)
    assert audio.rms_dbfs(tone) == pytest.approx(-3.01, abs=0.05)
    assert audio.rms_dbfs(audio.silence(100)) == -math.inf
    assert audio.peak_dbfs(b"") == -math.inf


def test_wav_round_trip(tmp_path: Path) -> None:
    pcm = sine(440, 0.25, 24000)
    audio.write_wav(tmp_path / "tone.wav", pcm, 24000)
    assert audio.read_wav(tmp_path / "tone.wav") == (pcm, 24000)


def test_reading_a_stereo_wav_names_the_format_it_found(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(44100)
        writer.writeframes(bytes(400))
    with pytest.raises(WavFormatError, match="2 channel"):
        audio.read_wav(tmp_path / "stereo.wav")


def test_reading_something_that_is_not_a_wav_is_a_wav_format_error(tmp_path: Path) -> None:
    (tmp_path / "noise.wav").write_bytes(b"ID3 this is an mp3 really")
    with pytest.raises(WavFormatError):
        audio.read_wav(tmp_path / "noise.wav")


def test_a_streaming_header_of_unknown_length_is_read_to_the_end_of_the_data() -> None:
    pcm = sine(300, 0.05, 22050)
    unknown = 0x7FFFFFFF
    header = b"RIFF" + struct.pack("<I", unknown) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16)
    header += b"data" + struct.pack("<I", unknown)
    assert audio.parse_wav(header + pcm) == (pcm, 22050)


def test_equal_rates_pass_audio_through_untouched() -> None:
    resampler = Resampler(24000, 24000)
    pcm = sine(440, 0.1, 24000)
    assert resampler.passthrough
    assert resampler.process(pcm) + resampler.flush() == pcm


@pytest.mark.parametrize(("from_rate", "to_rate"), RATE_PAIRS)
def test_chunked_resampling_equals_resampling_whole(from_rate: int, to_rate: int) -> None:
    pcm = sine(440, 2.0, from_rate)
    chunked = samples(resample_chunked(pcm, from_rate, to_rate, seed=from_rate + to_rate))
    whole = samples(resample_whole(pcm, from_rate, to_rate))
    assert len(chunked) == len(whole)
    assert np.max(np.abs(chunked - whole)) <= 1  # float rounding only


@pytest.mark.parametrize(("from_rate", "to_rate"), RATE_PAIRS)
def test_output_length_after_flush_follows_the_rate_ratio(from_rate: int, to_rate: int) -> None:
    pcm = sine(440, 1.234, from_rate)
    out = resample_chunked(pcm, from_rate, to_rate, seed=7)
    assert audio.pcm_samples(out) == audio.pcm_samples(pcm) * to_rate // from_rate


@pytest.mark.parametrize(("from_rate", "to_rate"), RATE_PAIRS)
def test_no_clicks_at_chunk_boundaries(from_rate: int, to_rate: int) -> None:
    amplitude, freq = 0.5, 440.0
    out = samples(resample_chunked(sine(freq, 1.0, from_rate), from_rate, to_rate, seed=3))
    # The tone's abrupt start and end ring in any filter: judge the 1,000 or so chunk
    # boundaries in between. A sine's steepest step between neighbouring samples is
    # A·2πf/rate; a discontinuity at a boundary would be far larger.
    edge = to_rate // 50
    steepest = amplitude * audio.FULL_SCALE * 2 * math.pi * freq / to_rate
    assert np.max(np.abs(np.diff(out[edge:-edge]))) <= 1.02 * steepest + 2


def test_the_resampled_tone_keeps_its_level() -> None:
    out = resample_chunked(sine(440, 1.0, 24000), 24000, 8000, seed=1)
    assert audio.rms_dbfs(out) == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.2)


def test_after_a_flush_the_next_utterance_resamples_as_if_fresh() -> None:
    resampler = Resampler(24000, 16000)
    first, second = sine(440, 0.3, 24000), sine(660, 0.2, 24000)
    resampler.process(first)
    resampler.flush()
    again = resampler.process(second) + resampler.flush()
    assert again == resample_whole(second, 24000, 16000)
