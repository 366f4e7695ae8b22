"""Specifications of `voiceagent.stream`: chat-completion chunks → typed events."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk, ChatCompletionToolParam

from voiceagent.stream import (
    Event,
    Finished,
    StreamParser,
    TextDelta,
    ToolCallReady,
    ToolCallStarted,
    Usage,
    stream_events,
)
from voiceagent.testing.electron import ElectronServer

# -- chunks in Electron's wire shape ----------------------------------------------------


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "electron",
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }
    )


def role() -> ChatCompletionChunk:
    return chunk({"role": "assistant", "content": ""})


def text(content: str | None) -> ChatCompletionChunk:
    return chunk({"content": content})


def call_start(index: int, call_id: str, name: str) -> ChatCompletionChunk:
    fragment = {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    return chunk({"tool_calls": [fragment]})


def args(index: int, fragment: str) -> ChatCompletionChunk:
    return chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})


def finish(reason: str = "tool_calls") -> ChatCompletionChunk:
    return chunk({}, reason)


def usage(prompt: int = 20, completion: int = 8, cached: int | None = 0) -> ChatCompletionChunk:
    body: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        body["prompt_tokens_details"] = {"cached_tokens": cached}
    return ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "electron",
            "choices": [],
            "usage": body,
        }
    )


def run(chunks: Sequence[ChatCompletionChunk]) -> list[Event]:
    parser = StreamParser()
    events = [event for c in chunks for event in parser.feed(c)]
    return events + parser.finish()


def of_type(events: Sequence[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


# -- text ---------------------------------------------------------------------------------


def test_each_non_empty_content_delta_is_a_text_delta() -> None:
    events = run([role(), text("Hello"), text(""), text(None), text(" there."), finish("stop")])
    assert of_type(events, TextDelta) == [TextDelta("Hello"), TextDelta(" there.")]


def test_the_role_chunk_yields_no_event() -> None:
    assert StreamParser().feed(role()) == []


def test_finished_carries_the_whole_content_and_reason_and_comes_last() -> None:
    events = run([role(), text("Let me "), text("check."), finish("stop"), usage()])
    assert events[-1] == Finished("stop", "Let me check.", ())
    assert len(of_type(events, Finished)) == 1


# -- tool calls ---------------------------------------------------------------------------


def test_started_is_emitted_with_the_first_fragment_of_a_call() -> None:
    parser = StreamParser()
    assert parser.feed(call_start(0, "call_1", "get_weather")) == [
        ToolCallStarted(0, "call_1", "get_weather")
    ]


def test_ready_is_emitted_by_the_chunk_that_closes_the_object() -> None:
    parser = StreamParser()
    parser.feed(call_start(0, "call_1", "get_weather"))
    assert parser.feed(args(0, '{"city": ')) == []
    assert parser.feed(args(0, '"Paris"}')) == [
        ToolCallReady(0, "call_1", "get_weather", '{"city": "Paris"}')
    ]


def test_braces_inside_strings_and_escaped_quotes_do_not_close_the_object() -> None:
    parser = StreamParser()
    parser.feed(call_start(0, "c", "note"))
    for fragment in ['{"t', 'ext": "a } \\', '" { ] \\\\', '", "n": [1, {"x": tr', "ue}]"]:
        assert parser.feed(args(0, fragment)) == []
    ready = parser.feed(args(0, "}"))
    assert json.loads(of_type(ready, ToolCallReady)[0].arguments) == {
        "text": 'a } " { ] \\',
        "n": [1, {"x": True}],
    }


def test_a_split_unicode_escape_and_surrogate_pair_are_tolerated() -> None:
    parser = StreamParser()
    parser.feed(call_start(0, "c", "say"))
    for fragment in ['{"w": "caf\\u00', "e9 \\ud83d", "\\ude00\\", '"', '"}']:
        events = parser.feed(args(0, fragment))
    assert json.loads(of_type(events, ToolCallReady)[0].arguments) == {"w": 'café 😀"'}


def test_whitespace_before_the_object_is_allowed() -> None:
    parser = StreamParser()
    parser.feed(call_start(0, "c", "f"))
    parser.feed(args(0, " \n "))
    assert of_type(parser.feed(args(0, '{"a": 1}')), ToolCallReady)


def test_non_object_arguments_wait_for_the_finish() -> None:
    parser = StreamParser()
    parser.feed(call_start(0, "c", "f"))
    assert parser.feed(args(0, "[1, 2]")) == []
    assert parser.feed(finish()) == [ToolCallReady(0, "c", "f", "[1, 2]")]


def test_stray_whitespace_after_a_complete_object_does_not_re_emit() -> None:
    events = run([call_start(0, "c", "f"), args(0, '{"a": 1}'), args(0, "\n "), finish()])
    assert of_type(events, ToolCallReady) == [ToolCallReady(0, "c", "f", '{"a": 1}')]
    assert events[-1] == Finished("tool_calls", "", (ToolCallReady(0, "c", "f", '{"a": 1}'),))


def test_a_new_index_makes_earlier_calls_ready() -> None:
    parser = StreamParser()
    parser.feed(call_start(0, "c0", "f"))
    parser.feed(args(0, '{"a": 1'))  # never closed: the model moved on
    assert parser.feed(call_start(1, "c1", "g")) == [
        ToolCallReady(0, "c0", "f", '{"a": 1'),
        ToolCallStarted(1, "c1", "g"),
    ]


def test_finish_reason_makes_remaining_calls_ready_even_when_empty_or_invalid() -> None:
    parser = StreamParser()
    parser.feed(call_start(0, "c0", "f"))
    parser.feed(call_start(1, "c1", "g"))
    parser.feed(args(1, '{"a": '))
    assert parser.feed(finish()) == [ToolCallReady(1, "c1", "g", '{"a": ')]


def test_parallel_calls_are_each_ready_once_in_index_order() -> None:
    events = run(
        [
            role(),
            text("Checking both."),
            call_start(0, "c0", "get_weather"),
            args(0, '{"city": "Paris"}'),
            call_start(1, "c1", "get_weather"),
            args(1, '{"city": "Pune"}'),
            finish(),
            usage(),
        ]
    )
    readies = of_type(events, ToolCallReady)
    assert [(r.index, r.call_id, json.loads(r.arguments)) for r in readies] == [
        (0, "c0", {"city": "Paris"}),
        (1, "c1", {"city": "Pune"}),
    ]
    assert events[-1] == Finished("tool_calls", "Checking both.", tuple(readies))


def test_interleaved_fragments_of_different_indexes_do_not_break_the_stream() -> None:
    events = run(
        [
            call_start(0, "c0", "f"),
            call_start(1, "c1", "g"),
            args(0, '{"late": true}'),  # 0 was made ready when index 1 began
            args(1, '{"b": 2}'),
            finish(),
        ]
    )
    readies = of_type(events, ToolCallReady)
    assert readies == [ToolCallReady(0, "c0", "f", ""), ToolCallReady(1, "c1", "g", '{"b": 2}')]


def test_repeated_id_and_name_are_ignored() -> None:
    repeat = chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "c0", "function": {"name": "get_weather", "arguments": "{}"}}
            ]
        }
    )
    events = run([call_start(0, "c0", "get_weather"), repeat, finish()])
    assert of_type(events, ToolCallStarted) == [ToolCallStarted(0, "c0", "get_weather")]
    assert of_type(events, ToolCallReady) == [ToolCallReady(0, "c0", "get_weather", "{}")]


def test_a_name_split_across_fragments_is_joined_before_arguments_arrive() -> None:
    def name(piece: str, arguments: str = "") -> ChatCompletionChunk:
        fn = {"name": piece, "arguments": arguments}
        return chunk({"tool_calls": [{"index": 0, "function": fn}]})

    head = chunk({"tool_calls": [{"index": 0, "id": "c0", "type": "function"}]})
    events = run([head, name("get_"), name("weather", "{}"), name("get_weather"), finish()])
    assert of_type(events, ToolCallReady) == [ToolCallReady(0, "c0", "get_weather", "{}")]


def test_content_after_tool_calls_is_still_text() -> None:
    events = run([call_start(0, "c", "f"), args(0, "{}"), text("Done."), finish()])
    assert of_type(events, TextDelta) == [TextDelta("Done.")]
    assert events[-1] == Finished("tool_calls", "Done.", (ToolCallReady(0, "c", "f", "{}"),))


def test_empty_deltas_yield_nothing() -> None:
    assert StreamParser().feed(chunk({})) == []


# -- usage and the end ----------------------------------------------------------------------


def test_usage_chunk_becomes_usage_before_finished() -> None:
    events = run([text("Hi"), finish("stop"), usage(prompt=20, completion=8, cached=12)])
    assert events[-2:] == [
        Usage(prompt=20, completion=8, cached=12),
        Finished("stop", "Hi", ()),
    ]


def test_missing_cached_tokens_count_as_zero() -> None:
    assert StreamParser().feed(usage(cached=None)) == [Usage(prompt=20, completion=8, cached=0)]


def test_finish_is_idempotent_and_feed_after_it_is_refused() -> None:
    parser = StreamParser()
    parser.feed(text("Hi"))
    assert len(parser.finish()) == 1
    assert parser.finish() == []
    with pytest.raises(RuntimeError):
        parser.feed(text("more"))


def test_a_stream_without_finish_reason_still_finishes() -> None:
    events = run([call_start(0, "c", "f"), args(0, '{"a"')])
    assert events[-2:] == [
        ToolCallReady(0, "c", "f", '{"a"'),
        Finished(None, "", (ToolCallReady(0, "c", "f", '{"a"'),)),
    ]


async def test_stream_events_yields_feed_events_then_finished() -> None:
    async def chunks() -> AsyncIterator[ChatCompletionChunk]:
        for c in [role(), text("Hi"), finish("stop"), usage()]:
            yield c

    events = [event async for event in stream_events(chunks())]
    assert events == [
        TextDelta("Hi"),
        Usage(prompt=20, completion=8, cached=0),
        Finished("stop", "Hi", ()),
    ]


# -- property: any fragmentation of any arguments ---------------------------------------------

_strings = st.text(st.characters(codec="utf-8") | st.sampled_from('"\\{}[]/\n\t😀é'), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _strings
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_strings, children, max_size=4)
    ),
    max_leaves=12,
)
_objects = st.dictionaries(_strings, _values, max_size=5)


@st.composite
def _split(draw: st.DrawFn, source: str) -> list[str]:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(source) - 1)), max_size=8)))
    bounds = [0, *(c for c in cuts if c < len(source)), len(source)]
    return [source[a:b] for a, b in itertools.pairwise(bounds) if a < b]


@given(data=st.data(), objects=st.lists(_objects, min_size=1, max_size=3))
@settings(max_examples=200, deadline=None)
def test_any_fragmentation_yields_each_call_ready_once_at_its_closing_brace(
    data: st.DataObject, objects: list[dict[str, Any]]
) -> None:
    before = data.draw(st.lists(_strings, max_size=3), label="content before")
    after = data.draw(st.lists(_strings, max_size=2), label="content after")
    chunks = [role(), *(text(t) for t in before)]
    closing: dict[int, int] = {}  # call index → position of the chunk with its closing brace
    for index, obj in enumerate(objects):
        ascii_only = data.draw(st.booleans(), label="ensure_ascii")
        indent = data.draw(st.sampled_from([None, 2]), label="indent")
        lead = data.draw(st.sampled_from(["", " ", "\n"]), label="leading whitespace")
        source = lead + json.dumps(obj, ensure_ascii=ascii_only, indent=indent)
        chunks.append(call_start(index, f"call_{index}", f"tool_{index}"))
        chunks.extend(args(index, piece) for piece in data.draw(_split(source)))
        closing[index] = len(chunks) - 1
        if data.draw(st.booleans(), label="stray whitespace"):
            chunks.append(args(index, " \n"))
    chunks += [*(text(t) for t in after), finish(), usage()]

    parser = StreamParser()
    per_chunk = [parser.feed(c) for c in chunks]
    tail = parser.finish()
    events = [e for batch in per_chunk for e in batch] + tail

    readies = of_type(events, ToolCallReady)
    assert [r.index for r in readies] == list(range(len(objects)))
    for ready, obj in zip(readies, objects, strict=True):
        assert json.loads(ready.arguments) == obj
        assert ready in per_chunk[closing[ready.index]]
        started = ToolCallStarted(ready.index, ready.call_id, ready.name)
        assert events.index(started) < events.index(ready)
    assert tail[-1] == Finished(
        "tool_calls", "".join(t.text for t in of_type(events, TextDelta)), tuple(readies)
    )
    assert "".join(t.text for t in of_type(events, TextDelta)) == "".join(before + after)


# -- a real stream ------------------------------------------------------------------------------

WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def test_a_real_stream_from_the_electron_simulator() -> None:
    script = [
        {
            "text": "Let me check.",
            "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
        }
    ]
    async with ElectronServer(script=script) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        async with client:
            chunks = await client.chat.completions.create(
                model="electron",
                messages=[{"role": "user", "content": "Weather in Paris?"}],
                tools=[WEATHER_TOOL],
                stream=True,
                stream_options={"include_usage": True},
            )
            events = [event async for event in stream_events(chunks)]

    (ready,) = of_type(events, ToolCallReady)
    assert ready.name == "get_weather"
    assert json.loads(ready.arguments) == {"city": "Paris"}
    assert of_type(events, ToolCallStarted) == [ToolCallStarted(0, ready.call_id, "get_weather")]
    assert "".join(t.text for t in of_type(events, TextDelta)) == "Let me check."
    assert isinstance(events[-2], Usage)
    assert events[-1] == Finished("tool_calls", "Let me check.", (ready,))


# -- ids that come late, never, or empty (other OpenAI-compatible servers) ----------------


def fragment(index: int, **fields: Any) -> ChatCompletionChunk:
    return chunk({"tool_calls": [{"index": index, **fields}]})


def test_an_id_that_arrives_after_the_name_is_the_calls_id() -> None:
    events = run(
        [
            fragment(0, type="function", function={"name": "get_weather", "arguments": ""}),
            fragment(0, id="late_1", function={"arguments": '{"city": '}),
            args(0, '"Pune"}'),
            finish(),
        ]
    )
    assert of_type(events, ToolCallStarted) == [ToolCallStarted(0, "late_1", "get_weather")]
    assert of_type(events, ToolCallReady) == [
        ToolCallReady(0, "late_1", "get_weather", '{"city": "Pune"}')
    ]


@pytest.mark.parametrize("given_id", [None, ""])
def test_a_call_without_an_id_gets_one_made_up_the_same_in_started_and_ready(
    given_id: str | None,
) -> None:
    head = {"function": {"name": "get_weather", "arguments": ""}}
    if given_id is not None:
        head["id"] = given_id
    events = run([fragment(0, **head), args(0, "{}"), fragment(1, **head), args(1, "{}")])
    started, ready = of_type(events, ToolCallStarted), of_type(events, ToolCallReady)
    assert [s.call_id for s in started] == [r.call_id for r in ready]
    assert all(r.call_id.startswith("call_") for r in ready)
    assert len({r.call_id for r in ready}) == 2
    (done,) = of_type(events, Finished)
    assert [c.call_id for c in done.tool_calls] == [r.call_id for r in ready]
