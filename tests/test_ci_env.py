"""One rule for "under CI" (tests/ci_env.py): the barge-in fuzz's CI counts and the skips
that fail under CI (peers, Redis, nginx, the browser) agree on every value of ``CI``."""

from __future__ import annotations

from pathlib import Path

import pytest
from ci_env import in_ci, missing
from peers import rig


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "1", "yes", " true "])
def test_any_other_value_is_ci(value: str) -> None:
    assert in_ci({"CI": value})


@pytest.mark.parametrize("value", ["", "0", "false", "False", " FALSE "])
def test_unset_empty_0_and_false_are_not_ci(value: str) -> None:
    assert not in_ci({"CI": value})
    assert not in_ci({})


def test_a_missing_dependency_fails_under_ci_and_skips_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value, outcome in (("1", pytest.fail.Exception), ("false", pytest.skip.Exception)):
        monkeypatch.setenv("CI", value)  # "1": not "true", still CI
        with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as raised:
            missing("no redis-server")
        assert raised.type is outcome and "no redis-server" in str(raised.value)


@pytest.mark.parametrize(("value", "outcome"), [("1", "fail"), ("True", "fail"), ("0", "skip")])
def test_a_missing_peers_venv_follows_the_same_rule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, outcome: str
) -> None:
    monkeypatch.setattr(rig, "PEERS_PYTHON", tmp_path / "no-peers" / "python")
    monkeypatch.setattr(rig, "PEERS", tmp_path / "no-peers")
    monkeypatch.setenv("CI", value)
    # both caught: a skip where a failure is due must fail this test, not skip it
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as raised:
        rig.peers_python()
    assert "peer clients not installed" in str(raised.value)
    assert raised.type is (pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception)
