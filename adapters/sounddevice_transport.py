"""A ``ports.Transport`` on the local sound card (``sounddevice``/PortAudio, the ``audio``
extra): the microphone in 20 ms blocks, the agent on the speaker, echo kept out by
half-duplex on open speakers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from voiceagent import audio
from voiceagent.adapters.audio_devices import (
    Device,
    DeviceError,
    find_device,
    negotiate_rate,
    sounddevice,
)
from voiceagent.adapters.device_speaker import DeviceSpeaker
from voiceagent.adapters.echo_gate import EchoGate

INPUT_RATE = 16000  # Hz: what the offline STT and VADs take, so nothing is resampled
QUEUED_BLOCKS = 50  # mic blocks (1 s) the loop may fall behind before blocks are dropped
ECHO_TAIL_MS = 300.0  # after the agent stops, the room (and the card's buffers) still ring


@dataclass(frozen=True)
class DeviceStats:
    """What went wrong at the card, for the end-of-run report."""

    underflows: int  # speaker blocks played as silence: the loop fell behind
    overflows: int  # mic blocks lost: the card's buffer, or the loop, fell behind
    muted_blocks: int  # mic blocks replaced by silence while the agent spoke (half-duplex)

    def __str__(self) -> str:
        return (
            f"{self.underflows} speaker underflows, {self.overflows} microphone overflows, "
            f"{self.muted_blocks} mic blocks muted while the agent spoke"
        )


class SoundDeviceTransport:
    """``ports.Transport`` on the default (or named/numbered) microphone and speaker.

    The mic is read in ``block_ms`` blocks at ``sample_rate`` (default 16 kHz, or the
    device's own rate when it does not take that: the session resamples). With
    ``half_duplex`` (open speakers) the mic is muted while the agent speaks, except for a
    voice above ``barge_in_db`` dBFS for ``barge_in_ms`` (see ``EchoGate``); with a headset,
    ``half_duplex=False`` passes everything and any speech barges in. PortAudio's callback
    never waits: blocks cross to the event loop with ``call_soon_threadsafe``. Raises
    ``AudioUnavailable`` without PortAudio and ``DeviceError`` without a device.
    """

    def __init__(
        self,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        *,
        sample_rate: int | None = None,
        block_ms: float = 20.0,
        half_duplex: bool = True,
        barge_in_db: float = -30.0,
        barge_in_ms: float = 300.0,
        metadata: Mapping[str, Any] | None = None,
        origin: float | None = None,
    ) -> None:
        self.input_device = _device(input_device, "input")
        self.output_device = _device(output_device, "output")
        self._rate = negotiate_rate(self.input_device, "input", sample_rate or INPUT_RATE)
        self.block_ms = block_ms
        self._origin = time.monotonic() if origin is None else origin
        self._speaker = DeviceSpeaker(self.output_device, block_ms=block_ms, origin=self._origin)
        self.gate = (
            EchoGate(barge_in_db=barge_in_db, barge_in_ms=barge_in_ms) if half_duplex else None
        )
        self._metadata: Mapping[str, Any] = dict(metadata or {})
        self.overflows = 0
        self._send: Any = None  # the loop's end of the mic blocks, while listening
        self._closed = False

    @property
    def input_rate(self) -> int:
        return self._rate

    @property
    def output(self) -> DeviceSpeaker:
        return self._speaker

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._metadata

    @property
    def origin(self) -> float:
        return self._origin

    def stats(self) -> DeviceStats:
        muted = self.gate.muted_blocks if self.gate is not None else 0
        return DeviceStats(self._speaker.underflows, self.overflows, muted)

    def agent_speaking(self) -> bool:
        """The agent's voice is playing, or just was (its echo may still be heard)."""
        return time.monotonic() < self._speaker.voice_until + ECHO_TAIL_MS / 1000

    async def incoming(self) -> AsyncGenerator[bytes, None]:
        sd = sounddevice()
        loop = asyncio.get_running_loop()
        send, receive = anyio.create_memory_object_stream[bytes](QUEUED_BLOCKS)
        self._send = send

        def deliver(block: bytes) -> None:  # on the loop
            try:
                send.send_nowait(block)
            except anyio.WouldBlock:
                self.overflows += 1
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # closing: the block is not needed

        def callback(indata: Any, _frames: int, _time: Any, status: Any) -> None:
            if status.input_overflow:
                self.overflows += 1
            try:
                loop.call_soon_threadsafe(deliver, bytes(indata))
            except RuntimeError:
                pass  # the loop has closed: we are shutting down

        stream = sd.RawInputStream(
            device=self.input_device.index,
            samplerate=self._rate,
            channels=1,
            dtype="int16",
            blocksize=audio.ms_to_samples(self.block_ms, self._rate),
            latency="low",
            callback=callback,
        )
        if self._closed:
            send.close()
        try:
            stream.start()
            async with receive:
                async for block in receive:
                    for passed in self._gated(block):
                        yield passed
        finally:
            stream.abort()
            stream.close()

    def _gated(self, block: bytes) -> list[bytes]:
        if self.gate is None:
            return [block]
        return self.gate.process(block, self.block_ms, speaking=self.agent_speaking())

    async def aclose(self) -> None:
        """Ends ``incoming()`` (hang-up); the speaker stops when its task is cancelled."""
        self._closed = True
        if self._send is not None:
            self._send.close()


def _device(device: int | str | None, kind: str) -> Device:
    found = find_device(device, kind)
    if found is None:
        what = "microphone" if kind == "input" else "speaker"
        raise DeviceError(f"no default {what} ({kind} device) was found")
    return found
