"""Transports (WAV file in and out, console) and the test speakers (virtual, null)."""

from __future__ import annotations

import io
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path

import anyio
import numpy as np
import pytest

from voiceagent import audio, ports
from voiceagent.adapters.console import ConsoleTransport
from voiceagent.adapters.virtual_speaker import NullSpeaker, VirtualSpeaker
from voiceagent.adapters.wav_speaker import WavSpeaker
from voiceagent.adapters.wav_transport import WavTransport

RATE = 8000
FRAME_MS = 10.0
FRAME = 80  # samples per frame at RATE
FILE_SAMPLES = 250  # not a whole number of frames: the last one is padded with silence


def ramp(n_samples: int) -> bytes:
    """Non-zero samples nobody could mistake for silence or for each other's order."""
    return audio.int16_to_pcm((1 + np.arange(n_samples) % 30000).astype(np.int16))


@pytest.fixture
def wav_in(tmp_path: Path) -> Path:
    path = tmp_path / "caller.wav"
    audio.write_wav(path, ramp(FILE_SAMPLES), RATE)
    return path


def transport(
    path: Path,
    speed: float = 1.0,
    origin: float | None = None,
    hang_up_after_s: float | None = None,
) -> WavTransport:
    return WavTransport(
        path, None, frame_ms=FRAME_MS, speed=speed, origin=origin, hang_up_after_s=hang_up_after_s
    )


async def take(frames: AsyncGenerator[bytes, None], n: int) -> list[tuple[bytes, float]]:
    """The first ``n`` frames, each with the monotonic time it was received."""
    received: list[tuple[bytes, float]] = []
    async with aclosing(frames):
        async for frame in frames:
            received.append((frame, time.monotonic()))
            if len(received) == n:
                break
    return received


# --- WAV transport -------------------------------------------------------------------------


async def test_wav_frames_are_the_files_samples_in_order_then_silence(wav_in: Path) -> None:
    t = transport(wav_in, speed=math.inf)
    frames = [frame for frame, _ in await take(t.incoming(), 6)]
    assert all(audio.pcm_samples(frame) == FRAME for frame in frames)
    stream = b"".join(frames)
    assert stream[: 2 * FILE_SAMPLES] == ramp(FILE_SAMPLES)
    assert stream[2 * FILE_SAMPLES :] == audio.silence(6 * FRAME - FILE_SAMPLES)
    assert t.frames_sent == 6


@pytest.mark.parametrize("speed", [1.0, 4.0])
async def test_paced_frame_k_is_never_yielded_before_its_due_time(
    wav_in: Path, speed: float
) -> None:
    origin = time.monotonic()
    t = transport(wav_in, speed=speed, origin=origin)
    received = await take(t.incoming(), 6)  # the file and two frames of trailing silence
    for k, (_, at) in enumerate(received):
        assert at >= origin + (k + 1) * (FRAME / RATE) / speed  # after its last sample


@pytest.mark.parametrize("speed", [math.inf, 0.0])
async def test_fast_mode_yields_the_whole_file_without_waiting(wav_in: Path, speed: float) -> None:
    # An origin an hour away: a transport that paced its frames would never get past frame 0.
    t = transport(wav_in, speed=speed, origin=time.monotonic() + 3600, hang_up_after_s=0)
    frames = [frame async for frame in t.incoming()]
    assert len(frames) == math.ceil(FILE_SAMPLES / FRAME) == t.frames_sent
    assert b"".join(frames)[: 2 * FILE_SAMPLES] == ramp(FILE_SAMPLES)


async def test_hang_up_after_s_of_trailing_silence_ends_the_input(wav_in: Path) -> None:
    t = transport(wav_in, speed=math.inf, hang_up_after_s=0.1)  # 800 samples of silence
    frames = [frame async for frame in t.incoming()]
    assert len(frames) == math.ceil((FILE_SAMPLES + 800) / FRAME)
    assert b"".join(frames)[2 * FILE_SAMPLES :] == audio.silence(len(frames) * FRAME - FILE_SAMPLES)


async def test_aclose_ends_an_input_waiting_for_its_next_frame(wav_in: Path) -> None:
    t = transport(wav_in, origin=time.monotonic() + 3600)  # frame 0 is due in an hour
    received: list[bytes] = []

    async def listen() -> None:
        received.extend([frame async for frame in t.incoming()])

    async with anyio.create_task_group() as tg:
        tg.start_soon(listen)
        await anyio.sleep(0.02)
        await t.aclose()
    assert received == []


def test_wav_transport_is_a_transport_at_the_files_rate(wav_in: Path) -> None:
    t = transport(wav_in)
    assert isinstance(t, ports.Transport)
    assert t.input_rate == RATE
    assert t.input_duration_ms == pytest.approx(1000 * FILE_SAMPLES / RATE)
    assert t.metadata == {}


