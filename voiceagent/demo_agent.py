"""The built-in demo agent: a short-spoken assistant with a clock, a calculator and the weather.

``voiceagent chat`` (and the demo) run it when no agent reference is given.
"""

from __future__ import annotations

from voiceagent.agent import Agent
from voiceagent.tools import calculate, current_time, get_weather

INSTRUCTIONS = """\
You are a friendly voice assistant. Everything you write is spoken aloud, so answer in one \
or two short sentences of plain speech: no lists, no markdown, no symbols. Use the tools for \
the time, arithmetic and the weather rather than guessing. If a tool fails, say so briefly."""

agent = Agent(
    instructions=INSTRUCTIONS,
    tools=[current_time, calculate, get_weather],
    greeting="Hi! I can tell you the time, do some arithmetic, or check the weather. "
    "What would you like?",
)
