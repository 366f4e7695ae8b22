"""The simulator's rule-based demo brain: a few intents, offered tools only, spoken replies.

It is not a model. It reads only the conversation it is sent (no state), deterministically.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from voiceagent.testing.electron.arguments import fill_arguments
from voiceagent.testing.electron.intents import Intent, detect_intent
from voiceagent.testing.electron.prefix_cache import content_text
from voiceagent.testing.electron.reply import Reply, ToolCallSpec

_FILLERS = {
    "weather": "Let me check the weather for you.",
    "time": "Let me check the time for you.",
    "arithmetic": "Let me work that out.",
}
_KEYWORDS = {
    "weather": {"weather", "forecast", "temperature", "conditions", "climate"},
    "time": {"time", "clock", "timezone", "date", "hour"},
    "arithmetic": {"calculate", "calculator", "math", "arithmetic", "compute", "evaluate"},
}
# "WeatherError: ..." as a framework words a raised exception: the name is not for listeners
_EXCEPTION_NAME = re.compile(r"^[A-Z]\w*(?:Error|Exception|Failure)\s*:\s*")
_FALLBACK = "Sorry, I can only help with the weather, the time, or simple arithmetic."


def think(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    clock: Callable[[], datetime] = datetime.now,
) -> Reply:
    """The reply to this conversation, calling only tools from ``tools``."""
    offered = [t["function"] for t in tools or () if isinstance(t.get("function"), Mapping)]
    if messages and messages[-1].get("role") == "tool":
        return Reply(text=answer_from_results(messages))
    user_text = _last_user_text(messages)
    intent = detect_intent(user_text)
    if tool_choice == "none":
        offered = []
    forced = _forced_tool(tool_choice, offered)
    if forced is not None:
        intent = intent or Intent("other", user_text)
        return _call(intent, [forced])
    tool = _pick_tool(intent, offered) if intent is not None else None
    if tool is not None and intent is not None:
        return _call(intent, [tool])
    if tool_choice == "required" and offered:
        return _call(intent or Intent("other", user_text), [offered[0]])
    return Reply(text=_answer_directly(intent, user_text, clock))


def _call(intent: Intent, tools: list[Mapping[str, Any]]) -> Reply:
    tool = tools[0]
    places: list[str | None] = [*intent.places] or [None]
    multi = len(places) > 1 and _has_place_parameter(tool)
    calls = tuple(
        ToolCallSpec(str(tool["name"]), fill_arguments(tool.get("parameters"), intent, place))
        for place in (places if multi else places[:1])
    )
    return Reply(text=_FILLERS.get(intent.kind, "One moment."), tool_calls=calls)


def _has_place_parameter(tool: Mapping[str, Any]) -> bool:
    params = tool.get("parameters") or {}
    props = params.get("properties") or {}
    return any(p.get("type") == "string" for p in props.values() if isinstance(p, Mapping))


def _forced_tool(tool_choice: Any, offered: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    if isinstance(tool_choice, Mapping):
        name = (tool_choice.get("function") or {}).get("name")
        return next((t for t in offered if t.get("name") == name), None)
    return None


def _pick_tool(intent: Intent, offered: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    keywords = _KEYWORDS.get(intent.kind, set())
    best, best_score = None, 0
    for tool in offered:
        words = set(
            re.findall(r"[a-z]+", f"{tool.get('name', '')} {tool.get('description', '')}".lower())
        )
        words |= set(re.findall(r"[a-z]+", str(tool.get("name", "")).replace("_", " ").lower()))
        score = len(words & keywords)
        if score > best_score:
            best, best_score = tool, score
    return best


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def _answer_directly(intent: Intent | None, text: str, clock: Callable[[], datetime]) -> str:
    if intent is None:
        if re.search(r"\b(hello|hi|hey|good (morning|afternoon|evening))\b", text, re.I):
            return "Hello! How can I help you today?"
        if re.search(r"\b(thanks|thank you|bye|goodbye)\b", text, re.I):
            return "You're welcome. Have a great day!"
        return _FALLBACK if text.strip() else "How can I help you today?"
    if intent.kind == "arithmetic" and intent.result is not None:
        return f"{intent.expression_words} is {_number(intent.result)}."
    if intent.kind == "arithmetic":
        return "I can't divide by zero."
    if intent.kind == "time":
        now = clock()
        return f"It's {now.strftime('%I:%M %p').lstrip('0')}."
    if intent.kind == "weather":
        return "Sorry, I can't look up the weather right now."
    return _FALLBACK


def answer_from_results(messages: Sequence[Mapping[str, Any]]) -> str:
    """One or two spoken sentences from the trailing tool messages."""
    results = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(message)
    subjects = _call_subjects(messages[: len(messages) - len(results)])
    sentences = [
        _speak_result(content_text(r.get("content")), subjects.get(str(r.get("tool_call_id"))))
        for r in reversed(results)
    ]
    return " ".join(sentences[:2])


def _call_subjects(messages: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Call id -> the first text argument of that call (e.g. the city), from the last request."""
    if not messages or not isinstance(messages[-1].get("tool_calls"), list):
        return {}
    subjects = {}
    for call in messages[-1]["tool_calls"]:
        try:
            arguments = json.loads(call["function"]["arguments"] or "{}")
        except (KeyError, TypeError, json.JSONDecodeError):
            continue
        if isinstance(arguments, Mapping):
            text = next((v for v in arguments.values() if isinstance(v, str) and v.strip()), None)
            if text is not None:
                subjects[str(call.get("id"))] = text.strip()
    return subjects


