"""A short scripted conversation with tools, streamed through voiceagent's Electron client.

Endpoint by DESIGN.md's table: ELECTRON_BASE_URL, else Electron with SMALLEST_API_KEY,
else `voiceagent sim` (the local simulator, started here). It shows the client alone, below
the turn engine: run it as `.venv/bin/python examples/sim_conversation.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from voiceagent.llm import ElectronClient, UsageTotals, resolve_llm_endpoint

QUESTIONS = ["Hello there!", "What's the weather in Paris?", "What is 12 times 7?"]


def function(name: str, description: str, **params: str) -> dict[str, Any]:
    properties = {p: {"type": t} for p, t in params.items()}
    schema = {"type": "object", "properties": properties, "required": list(params)}
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": schema}}  # fmt: skip


TOOLS = [
    function("get_weather", "Current weather for a city.", city="string"),
    function("get_time", "The current local time."),
]


def run_tool(name: str, arguments: str) -> str:
    args = json.loads(arguments or "{}")
    if name == "get_weather":
        return json.dumps({"city": args.get("city"), "temperature_c": 18, "conditions": "sunny"})
    if name == "get_time":
        return json.dumps({"time": datetime.now().strftime("%H:%M")})
    return json.dumps({"error": f"unknown tool {name}"})


@dataclass
class Call:
    id: str = ""
    name: str = ""
    arguments: str = ""

    def as_message(self) -> dict[str, Any]:
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def one_round(client: ElectronClient, messages: list[dict[str, Any]]) -> list[Call]:
    """Streams one reply, prints its words as they come, returns its tool calls."""
    started, first_token = time.perf_counter(), 0.0
    text, calls = "", dict[int, Call]()
    async with client.stream(messages, tools=TOOLS, temperature=0) as stream:
        async for chunk in stream:
            for choice in chunk.choices:
                delta = choice.delta
                if (delta.content or delta.tool_calls) and not first_token:
                    first_token = time.perf_counter()
                if delta.content:
                    text += delta.content
                    print(delta.content, end="", flush=True)
                for fragment in delta.tool_calls or []:
                    call = calls.setdefault(fragment.index, Call())
                    call.id = fragment.id or call.id
                    if fragment.function:
                        call.name += fragment.function.name or ""
                        call.arguments += fragment.function.arguments or ""
    if text:
        print(" ", end="", flush=True)  # the next round's words follow this one's
    usage = stream.usage
    cached = f"{usage.cached}/{usage.prompt}" if usage else "?"
    log(f"\n    [first token {(first_token - started) * 1000:.0f} ms, request "
        f"{stream.request_id}, cached {cached} prompt tokens]")  # fmt: skip
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [call.as_message() for call in calls.values()]
    messages.append(message)
    return list(calls.values())


async def converse(base_url: str, api_key: str | None) -> None:
    client = ElectronClient(base_url, api_key)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a friendly voice assistant. Keep replies short."}
    ]
    for question in QUESTIONS:
        print(f"\nyou:   {question}\nagent: ", end="", flush=True)
        messages.append({"role": "user", "content": question})
        for _ in range(3):  # bounded tool rounds
            calls = await one_round(client, messages)
            if not calls:
                break
            for call in calls:
                result = run_tool(call.name, call.arguments)
                log(f"    [tool {call.name}({call.arguments}) -> {result}]")
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    totals: UsageTotals = client.usage
    ratio = totals.cache_hit_ratio
    log(f"\n{totals.requests} requests, {totals.prompt} prompt tokens, cache hit ratio "
        + (f"{ratio:.0%}" if ratio is not None else "n/a"))  # fmt: skip


def main() -> None:
    endpoint = resolve_llm_endpoint(None, None, os.environ)
    log(endpoint.describe())
    if endpoint.base_url is not None:
        asyncio.run(converse(endpoint.base_url, endpoint.api_key))
        return
    voiceagent = Path(sys.executable).with_name("voiceagent")
    sim = subprocess.Popen(
        [voiceagent, "sim", "--port", "0", "--quiet"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sim.stdout is not None
        base_url = sim.stdout.readline().strip()
        log(f"voiceagent sim is serving {base_url} (a rule-based simulator, not a model)")
        asyncio.run(converse(base_url, None))
    finally:
        sim.terminate()
        sim.wait(timeout=10)


if __name__ == "__main__":
    main()
