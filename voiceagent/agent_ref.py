"""Agent references, ``FILE.py[:NAME]`` or ``module[:NAME]``, resolved to an ``Agent``
(DESIGN.md, "Command-line details"); no reference means the built-in demo agent."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from voiceagent.agent import Agent

DEFAULT_NAME = "agent"
DEMO_MODULE = "voiceagent.demo_agent"


class AgentRefError(ValueError):
    """An agent reference that does not lead to an Agent; the message names what was tried."""


def load_agent(ref: str | None) -> Agent:
    """The Agent that ``ref`` names: ``FILE.py[:NAME]``, ``module[:NAME]``, or None (the demo)."""
    if ref is None or not ref.strip():
        return _agent_from(importlib.import_module(DEMO_MODULE), DEFAULT_NAME, DEMO_MODULE)
    target, colon, name = ref.strip().rpartition(":")
    if not colon:
        target, name = name, DEFAULT_NAME
    if not target:
        raise AgentRefError(f"agent reference {ref!r} names no file or module before ':'")
    if not name.isidentifier():
        raise AgentRefError(
            f"agent reference {ref!r}: {name!r} is not a plain Python name "
            "(expected FILE.py[:NAME] or module[:NAME])"
        )
    if target.endswith(".py") or "/" in target or os.sep in target:
        return _agent_from(_load_file(Path(target)), name, target)
    return _agent_from(_load_module(target), name, f"module {target}")


def _load_file(path: Path) -> ModuleType:
    """The file run as a module, with its folder on sys.path so its own imports work."""
    if not path.exists():
        raise AgentRefError(f"agent file not found: {path}")
    if path.is_dir() or path.suffix != ".py":
        raise AgentRefError(f"agent reference {path} is not a .py file")
    path = path.resolve()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    if not name.isidentifier() or name in sys.modules:
        # e.g. an agent file named like a module already imported: never replace that one
        name = "_voiceagent_agent_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AgentRefError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    # registered before running it: dataclasses and pickling look their module up by name
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise AgentRefError(f"loading agent file {path} failed: {_describe(error)}") from error
    return module


def _load_module(name: str) -> ModuleType:
    """The module imported with the current directory on sys.path."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name == error.name or name.startswith(error.name + ".")):
            raise AgentRefError(
                f"no module named {name!r} (looked in the current directory {cwd} and on "
                "sys.path); for a file, give its path ending in .py"
            ) from error
        raise AgentRefError(f"importing module {name} failed: {_describe(error)}") from error
    except Exception as error:
        raise AgentRefError(f"importing module {name} failed: {_describe(error)}") from error


def _agent_from(module: ModuleType, name: str, where: str) -> Agent:
    """``module.name`` as an Agent: the Agent itself, or what a zero-argument function returns."""
    if not hasattr(module, name):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, Agent))
        hint = f"; its Agents: {', '.join(found)}" if found else ""
        raise AgentRefError(f"{where} has no {name!r}{hint}")
    value = getattr(module, name)
    if isinstance(value, Agent):
        return value
    if callable(value) and not isinstance(value, type) and _takes_no_arguments(value):
        try:
            made = value()
        except Exception as error:
            raise AgentRefError(f"{where}:{name}() failed: {_describe(error)}") from error
        if isinstance(made, Agent):
            return made
        raise AgentRefError(f"{where}:{name}() returned {type(made).__name__}, not an Agent")
    raise AgentRefError(
        f"{where}:{name} is {_kind(value)}, not an Agent or a zero-argument function returning one"
    )


def _takes_no_arguments(function: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters
    )


def _kind(value: object) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    if callable(value):
        return "a function that takes arguments"
    return f"a {type(value).__name__}"


def _describe(error: BaseException) -> str:
    """``Type: message (file:line)`` of where it was raised: one line, no traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    at = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    if isinstance(error, SyntaxError) and error.filename:
        at = f" ({error.filename}:{error.lineno})"
        return f"SyntaxError: {error.msg}{at}"
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}{at}" if message else f"{type(error).__name__}{at}"
