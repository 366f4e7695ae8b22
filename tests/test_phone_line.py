"""The phone speaker's record of the line stays small: a silence is one entry however long."""

from __future__ import annotations

import time

import anyio

from voiceagent.adapters.phone_transport import PhoneSpeaker


class Quiet:
    """An ``AudioSource`` with nothing to say."""

    sample_rate = 8000

    def read(self, n_samples: int, position: int) -> bytes:
        return b""


async def test_a_long_silence_is_one_entry_on_the_line() -> None:
    sent: list[str] = []
    speaker = PhoneSpeaker("MZ1", sent.append, origin=time.monotonic())
    with anyio.move_on_after(0.5):
        await speaker.play(Quiet())
    assert speaker.frames_sent >= 3 and len(sent) == speaker.frames_sent
    assert len(speaker._line) == 1  # every frame was silence: one run, not one per frame
    assert speaker.outstanding == []
