"""Agent references: FILE.py[:NAME] or module[:NAME], split on the last ':', NAME default
`agent`, an Agent or a zero-argument function returning one; none means the demo agent."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from voiceagent.agent import Agent
from voiceagent.agent_ref import AgentRefError, load_agent

AGENT_SOURCE = """\
from voiceagent.agent import Agent

agent = Agent(instructions="default agent")
other = Agent(instructions="other agent")


def make():
    return Agent(instructions="made agent")


def needs_args(name):
    return Agent(instructions=name)


def not_an_agent():
    return 42


number = 7
"""


@pytest.fixture
def clean_imports() -> Iterator[None]:
    """Modules and sys.path entries the loader adds are removed after the test."""
    modules, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


@pytest.fixture
def agent_file(tmp_path: Path, clean_imports: None) -> Path:
    path = tmp_path / f"agent_{uuid.uuid4().hex[:8]}.py"
    path.write_text(AGENT_SOURCE)
    return path


@pytest.fixture
def agent_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_imports: None) -> str:
    name = f"agent_mod_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(AGENT_SOURCE)
    monkeypatch.chdir(tmp_path)
    return name


def test_no_reference_is_the_built_in_demo_agent() -> None:
    agent = load_agent(None)
    assert isinstance(agent, Agent)
    assert {"current_time", "calculate", "get_weather"} <= set(agent.registry.names)
    assert agent.greeting


def test_a_file_path_loads_its_agent(agent_file: Path) -> None:
    assert load_agent(str(agent_file)).instructions == "default agent"


def test_a_file_with_a_name_loads_that_name(agent_file: Path) -> None:
    assert load_agent(f"{agent_file}:other").instructions == "other agent"


def test_a_zero_argument_function_is_called(agent_file: Path) -> None:
    assert load_agent(f"{agent_file}:make").instructions == "made agent"


def test_a_relative_path_with_a_slash_is_a_file(
    agent_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(agent_file.parent.parent)
    ref = f"{agent_file.parent.name}/{agent_file.name}:other"
    assert load_agent(ref).instructions == "other agent"


def test_a_file_can_import_its_neighbours(tmp_path: Path, clean_imports: None) -> None:
    helper = f"helper_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{helper}.py").write_text("TEXT = 'from a neighbour'\n")
    path = tmp_path / "uses_helper.py"
    path.write_text(
        f"from voiceagent.agent import Agent\nfrom {helper} import TEXT\n"
        "agent = Agent(instructions=TEXT)\n"
    )
    assert load_agent(str(path)).instructions == "from a neighbour"


def test_a_module_is_imported_from_the_current_directory(agent_module: str) -> None:
    assert load_agent(agent_module).instructions == "default agent"


def test_a_module_with_a_name_loads_that_name(agent_module: str) -> None:
    assert load_agent(f"{agent_module}:make").instructions == "made agent"


def test_the_split_is_on_the_last_colon(tmp_path: Path, clean_imports: None) -> None:
    folder = tmp_path / "a:b"
    folder.mkdir()
    path = folder / "colon_agent.py"
    path.write_text(AGENT_SOURCE)
    assert load_agent(f"{path}:other").instructions == "other agent"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AgentRefError, match=r"agent file not found: .*missing\.py"):
        load_agent(str(tmp_path / "missing.py"))


def test_a_missing_module_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AgentRefError, match="no module named 'no_such_agent_module'"):
        load_agent("no_such_agent_module:agent")


def test_a_missing_name_is_named_with_the_agents_found(agent_file: Path) -> None:
    with pytest.raises(AgentRefError, match="has no 'nope'; its Agents: agent, other"):
        load_agent(f"{agent_file}:nope")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("number", "is a int, not an Agent"),
        ("needs_args", "a function that takes arguments, not an Agent"),
        ("not_an_agent", r"not_an_agent\(\) returned int, not an Agent"),
        ("Agent", "the class Agent, not an Agent"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(agent_file: Path, name: str, message: str) -> None:
    with pytest.raises(AgentRefError, match=message):
        load_agent(f"{agent_file}:{name}")


def test_a_name_must_be_a_plain_name(agent_file: Path) -> None:
    with pytest.raises(AgentRefError, match="not a plain Python name"):
        load_agent(f"{agent_file}:agent.instructions")


def test_an_error_inside_the_file_is_one_line(tmp_path: Path, clean_imports: None) -> None:
    path = tmp_path / "broken_agent.py"
    path.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(AgentRefError, match=r"RuntimeError: boom \(.*broken_agent.py:1\)"):
        load_agent(str(path))


def test_errors_are_value_errors() -> None:
    assert issubclass(AgentRefError, ValueError)
