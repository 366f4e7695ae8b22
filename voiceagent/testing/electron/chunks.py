"""Electron's response bodies: ``chat.completion.chunk`` SSE events and ``chat.completion``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from voiceagent.testing.electron.reply import (
    ArgumentsDelta,
    ContentDelta,
    Delta,
    Rendered,
    ToolCallStart,
)

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Completion:
    """The identity of one response: every chunk of it carries the same id."""

    id: str
    created: int
    model: str


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def chunk(
    completion: Completion, delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


def role_chunk(completion: Completion) -> dict[str, Any]:
    return chunk(completion, {"role": "assistant", "content": ""})


def delta_chunk(completion: Completion, delta: Delta) -> dict[str, Any]:
    if isinstance(delta, ContentDelta):
        return chunk(completion, {"content": delta.text})
    if isinstance(delta, ToolCallStart):
        call = {
            "index": delta.index,
            "id": delta.call_id,
            "type": "function",
            "function": {"name": delta.name, "arguments": ""},
        }
        return chunk(completion, {"tool_calls": [call]})
    assert isinstance(delta, ArgumentsDelta)
    fragment = {"index": delta.index, "function": {"arguments": delta.fragment}}
    return chunk(completion, {"tool_calls": [fragment]})


def finish_chunk(completion: Completion, finish_reason: str) -> dict[str, Any]:
    return chunk(completion, {}, finish_reason)


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def usage_chunk(completion: Completion, usage_: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "choices": [],
        "usage": usage_,
    }


def completion_body(
    completion: Completion, rendered: Rendered, usage_: dict[str, Any]
) -> dict[str, Any]:
    """The whole ``chat.completion`` for ``stream: false``."""
    message: dict[str, Any] = {"role": "assistant", "content": rendered.content, "refusal": None}
    calls = rendered.tool_calls()
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": rendered.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage_,
    }
