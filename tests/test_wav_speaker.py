"""WavSpeaker: a real-time speaker whose WAV file holds exactly what a listener would hear."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import numpy as np
import pytest

from voiceagent import audio, ports
from voiceagent.adapters.wav_speaker import WavSpeaker

RATE = 8000
BLOCK_MS = 10.0
BLOCK = 80  # samples per block at RATE


def tone(n_samples: int, value: int = 1000) -> bytes:
    """A block-sized pattern nobody could mistake for padding: ramps of non-zero samples."""
    return audio.int16_to_pcm((value + np.arange(n_samples) % 50).astype(np.int16))


class ScriptedSource:
    """Plays ``script[k]`` for block k (b"" past its end) and records every read."""

    def __init__(self, script: list[bytes], stop_after: int, stop: Callable[[], None]) -> None:
        self.script = script
        self.stop_after = stop_after
        self.stop = stop
        self.reads: list[tuple[int, int, float]] = []  # (n_samples, position, monotonic time)
        self.on_read: Callable[[int], None] = lambda position: None

    @property
    def sample_rate(self) -> int:
        return RATE

    def read(self, n_samples: int, position: int) -> bytes:
        self.on_read(position)
        self.reads.append((n_samples, position, time.monotonic()))
        if len(self.reads) == self.stop_after:
            self.stop()
        k = len(self.reads) - 1
        return self.script[k] if k < len(self.script) else b""


async def play(speaker: WavSpeaker, script: list[bytes], blocks: int) -> ScriptedSource:
    """Plays ``script`` until ``blocks`` blocks were read, then cancels the speaker."""
    with anyio.fail_after(10), anyio.CancelScope() as scope:
        source = ScriptedSource(script, blocks, scope.cancel)
        await speaker.play(source)
    return source


def test_it_is_an_audio_sink() -> None:
    assert isinstance(WavSpeaker(None), ports.AudioSink)


async def test_the_file_holds_the_audio_at_its_positions_and_exact_silence_between(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out.wav"
    speaker = WavSpeaker(path, sample_rate=RATE, block_ms=BLOCK_MS)
    t = [tone(BLOCK, 1000 + 100 * k) for k in range(6)]
    half = tone(BLOCK // 2, 3000)
    script = [t[0], t[1], t[2], b"", b"", b"", t[3], t[4], half, b"", t[5]]
    await play(speaker, script, blocks=12)

    quiet = audio.silence(BLOCK)
    expected = [t[0], t[1], t[2], quiet, quiet, quiet, t[3], t[4]]
    expected += [half + audio.silence(BLOCK // 2), quiet, t[5], quiet]
    assert audio.read_wav(path) == (b"".join(expected), RATE)


async def test_reads_ask_for_whole_blocks_at_consecutive_positions() -> None:
    speaker = WavSpeaker(None, sample_rate=RATE, block_ms=BLOCK_MS)
    source = await play(speaker, [], blocks=8)
    assert [(n, position) for n, position, _ in source.reads] == [
        (BLOCK, k * BLOCK) for k in range(8)
    ]


async def test_every_block_read_is_written_in_full() -> None:
    speaker = WavSpeaker(None, sample_rate=RATE, block_ms=BLOCK_MS)
    source = await play(speaker, [tone(3), b"", tone(BLOCK)], blocks=6)
    assert speaker.blocks_written == len(source.reads) == 6
    assert speaker.position == 6 * BLOCK
    assert audio.pcm_samples(speaker.samples) == speaker.position


async def test_no_block_is_read_before_it_is_due() -> None:
    origin = time.monotonic()
    speaker = WavSpeaker(None, sample_rate=RATE, block_ms=BLOCK_MS, origin=origin)
    source = await play(speaker, [], blocks=6)
    for _, position, read_at in source.reads:
        # (less a millisecond: the event loop may wake a timer by its clock resolution early)
        assert read_at >= origin + position / RATE - 0.001


async def test_the_file_is_a_valid_wav_while_it_is_being_written(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    speaker = WavSpeaker(path, sample_rate=RATE, block_ms=BLOCK_MS)
    seen: list[int] = []
    with anyio.fail_after(10), anyio.CancelScope() as scope:
        source = ScriptedSource([tone(BLOCK)] * 5, stop_after=5, stop=scope.cancel)
        source.on_read = lambda position: seen.append(audio.pcm_samples(audio.read_wav(path)[0]))
        await speaker.play(source)
    assert seen == [0, BLOCK, 2 * BLOCK, 3 * BLOCK, 4 * BLOCK]


async def test_the_header_is_valid_after_cancellation(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    speaker = WavSpeaker(path, sample_rate=RATE, block_ms=BLOCK_MS)
    await play(speaker, [tone(BLOCK)] * 3, blocks=7)

    data = path.read_bytes()
    riff_size, channels, rate, bits = (
        struct.unpack_from("<I", data, 4)[0],
        struct.unpack_from("<H", data, 22)[0],
        struct.unpack_from("<I", data, 24)[0],
        struct.unpack_from("<H", data, 34)[0],
    )
    assert data[36:40] == b"data"
    assert struct.unpack_from("<I", data, 40)[0] == len(data) - 44 == 7 * BLOCK * 2
    assert (riff_size, channels, rate, bits) == (len(data) - 8, 1, RATE, 16)
    assert audio.read_wav(path)[0] == speaker.samples


async def test_a_speaker_behind_time_catches_up_keeping_every_block_in_place() -> None:
    # Sample 0 a second ago: 100 blocks are already due, and are written late but in order.
    speaker = WavSpeaker(None, sample_rate=RATE, block_ms=BLOCK_MS, origin=time.monotonic() - 1)
    script = [tone(BLOCK, 1000 + k) for k in range(110)]
    source = await play(speaker, script, blocks=110)
    assert [position for _, position, _ in source.reads] == [k * BLOCK for k in range(110)]
    assert speaker.samples == b"".join(script)
    assert 90 <= speaker.late_blocks <= 110


async def test_the_origin_is_when_play_started_unless_given() -> None:
    speaker = WavSpeaker(None, sample_rate=RATE, block_ms=BLOCK_MS)
    assert speaker.origin is None
    before = time.monotonic()
    await play(speaker, [], blocks=1)
    assert speaker.origin is not None and speaker.origin >= before
    assert WavSpeaker(None, origin=12.5).origin == 12.5


def files_in(folder: Path) -> list[Path]:
    return list(folder.iterdir())


async def test_a_memory_only_speaker_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    speaker = WavSpeaker(None, sample_rate=RATE, block_ms=BLOCK_MS)
    await play(speaker, [tone(BLOCK)], blocks=2)
    assert speaker.samples == tone(BLOCK) + audio.silence(BLOCK)
    assert files_in(tmp_path) == []


async def test_a_source_at_another_rate_is_refused() -> None:
    speaker = WavSpeaker(None, sample_rate=24000)
    with pytest.raises(ValueError, match="8000 Hz"):
        await play(speaker, [], blocks=1)


async def test_a_source_returning_more_than_asked_is_an_error(tmp_path: Path) -> None:
    speaker = WavSpeaker(tmp_path / "x.wav", sample_rate=RATE, block_ms=BLOCK_MS)
    with pytest.raises(ValueError, match="at most"):
        await play(speaker, [tone(BLOCK + 1)], blocks=5)
    assert audio.read_wav(tmp_path / "x.wav") == (b"", RATE)


async def test_a_speaker_plays_only_once() -> None:
    speaker = WavSpeaker(None, sample_rate=RATE, block_ms=BLOCK_MS)
    await play(speaker, [], blocks=1)
    with pytest.raises(RuntimeError, match="once"):
        await play(speaker, [], blocks=1)
