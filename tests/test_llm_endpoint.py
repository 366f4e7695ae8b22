"""Endpoint resolution: which URL, which key, and SMALLEST_API_KEY never leaving smallest.ai."""

from __future__ import annotations

import pytest

from voiceagent.llm import SMALLEST_BASE_URL, resolve_llm_endpoint

ENV_KEY = "sk-env-DO-NOT-LOG-5678"
FLAG_KEY = "sk-flag-DO-NOT-LOG-9012"


def test_flag_url_wins_over_the_environment() -> None:
    env = {"ELECTRON_BASE_URL": "http://env.example/v1", "SMALLEST_API_KEY": ENV_KEY}
    endpoint = resolve_llm_endpoint("http://flag.example/v1/", None, env)
    assert endpoint.base_url == "http://flag.example/v1"
    assert endpoint.url_source == "--llm-url"


def test_electron_base_url_from_the_environment() -> None:
    endpoint = resolve_llm_endpoint(None, None, {"ELECTRON_BASE_URL": "http://env.example/v1"})
    assert endpoint.base_url == "http://env.example/v1"
    assert endpoint.kind == "openai-compatible"
    assert endpoint.api_key is None


def test_smallest_api_key_alone_selects_electron() -> None:
    endpoint = resolve_llm_endpoint(None, None, {"SMALLEST_API_KEY": ENV_KEY})
    assert endpoint.kind == "electron"
    assert endpoint.base_url == SMALLEST_BASE_URL == "https://api.smallest.ai/waves/v1"
    assert endpoint.api_key == ENV_KEY
    assert (
        endpoint.describe()
        == "LLM: Electron at https://api.smallest.ai/waves/v1 (SMALLEST_API_KEY)"
    )


def test_nothing_configured_means_the_local_simulator() -> None:
    endpoint = resolve_llm_endpoint(None, None, {})
    assert endpoint.kind == "simulator"
    assert endpoint.base_url is None
    assert "simulator" in endpoint.describe()


def test_api_key_flag_alone_does_not_switch_to_the_cloud() -> None:
    assert resolve_llm_endpoint(None, FLAG_KEY, {}).kind == "simulator"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765/waves/v1",
        "https://api.openai.com/v1",
        "https://smallest.ai.evil.example/v1",
        "https://evilsmallest.ai/v1",
        "http://api.smallest.ai/waves/v1",  # not https
    ],
)
@pytest.mark.parametrize("source", ["flag", "env"])
def test_smallest_api_key_is_never_sent_to_another_host(url: str, source: str) -> None:
    env = {"SMALLEST_API_KEY": ENV_KEY}
    if source == "env":
        env["ELECTRON_BASE_URL"] = url
    endpoint = resolve_llm_endpoint(url if source == "flag" else None, None, env)
    assert endpoint.base_url == url.rstrip("/")
    assert endpoint.api_key is None
    assert ENV_KEY not in endpoint.describe()
    assert "only sent to https://*.smallest.ai" in endpoint.describe()


@pytest.mark.parametrize(
    "url", ["https://api.smallest.ai/waves/v1", "https://eu.api.smallest.ai/waves/v1"]
)
def test_smallest_api_key_goes_to_smallest_hosts_given_as_url(url: str) -> None:
    endpoint = resolve_llm_endpoint(url, None, {"SMALLEST_API_KEY": ENV_KEY})
    assert endpoint.api_key == ENV_KEY
    assert endpoint.kind == "electron"


def test_api_key_flag_is_sent_to_the_url_given_whatever_its_host() -> None:
    endpoint = resolve_llm_endpoint(
        "http://127.0.0.1:9/v1", FLAG_KEY, {"SMALLEST_API_KEY": ENV_KEY}
    )
    assert endpoint.api_key == FLAG_KEY
    assert endpoint.key_source == "--api-key"


def test_api_key_flag_wins_over_the_environment_key_for_electron() -> None:
    endpoint = resolve_llm_endpoint(None, FLAG_KEY, {"SMALLEST_API_KEY": ENV_KEY})
    assert endpoint.kind == "electron"
    assert endpoint.api_key == FLAG_KEY


def test_empty_values_count_as_unset() -> None:
    env = {"ELECTRON_BASE_URL": " ", "SMALLEST_API_KEY": ""}
    assert resolve_llm_endpoint("", "", env).kind == "simulator"


def test_no_key_in_repr_or_description() -> None:
    endpoint = resolve_llm_endpoint("https://user:pw@api.smallest.ai/waves/v1", FLAG_KEY, {})
    for text in (repr(endpoint), str(endpoint), endpoint.describe()):
        assert FLAG_KEY not in text
    assert "pw" not in endpoint.describe()
