"""voiceagent.tools: the ready-made tools, re-exported lazily so importing the package is light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import voiceagent.tools
from voiceagent.toolkit import Tool


def test_the_tools_are_reexported_as_tools() -> None:
    names = ["calculate", "current_time", "end_call", "get_weather", "transfer_call"]
    for name in names:
        assert isinstance(getattr(voiceagent.tools, name), Tool)
    assert sorted(dir(voiceagent.tools)) == names


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'teleport'"):
        _ = voiceagent.tools.teleport


def _modules_after(code: str) -> list[str]:
    probe = f"import json, sys; {code}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules: list[str] = json.loads(out.stdout)
    return modules


def test_importing_the_package_imports_no_tool_and_no_toolkit() -> None:
    modules = _modules_after("import voiceagent.tools")
    assert not [m for m in modules if m.startswith(("voiceagent.tools.", "voiceagent.toolkit"))]
    assert "pydantic" not in modules


def test_using_the_weather_tool_does_not_import_the_http_client_until_it_runs() -> None:
    modules = _modules_after("from voiceagent.tools import get_weather")
    assert "voiceagent.tools.weather" in modules
    assert "httpx2" not in modules