def _speak_result(raw: str, subject: str | None = None) -> str:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        data = raw
    if isinstance(data, Mapping) and _field(data, "error", "message_error") is not None:
        return _speak_error(str(_field(data, "error", "message_error")), subject)
    if isinstance(data, Mapping):
        return _speak_mapping(data)
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return f"The answer is {_number(data)}."
    text = str(data).strip().rstrip(".")
    return f"Here's what I found: {text}." if text else "That's done."


def _field(data: Mapping[str, Any], *names: str) -> Any:
    lowered = {str(k).lower(): v for k, v in data.items()}
    for name in names:
        if lowered.get(name) not in (None, ""):
            return lowered[name]
    return None


def _speak_mapping(data: Mapping[str, Any]) -> str:
    place = _field(data, "city", "location", "place", "name")
    where = f" in {place}" if place is not None else ""
    temp = _field(data, "temperature", "temp", "temperature_c", "temp_c", "temperature_f")
    conditions = _field(data, "conditions", "condition", "description", "summary", "weather")
    if temp is not None or conditions is not None:
        parts = []
        if temp is not None:
            unit = _field(data, "unit", "units")
            parts.append(f"{_number(temp)} degrees{' ' + str(unit) if unit else ''}")
        if conditions is not None:
            parts.append(str(conditions).lower())
        return f"It's {' and '.join(parts)}{where}."
    when = _field(data, "time", "current_time", "datetime", "local_time")
    if when is not None:
        return f"It's {when}{where}."
    value = _field(data, "result", "value", "answer", "total")
    if value is not None:
        return f"The answer is {_number(value)}."
    scalars = [(k, v) for k, v in data.items() if isinstance(v, (str, int, float, bool))][:2]
    if not scalars:
        return "That's done."
    said = " and ".join(f"the {str(k).replace('_', ' ')} is {_number(v)}" for k, v in scalars)
    return said[0].upper() + said[1:] + "."


def _speak_error(error: str, subject: str | None) -> str:
    """A failed call, briefly: what it was about, and why, without the exception's type name."""
    reason = _EXCEPTION_NAME.sub("", " ".join(error.split())).rstrip(" .!?") or "it failed"
    about = f" for {subject}" if subject else ""
    return f"Sorry, I couldn't get that{about}: {reason}."


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
