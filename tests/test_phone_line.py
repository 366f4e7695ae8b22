"""The phone speaker's record of the line: small (a silence is one entry however long), and
exact across an idle gap, when the line sends nothing."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import anyio

from voiceagent import audio
from voiceagent.adapters.phone_transport import PhoneSpeaker

RATE = 8000


class Quiet:
    """An ``AudioSource`` with nothing to say."""

    sample_rate = RATE

    def read(self, n_samples: int, position: int) -> bytes:
        return b""


class Segment:
    id = 1
    played = 0

    def correct_played(self, samples: int) -> None:
        self.played = samples


class LateWord:
    """A segmented source, silent until ``start`` (a sample position), then ``length``
    samples of a tone: one segment whose end the speaker is told of."""

    sample_rate = RATE

    def __init__(self, start: int, length: int) -> None:
        self.start, self.length = start, length
        self.segment = Segment()
        self._on_end: Callable[[Segment, int], None] | None = None

    @property
    def playing(self) -> Segment | None:
        return self.segment

    idle = False  # read every frame: it says where its word begins only by reading

    def watch_segment_ends(self, callback: Callable[[Segment, int], None] | None) -> None:
        self._on_end = callback

    def read(self, n_samples: int, position: int) -> bytes:
        begin = max(position, self.start)
        end = min(position + n_samples, self.start + self.length)
        if begin >= end:
            return b""
        if end == self.start + self.length and self._on_end is not None:
            self._on_end(self.segment, end)
        return audio.silence(begin - position) + b"\x00\x10" * (end - begin)


def payloads(sent: list[str]) -> list[bytes]:
    return [
        base64.b64decode(m["media"]["payload"])
        for m in map(json.loads, sent)
        if m["event"] == "media"
    ]


async def test_an_idle_line_sends_nothing() -> None:
    sent: list[str] = []
    speaker = PhoneSpeaker("MZ1", sent.append, origin=time.monotonic())
    with anyio.move_on_after(0.5):
        await speaker.play(Quiet())
    assert sent == [] and speaker.frames_sent == 0
    assert speaker.outstanding == []


async def test_a_long_silence_is_one_entry_on_the_line() -> None:
    sent: list[str] = []
    speaker = PhoneSpeaker("MZ1", sent.append, origin=time.monotonic(), idle_silence=True)
    with anyio.move_on_after(0.5):
        await speaker.play(Quiet())
    assert speaker.frames_sent >= 3 and len(sent) == speaker.frames_sent
    assert len(speaker._line) == 1  # every frame was silence: one run, not one per frame
    assert speaker.outstanding == []


async def test_audio_after_an_idle_gap_plays_at_its_time_on_the_session_clock() -> None:
    sent: list[str] = []
    origin = time.monotonic()
    word = LateWord(start=8 * 320, length=1500)  # at 0.32 s (a frame starts), 0.19 s long
    speaker = PhoneSpeaker("MZ1", sent.append, origin=origin)
    with anyio.move_on_after(0.9):
        await speaker.play(word)
    # nothing before the word; first a pad of silence, then the word, its mark, the rest of
    # that frame in silence, and nothing more
    frames = payloads(sent)
    silent = audio.ulaw_encode(audio.silence(1))
    first_sound = next(i for i, f in enumerate(frames) if f.strip(silent))
    assert first_sound >= 1 and all(not f.strip(silent) for f in frames[:first_sound])
    assert [json.loads(m)["event"] for m in sent[-2:]] == ["mark", "media"]
    assert not frames[-1].strip(silent) and len(frames[-1]) < speaker.frame_samples
    # the record: the wait and the pad as one silence, ending where the word is due (the
    # carrier started playing it all at the anchor), then the word, its mark, the rest
    (gap, waited), (segment, samples), mark, (after, rest) = speaker._line
    assert gap is None and segment is word.segment and samples == word.length
    assert mark == "1" and after is None and rest == len(frames[-1])
    due = origin + word.start / RATE
    assert abs(speaker._anchor + waited / RATE - due) <= 2 / RATE
    # and what was sent of silence before the word is the pad (the lead), not the wait
    padded = sum(len(f) for f in frames[:first_sound])
    padded += len(frames[first_sound]) - len(frames[first_sound].lstrip(silent))
    assert 0 < padded < waited


class QuietThenWord(LateWord):
    """``LateWord`` that says it is idle (nothing queued) until ``wakes_at`` on the clock, as
    a speech queue is until a phrase is queued; counts the reads made while idle."""

    def __init__(self, start: int, length: int, wakes_at: float) -> None:
        super().__init__(start, length)
        self.wakes_at = wakes_at
        self.reads = 0
        self.reads_while_idle = 0

    @property  # type: ignore[override]
    def idle(self) -> bool:
        return time.monotonic() < self.wakes_at

    def read(self, n_samples: int, position: int) -> bytes:
        self.reads += 1
        self.reads_while_idle += self.idle
        return super().read(n_samples, position)


async def test_an_idle_source_is_not_read_and_its_audio_still_plays_at_its_time() -> None:
    sent: list[str] = []
    origin = time.monotonic()
    word = QuietThenWord(start=8 * 320, length=1500, wakes_at=origin + 0.2)
    speaker = PhoneSpeaker("MZ1", sent.append, origin=origin)
    with anyio.move_on_after(0.9):
        await speaker.play(word)
    assert word.reads_while_idle == 0  # 0.2 s idle: five frames passed without a read
    assert 0 < word.reads <= round((0.9 - 0.2) / speaker.frame_s) + speaker.lead_frames + 1
    # the word plays where it is due, after a pad, with its mark: as when read every frame
    (gap, waited), (segment, samples), mark, _ = speaker._line
    assert gap is None and segment is word.segment and samples == word.length
    assert mark == "1"
    assert abs(speaker._anchor + waited / RATE - (origin + word.start / RATE)) <= 2 / RATE
