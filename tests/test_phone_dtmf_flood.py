"""A caller cannot flood ``voiceagent phone`` with DTMF, over a real socket against the real
process (the rig of test_phone_hygiene): 10,000 keys are a few stderr lines and one count,
the call's record of keys and its line of keypad text stay bounded, and the call goes on."""

from __future__ import annotations

import re

import anyio
import pytest
from test_phone_call import SAFETY_S, phone_rig, played
from test_phone_hygiene import HostileCaller, phone_process
from test_phone_server import GREETER

from voiceagent.adapters.phone_transport import DIGITS_KEPT, KEYPAD_LINE_MAX
from voiceagent.phone import DTMF_LOG_BURST, DTMF_LOG_EVERY_S
from voiceagent.sparse_log import SparseLog
from voiceagent.testing.twilio import TwilioCaller

FLOOD = 10_000
KEYS = "1234567890"  # no '#' (it would send the line) nor '*' (arithmetic to the brain)


async def test_ten_thousand_keys_are_a_few_lines_and_the_call_goes_on() -> None:
    async with phone_process("--dtmf-text") as phone:
        async with HostileCaller(phone.url) as caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)  # greeting
                started = anyio.current_time()
                for i in range(FLOOD):
                    await caller.send_dtmf(KEYS[i % len(KEYS)])
                await caller.send_dtmf("#")  # the flood's keypad text goes in
                await caller.wait_for(lambda: len(played(caller)) >= 2)  # answered
                for key in "42#":  # then a caller's ordinary turn
                    await caller.send_dtmf(key)
                await caller.wait_for(lambda: len(played(caller)) >= 3)  # answered
                took = anyio.current_time() - started
        code = await phone.end_after_the_call()
    stdout, stderr = phone.out.text.decode(), phone.err.text.decode()
    assert code == 0, stderr[-3000:]
    assert caller.protocol_errors == []
    sid = caller.call_sid
    keyed = [line for line in stderr.splitlines() if line.startswith(f"{sid} DTMF")]
    told = [line for line in keyed if not line.startswith(f"{sid} DTMF:")]
    counts = [line for line in keyed if line.startswith(f"{sid} DTMF:")]
    # each key of the burst, then a line at most every DTMF_LOG_EVERY_S (a told key or a
    # count), then the count at the end: a few dozen lines at most, not 10,000
    assert len(keyed) <= DTMF_LOG_BURST + 2 * (1 + took / DTMF_LOG_EVERY_S) + 1, keyed[-50:]
    assert told[:DTMF_LOG_BURST] == [f"{sid} DTMF {KEYS[i % 10]}" for i in range(DTMF_LOG_BURST)]
    total = FLOOD + 4  # the flood, its '#', then 4 2 #
    assert counts, keyed[-5:]
    summary = counts[-1]  # the call's end: how many keys, and how many were dropped
    assert f"{total} in the call" in summary, counts
    assert f"{total - DIGITS_KEPT} dropped from its record" in summary, summary
    assert f"{FLOOD - KEYPAD_LINE_MAX} dropped from keypad text" in summary, summary
    untold = [re.search(r"DTMF: (\d+) more", line) for line in counts]
    assert sum(int(found[1]) for found in untold if found) + len(told) == total, (counts, told)
    assert len(stdout.splitlines()) == 4, stdout  # the URL, the greeting, two answers


async def test_a_flood_of_keys_keeps_the_record_and_the_keypad_line_bounded() -> None:
    """In process (test_phone_call's rig), to see the transport: the newest DIGITS_KEPT keys
    kept, the agent hears KEYPAD_LINE_MAX of the flood, and then an ordinary line."""
    async with phone_rig(GREETER, listen=False, dtmf_text=True) as rig:
        async with TwilioCaller(rig.server.url) as caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)
                for i in range(FLOOD):
                    await caller.send_dtmf(KEYS[i % len(KEYS)])
                await caller.send_dtmf("#")
                await caller.wait_for(lambda: len(played(caller)) >= 2)  # answered
                for key in "42#":
                    await caller.send_dtmf(key)
                await caller.wait_for(lambda: len(played(caller)) >= 3)  # answered
            transport = rig.transports[0]
            assert len(transport.digits) == DIGITS_KEPT and transport.digits[-3:] == list("42#")
            users = [m["content"] for m in rig.sessions[0].history.messages()
                     if m["role"] == "user"]  # fmt: skip
            flood_line = " ".join(KEYS[i % 10] for i in range(KEYPAD_LINE_MAX))
            assert users == [f"(keypad) {flood_line}", "(keypad) 4 2"], [u[:80] for u in users]
            assert transport.keys == FLOOD + 4
            assert transport.digits_dropped == FLOOD + 4 - DIGITS_KEPT
            assert transport.keypad_dropped == FLOOD - KEYPAD_LINE_MAX


class Told:
    def __init__(self) -> None:
        self.now = 0.0
        self.lines: list[str] = []

    def log(self) -> SparseLog:
        return SparseLog(self.lines.append, lambda untold, total: self.lines.append(
            f"{untold}/{total}"), burst=3, every_s=10.0, clock=lambda: self.now)  # fmt: skip


def test_a_sparse_log_tells_a_human_pace_in_full_and_a_flood_as_counts() -> None:
    told = Told()
    log = told.log()
    for i in range(1000):  # a flood at t=0: the burst, the rest counted
        log(f"k{i}")
    assert told.lines == ["k0", "k1", "k2"]
    told.now = 9.9
    log("late")  # the budget is not back yet
    assert told.lines == ["k0", "k1", "k2"]
    told.now = 10.0  # one line back: the count first; this one waits for the next
    log("next")
    assert told.lines[3:] == ["998/1002"]
    told.now = 100.0  # a quiet while: the budget is full again
    log("a")
    log("b")
    assert told.lines[4:] == ["1/1003", "a", "b"]
    log.flush()
    assert told.lines[7:] == []  # nothing counted: nothing to say
    log.flush(always=True)
    assert told.lines[7:] == ["0/1004"]
    with pytest.raises(ValueError):
        SparseLog(print, print, burst=0)
