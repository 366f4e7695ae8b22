"""The package as users get it: the wheel's contents, the voiceagent.adapters/tools mapping,
and a light ``import voiceagent``."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*cmd: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", out, ROOT)  # fmt: skip
    (built,) = out.glob("voiceagent-*.whl")
    return built


def test_wheel_maps_adapters_and_tools_under_voiceagent(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "voiceagent/adapters/__init__.py" in names
    assert "voiceagent/tools/__init__.py" in names
    assert "voiceagent/py.typed" in names
    assert "voiceagent/testing/electron/server.py" in names
    top_level = {name.split("/")[0] for name in names}
    assert "adapters" not in top_level and "tools" not in top_level, top_level


def test_wheel_declares_the_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        (entry_points,) = [n for n in whl.namelist() if n.endswith("entry_points.txt")]
        text = whl.read(entry_points).decode()
    assert "voiceagent = voiceagent.cli:main" in text


def test_wheel_installs_without_top_level_adapters_or_tools(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel)

    # A user's own top-level tools/ folder must not shadow voiceagent.tools.
    project = tmp_path / "user_project"
    (project / "tools").mkdir(parents=True)
    (project / "tools" / "__init__.py").write_text("MINE = True\n")
    probe = (
        "import json, sysconfig, voiceagent.adapters, voiceagent.tools, tools;"
        "site = sysconfig.get_paths()['purelib'];"
        "print(json.dumps({'adapters': voiceagent.adapters.__file__,"
        " 'tools': voiceagent.tools.__file__, 'user_tools': tools.__file__, 'site': site}))"
    )
    found = json.loads(run(python, "-c", probe, cwd=project))
    site = Path(found["site"])
    assert Path(found["adapters"]) == site / "voiceagent" / "adapters" / "__init__.py"
    assert Path(found["tools"]) == site / "voiceagent" / "tools" / "__init__.py"
    assert Path(found["user_tools"]) == project / "tools" / "__init__.py"
    assert not (site / "adapters").exists()
    assert not (site / "tools").exists()
    # the console script works from the wheel alone (no dependencies installed)
    assert "voiceagent" in run(env_dir / "bin" / "voiceagent", "--help")


@pytest.mark.parametrize("cwd", [ROOT, Path("/")], ids=["checkout-root", "elsewhere"])
def test_editable_install_resolves_the_mapping(cwd: Path) -> None:
    probe = "import voiceagent.adapters as a, voiceagent.tools as t; print(a.__file__, t.__file__)"
    adapters, tools = run(sys.executable, "-c", probe, cwd=cwd).split()
    assert Path(adapters) == ROOT / "adapters" / "__init__.py"
    assert Path(tools) == ROOT / "tools" / "__init__.py"


def test_import_voiceagent_loads_no_heavy_module() -> None:
    heavy = ["openai", "numpy", "pydantic", "websockets", "httpx2", "anyio"]
    probe = f"import sys, voiceagent; print([m for m in {heavy!r} if m in sys.modules])"
    assert run(sys.executable, "-c", probe).strip() == "[]"


def test_the_public_surface_imports() -> None:
    from voiceagent import Agent, Session, ToolContext, tool

    assert Session.__module__ == "voiceagent.session"

    @tool
    def echo(ctx: ToolContext, text: str) -> str:
        """Echo the text."""
        return text

    agent = Agent(instructions="Test.", tools=[echo])
    assert agent.registry.names == ["echo"]


def test_public_names_load_on_first_use() -> None:
    probe = (
        "import sys, voiceagent; c = voiceagent.ElectronClient;"
        "print(c.__module__.startswith('voiceagent.llm'), 'openai' in sys.modules)"
    )
    assert run(sys.executable, "-c", probe).split() == ["True", "True"]