def test_wav_output_is_a_real_time_speaker_on_the_same_clock(wav_in: Path, tmp_path: Path) -> None:
    out = tmp_path / "agent.wav"
    t = WavTransport(wav_in, out, output_rate=16000, origin=12.5, metadata={"caller": "x"})
    assert isinstance(t.output, WavSpeaker)
    assert (t.output.path, t.output.sample_rate, t.output.origin) == (out, 16000, 12.5)
    assert t.metadata == {"caller": "x"}
    assert transport(wav_in).output.path is None  # memory only


# --- console -------------------------------------------------------------------------------


async def typed(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_console_yields_typed_lines_skips_blank_ones_and_ends_with_them() -> None:
    t = ConsoleTransport(lines=typed("hello\n", "", "   \n", "  what time is it? "))
    assert [item async for item in t.incoming()] == ["hello", "what time is it?"]


async def test_console_reads_stdin_until_eof(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("hi\n\nthere\n"))
    assert [item async for item in ConsoleTransport().incoming()] == ["hi", "there"]


async def test_console_aclose_ends_a_pending_read() -> None:
    async def silent_user() -> AsyncIterator[str]:
        await anyio.sleep_forever()
        yield "never"

    t = ConsoleTransport(lines=silent_user())
    received: list[str] = []

    async def listen() -> None:
        received.extend([item async for item in t.incoming()])

    async with anyio.create_task_group() as tg:
        tg.start_soon(listen)
        await anyio.sleep(0.02)
        await t.aclose()
    assert received == []


def test_console_is_a_transport_read_not_heard_unless_given_a_speaker() -> None:
    t = ConsoleTransport(input_rate=8000, metadata={"user": "me"})
    assert isinstance(t, ports.Transport)
    assert isinstance(t.output, NullSpeaker)
    assert (t.input_rate, t.metadata) == (8000, {"user": "me"})
    speaker = VirtualSpeaker()
    assert ConsoleTransport(speaker).output is speaker


# --- speakers ------------------------------------------------------------------------------


class QueuedSource:
    """Plays ``pcm`` from position 0, then nothing; calls ``on_read`` with each read."""

    def __init__(self, pcm: bytes, on_read: Callable[[int, int], None]) -> None:
        self.pcm = pcm
        self.on_read = on_read
        self.reads: list[tuple[int, float]] = []  # (position, monotonic time)

    @property
    def sample_rate(self) -> int:
        return RATE

    def read(self, n_samples: int, position: int) -> bytes:
        self.reads.append((position, time.monotonic()))
        self.on_read(len(self.reads), position)
        return self.pcm[2 * position : 2 * (position + n_samples)]


async def play(speaker: ports.AudioSink, pcm: bytes, blocks: int) -> QueuedSource:
    """Plays ``pcm`` on ``speaker`` until ``blocks`` blocks were read, then cancels it."""
    with anyio.CancelScope() as scope:

        def stop_after(reads: int, position: int) -> None:
            if reads == blocks:
                scope.cancel()

        source = QueuedSource(pcm, stop_after)
        await speaker.play(source)
    return source


async def test_virtual_speaker_plays_queued_audio_block_after_block() -> None:
    speaker = VirtualSpeaker(RATE, block_ms=FRAME_MS)
    assert isinstance(speaker, ports.AudioSink)
    pcm = ramp(100 * FRAME)  # a second of audio
    source = await play(speaker, pcm, 100)
    assert [position for position, _ in source.reads] == [k * FRAME for k in range(100)]
    assert speaker.blocks_written == 100 and speaker.position == 100 * FRAME
    assert speaker.samples == pcm and speaker.idle_blocks == 0


async def test_virtual_speaker_waits_real_time_when_idle_and_pads_with_silence() -> None:
    speaker = VirtualSpeaker(RATE, block_ms=FRAME_MS)
    source = await play(speaker, ramp(FRAME // 2), 21)
    assert speaker.samples[: FRAME // 2 * 2] == ramp(FRAME // 2)
    assert speaker.samples[FRAME // 2 * 2 :] == audio.silence(20 * FRAME + FRAME // 2)
    assert speaker.idle_blocks == 20
    # Each idle block waited a little real time rather than spinning.
    assert source.reads[-1][1] - source.reads[1][1] >= 0.018  # 19 waits of 1 ms


async def test_null_speaker_is_paced_in_real_time_and_keeps_nothing() -> None:
    origin = time.monotonic()
    speaker = NullSpeaker(RATE, block_ms=FRAME_MS, origin=origin)
    assert isinstance(speaker, ports.AudioSink)
    source = await play(speaker, ramp(4 * FRAME), 5)
    for k, (position, at) in enumerate(source.reads):
        assert position == k * FRAME
        assert at >= origin + k * FRAME / RATE - 1e-6  # the timer's resolution, not a bound
    assert speaker.samples == b"" and speaker.position == 5 * FRAME
