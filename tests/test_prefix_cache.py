"""The simulator's prefix cache: cached_tokens is the longest prefix seen within the TTL."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import openai
from hypothesis import given
from hypothesis import strategies as st

from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.electron.prefix_cache import PrefixCache, request_tokens, tokenize


def client_for(server: ElectronServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tokenize_is_word_sized_and_lossless() -> None:
    text = 'Hello, world!  {"city": "Paris"}'
    tokens = tokenize(text)
    assert "".join(tokens) == text
    assert tokens[:4] == ["Hello", ",", " world", "!"]


def test_request_tokens_put_tools_first_then_messages_in_order() -> None:
    tool = {"type": "function", "function": {"name": "get_weather"}}
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    tokens = request_tokens(messages, [tool])
    assert tokens[0] == "<|tool|>"
    assert tokens.index("<|system|>") < tokens.index("<|user|>")
    assert request_tokens(messages, [tool]) == tokens  # deterministic


def test_tool_calls_and_tool_call_ids_count_as_prompt_tokens() -> None:
    bare = [{"role": "assistant", "content": None}]
    with_call = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": "{}"}}],
        }
    ]
    assert len(request_tokens(with_call)) > len(request_tokens(bare))
    tool_message = [{"role": "tool", "content": "{}", "tool_call_id": "call_1"}]
    assert "<|tool_call_id|>" in request_tokens(tool_message)


def test_first_request_has_nothing_cached_and_a_repeat_has_everything() -> None:
    cache = PrefixCache()
    tokens = tokenize("the same request twice")
    assert cache.lookup_and_remember(tokens) == 0
    assert cache.lookup_and_remember(tokens) == len(tokens)


def test_cached_is_the_longest_shared_prefix_with_any_earlier_request() -> None:
    cache = PrefixCache()
    cache.remember(["a", "b", "c", "d"])
    cache.remember(["a", "x"])
    assert cache.cached_prefix(["a", "b", "c", "z"]) == 3
    assert cache.cached_prefix(["a", "x", "y"]) == 2
    assert cache.cached_prefix(["q"]) == 0


def test_entries_expire_after_the_ttl() -> None:
    clock = FakeClock()
    cache = PrefixCache(ttl_s=300, clock=clock)
    cache.remember(["a", "b"])
    clock.now += 299
    assert cache.cached_prefix(["a", "b"]) == 2
    clock.now += 2
    assert cache.cached_prefix(["a", "b"]) == 0


def test_a_reuse_refreshes_the_shared_prefix_only() -> None:
    clock = FakeClock()
    cache = PrefixCache(ttl_s=10, clock=clock)
    cache.remember(["a", "b", "c"])
    clock.now += 8
    cache.remember(["a", "b", "x"])
    clock.now += 8
    assert cache.cached_prefix(["a", "b", "c"]) == 2


def test_prune_frees_expired_subtrees() -> None:
    clock = FakeClock()
    cache = PrefixCache(ttl_s=10, clock=clock)
    cache.remember(["a", "b", "c"])
    clock.now += 20
    cache.remember(["z"])
    cache.prune()
    assert cache.node_count() == 1


@given(
    st.lists(st.lists(st.sampled_from("abc"), max_size=8), max_size=8),
    st.lists(st.sampled_from("abc"), max_size=8),
)
def test_cached_prefix_matches_brute_force(earlier: list[list[str]], probe: list[str]) -> None:
    cache = PrefixCache()
    for tokens in earlier:
        cache.remember(tokens)

    def shared(a: list[str], b: list[str]) -> int:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    expected = max((shared(tokens, probe) for tokens in earlier), default=0)
    assert cache.cached_prefix(probe) == expected


async def usage_of(client: openai.AsyncOpenAI, messages: list[dict[str, Any]]) -> tuple[int, int]:
    stream = await client.chat.completions.create(
        model="electron",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
    assert usage is not None and usage.prompt_tokens_details is not None
    return usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens or 0


async def test_cached_tokens_grow_while_the_history_keeps_its_prefix() -> None:
    async with AsyncExitStack() as stack, ElectronServer() as server:
        client = await stack.enter_async_context(client_for(server))
        history: list[dict[str, Any]] = [{"role": "system", "content": "You are a helpful agent."}]
        previous_prompt, cached_seen = 0, []
        for question in ["hello there", "what is 2 plus 3", "thanks, bye"]:
            history.append({"role": "user", "content": question})
            prompt, cached = await usage_of(client, history)
            assert cached == previous_prompt  # the whole previous request is a prefix
            cached_seen.append(cached)
            previous_prompt = prompt
            history.append({"role": "assistant", "content": "Sure."})
    assert cached_seen[0] == 0 and cached_seen[0] < cached_seen[1] < cached_seen[2]


async def test_cached_tokens_drop_when_an_early_message_changes() -> None:
    async with AsyncExitStack() as stack, ElectronServer() as server:
        client = await stack.enter_async_context(client_for(server))
        turns = [
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "what is 2 plus 3"},
        ]
        stable = [{"role": "system", "content": "You are a helpful agent."}, *turns]
        await usage_of(client, stable)
        _, cached_stable = await usage_of(client, stable)
        changed = [{"role": "system", "content": "The time is 10:42. You are helpful."}, *turns]
        _, cached_changed = await usage_of(client, changed)
    assert cached_changed < 3 < cached_stable
