"""``voiceagent web`` in a real headless Chromium: the fake microphone plays a question spoken
by espeak-ng, and the page shows what was heard and answered; talking over the agent cuts
it, and the page marks what was not heard. The offline stack throughout; no timings
asserted, only what happened and in which order (generous timeouts: 2 shared cores)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_rig import WebServerProcess, chromium, png_colours, require_browser, speak_wav, wait_for

pytestmark = pytest.mark.timeout(600)

TURN_S = 180.0  # a spoken turn on the offline stack, on a busy machine: well under this


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServerProcess]:
    require_browser()
    process = WebServerProcess(tmp_path_factory.mktemp("web"))
    try:
        yield process
    finally:
        process.close()


def page_state(driver: Any) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script(
        """return {
            users: [...document.querySelectorAll('#transcript li.user:not(.partial)')]
                .map((li) => li.querySelector('.words').textContent),
            agents: [...document.querySelectorAll('#transcript li.agent')].map((li) => ({
                heard: (li.querySelector('.heard') || li.querySelector('.words')).textContent,
                unheard: li.querySelector('.unheard') ? li.querySelector('.unheard').textContent
                    : '',
            })),
            lanes: document.querySelectorAll('#lanes svg rect').length,
            counts: window.voiceagent,
        }"""
    )
    return state


def timeline(server: WebServerProcess) -> list[dict[str, Any]]:
    if not server.timeline.exists():
        return []
    turns: list[dict[str, Any]] = json.loads(server.timeline.read_text())["turns"]
    return turns


def talk(driver: Any, server: WebServerProcess) -> None:
    driver.get(server.url)
    driver.find_element("id", "talk").click()


def test_the_page_shows_the_question_heard_and_the_answer(
    server: WebServerProcess, tmp_path: Path
) -> None:
    # after the greeting (about 6 s), so that it is a plain turn
    question = speak_wav(tmp_path / "question.wav", [9.0, "What is twelve times seven?"])
    with chromium(question) as driver:
        talk(driver, server)

        def answered() -> dict[str, Any] | None:
            state = page_state(driver)
            turns = [t for t in state["counts"]["turns"] if t["trigger"] == "user"]
            shown = any("84" in agent["heard"] for agent in state["agents"])
            if shown and any("84" in t["heard"] for t in turns) and state["lanes"]:
                return state
            return None

        state = wait_for(answered, TURN_S, "the answer on the page",
                         detail=lambda: f"{page_state(driver)}\n{server.stderr()}")  # fmt: skip
        assert any("times" in said.lower() for said in state["users"]), state
        assert state["counts"]["frames"] > 0  # the microphone's frames went up
        assert state["counts"]["marks"] >= 1  # the page confirmed a segment's end
        # the answer comes after the question on the page
        transcript = driver.find_element("id", "transcript").text
        assert transcript.lower().index("times") < transcript.index("84"), transcript
        assert png_colours(driver.get_screenshot_as_png()) > 1  # not a blank page

    assert "84" in wait_for(server.stdout, 30, "the answer on stdout")
    turns = wait_for(
        lambda: [t for t in timeline(server) if t["trigger"] == "user"], 30, "the turn's timeline"
    )
    events = turns[-1]["events"]
    kinds = [event["kind"] for event in events]
    finals = [e["text"] for e in events if e["kind"] == "stt.final"]
    assert finals and "times" in finals[0].lower(), events
    for earlier, later in [("user.speech_end", "llm.request"), ("llm.request", "audio.start"),
                           ("audio.start", "turn.end")]:  # fmt: skip
        assert kinds.index(earlier) < kinds.index(later), kinds
    assert turns[-1]["metrics"]["first_audio_ms"] is not None


def test_talking_over_the_agent_cuts_it_and_the_page_marks_what_was_not_heard(
    server: WebServerProcess, tmp_path: Path
) -> None:
    # while the greeting (about 6 s) is playing
    words = speak_wav(tmp_path / "over.wav", [3.5, "Wait. What time is it?"])
    with chromium(words) as driver:
        talk(driver, server)

        def cut() -> dict[str, Any] | None:
            state = page_state(driver)
            greetings = [t for t in state["counts"]["turns"] if t["trigger"] == "greeting"]
            if greetings and any(agent["unheard"].strip() for agent in state["agents"]):
                return state
            return None

        state = wait_for(cut, TURN_S, "the greeting cut on the page",
                         detail=lambda: f"{page_state(driver)}\n{server.stderr()}")  # fmt: skip
        greeting = next(t for t in state["counts"]["turns"] if t["trigger"] == "greeting")
        assert greeting["reason"] == "cancelled"
        assert greeting["unheard"].strip()
        said = f"{greeting['heard']} {greeting['unheard']}".split()
        assert said[-3:] == ["What", "would", "you", "like?"][-3:], greeting
        assert state["counts"]["clears"] >= 1  # the server told the page to clear at once
        # then the words that cut it are answered
        wait_for(lambda: any("time" in u.lower() for u in page_state(driver)["users"]), TURN_S,
                 "the interruption heard", detail=lambda: str(page_state(driver)))  # fmt: skip

    turns = wait_for(
        lambda: [t for t in timeline(server) if t["trigger"] == "greeting"], 30, "the timeline"
    )
    kinds = [event["kind"] for event in turns[-1]["events"]]
    assert "barge_in" in kinds and kinds.index("barge_in") < kinds.index("turn.end"), kinds
