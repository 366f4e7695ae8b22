"""Plan limits across a fleet: worker processes share Electron's and Lightning's limits
through a real redis-server (leases with a TTL, FIFO, and local limits when Redis is down).

Orderings and counts are asserted, never tight timings."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.redis_rig import RedisServer, Worker, redis_server, start_all, wait_for
from voiceagent import fleet, fleet_redis
from voiceagent.llm import ElectronClient, RetryPolicy
from voiceagent.testing.electron import ElectronServer
from voiceagent.testing.lightning import LightningServer

KEY = "sk-fleet-test-DO-NOT-LOG-5678"
PASSWORD = "p4ss-DO-NOT-LOG-9af3"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server(tmp_path)


def fleet_env(server: RedisServer, ttl_s: float | None = None) -> dict[str, str]:
    env = {fleet.URL_ENV: server.url}
    if ttl_s is not None:
        env[fleet.TTL_ENV] = str(ttl_s)
    return env


def test_two_workers_share_electrons_plan_of_three(redis: RedisServer) -> None:
    with ElectronServer.running_in_thread(concurrency=3, ttft_ms=30, token_ms=4) as server:
        args = ["llm", server.base_url, "--requests", "25", "--plan", "3"]
        workers = [Worker(args, fleet_env(redis)) for _ in range(2)]
        try:
            start_all(workers)
            finals = [worker.finish() for worker in workers]
        finally:
            for worker in workers:
                worker.close()
        statuses = [r.status for r in server.requests]
        peak = server.max_in_flight
    assert finals == [{"event": "finished", "t": f["t"], "ok": 25, "failed": 0} for f in finals]
    assert statuses == [200] * 50  # nothing refused: no 429 ever reached the server
    assert peak == 3  # bounded fleet-wide, and the bound was used
    for worker in workers:  # each queued for the fleet's slots, and said so once a wait
        waits = [e for e in worker.seen("sent") if e["waited_s"] > 0]
        said = [line for line in worker.stderr.splitlines() if "waited" in line]
        assert waits and len(said) == len(waits), worker.stderr
        assert all("3 in flight allowed" in line and "across the fleet" in line for line in said)
    assert redis.members("holders") == [] and redis.members("queue") == []


def test_a_killed_workers_slot_comes_back_within_the_ttl(redis: RedisServer) -> None:
    ttl_s = 2.0
    with ElectronServer.running_in_thread(ttft_ms=5, token_ms=1) as server:
        # The first request (and its retries) stalls: its worker holds the slot until killed.
        server.faults.stall_next(5, seconds=60)
        args = ["llm", server.base_url, "--requests", "1", "--plan", "1"]
        doomed = Worker(args, fleet_env(redis, ttl_s))
        heir = Worker(args, fleet_env(redis, ttl_s))
        try:
            start_all([doomed])
            wait_for(lambda: bool(doomed.seen("sent")), "the first worker's request")
            (dead_lease,) = redis.members("holders")
            start_all([heir])
            wait_for(lambda: len(redis.members("waiting")) == 1, "the second worker queued")
            # Renewed, the first lease outlives the ttl while its process lives.
            time.sleep(ttl_s * 1.5)
            assert heir.seen("sent") == [] and redis.members("holders") == [dead_lease]
            doomed.kill()
            killed_at = time.monotonic()
            server.faults.clear()  # the heir's request is served, after a short pause
            server.faults.pause_after(1, seconds=2.0)  # (long enough to count its lease)
            wait_for(lambda: bool(heir.seen("sent")), "the slot to come back", ttl_s + 30)
            (sent,) = heir.seen("sent")
            holders = redis.members("holders")
            final = heir.finish()
        finally:
            doomed.close()
            heir.close()
    assert sent["t"] > killed_at  # the slot came back only after the kill
    assert sent["waited_s"] > ttl_s  # it waited behind the live lease, then its expiry
    assert len(holders) == 1 and holders != [dead_lease]  # one slot, now the heir's
    assert (final["ok"], final["failed"]) == (1, 0)
    assert redis.members("holders") == [] and redis.members("waiting") == []


def test_redis_stopped_mid_run_falls_back_to_local_limits(redis: RedisServer) -> None:
    with ElectronServer.running_in_thread(concurrency=3, ttft_ms=40, token_ms=4) as server:
        args = ["llm", server.base_url, "--requests", "30", "--plan", "3"]
        worker = Worker(args, fleet_env(redis))
        try:
            start_all([worker])
            wait_for(lambda: len(worker.seen("done")) >= 5, "requests through Redis")
            assert int(redis.client().get(seq_key(redis))) >= 5  # they went through Redis
            redis.stop()
            final = worker.finish(timeout_s=90)  # no hang on a dead Redis
        finally:
            worker.close()
        peak = server.max_in_flight
    assert (final["ok"], final["failed"]) == (30, 0)
    assert peak <= 3  # the process's own limiter still held
    warnings = [line for line in worker.stderr.splitlines() if "does not answer" in line]
    assert len(warnings) == 1, worker.stderr
    assert f"127.0.0.1:{redis.port}" in warnings[0] and "fall back" in warnings[0]


async def test_requests_return_to_redis_when_it_answers_again(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(fleet.URL_ENV, redis.url)
    monkeypatch.setattr(fleet_redis, "RETRY_S", 0.2)
    caplog.set_level(logging.WARNING, logger="voiceagent.fleet")
    async with ElectronServer(ttft_ms=5, token_ms=1) as server:
        client = ElectronClient(server.base_url, KEY, plan=2, retry=RetryPolicy(scale=0.01))
        await ask(client, 3)
        first_seq = int(redis.client().get(seq_key(redis)))
        await anyio.to_thread.run_sync(redis.stop)
        await ask(client, 3)  # through the local limiter
        await anyio.to_thread.run_sync(redis.start)  # empty: the same port, no data
        await anyio.sleep(0.3)
        await ask(client, 4)
    assert first_seq == 3
    assert int(redis.client().get(seq_key(redis))) == 4  # every request after the return
    messages = [r.getMessage() for r in caplog.records if r.name == "voiceagent.fleet"]
    assert len(messages) == 2, messages
    assert "does not answer" in messages[0] and "answers again" in messages[1]


async def test_a_redis_that_never_answers_costs_a_bounded_wait(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(fleet.URL_ENV, redis.url)
    caplog.set_level(logging.WARNING, logger="voiceagent.fleet")
    async with ElectronServer(ttft_ms=5, token_ms=1) as server:
        client = ElectronClient(server.base_url, KEY, plan=2, retry=RetryPolicy(scale=0.01))
        await ask(client, 1)
        redis.pause()  # TCP still accepted, nothing answered: only timeouts can tell
        try:
            with anyio.fail_after(30):  # generous: each Redis call is bounded by 1 s
                await ask(client, 3)
        finally:
            redis.resume()
    assert [r.status for r in server.requests] == [200] * 4
    (message,) = [r.getMessage() for r in caplog.records if r.name == "voiceagent.fleet"]
    assert "does not answer (TimeoutError" in message


def test_waiters_are_served_first_come_first_served(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each waiter on an event loop (a thread) of its own, with its own Redis connection:
    # nothing local wakes them in order, each polls Redis, and the queue alone decides.
    monkeypatch.setenv(fleet.URL_ENV, redis.url)
    monkeypatch.setenv(fleet.TTL_ENV, "1.5")  # renewed every 0.5 s: the holder hears of the queue
    order: list[str] = []
    contended: list[bool] = []
    release_first = threading.Event()

    def take_turn(name: str, hold: threading.Event | None) -> None:
        async def turn() -> None:
            limiter = fleet.fleet_limiter("llm", "http://fifo.test/v1", "fingerprint", 1)
            assert limiter is not None
            lease = await limiter.acquire()
            assert lease is not None and lease.waited == (hold is None)
            order.append(name)
            if hold is not None:
                await anyio.to_thread.run_sync(hold.wait)
                with anyio.move_on_after(20):
                    while not lease.contended:  # noqa: ASYNC110 (renewals bring the news)
                        await anyio.sleep(0.05)
                contended.append(lease.contended)
            await lease.release()

        anyio.run(turn)

    threads = [threading.Thread(target=take_turn, args=("first", release_first))]
    threads[0].start()
    wait_for(lambda: order == ["first"], "the first lease")
    for joined, name in enumerate("abcde", start=1):
        threads.append(threading.Thread(target=take_turn, args=(name, None)))
        threads[-1].start()

        def queued(n: int = joined) -> bool:
            return len(redis.members("waiting")) == n

        wait_for(queued, f"waiter {name} queued")
    release_first.set()
    for thread in threads:
        thread.join(timeout=60)
    assert order == ["first", *"abcde"]
    assert contended == [True]  # the holder knew others waited (a drain would give way)
    assert redis.members("holders") == [] and redis.members("queue") == []


def seq_key(redis: RedisServer) -> str:
    (key,) = redis.client().keys("voiceagent:plan:*:seq")
    return str(key.decode())


async def ask(client: ElectronClient, n: int) -> None:
    with anyio.fail_after(60):
        for i in range(n):
            async with client.stream([{"role": "user", "content": f"q {i}"}]) as stream:
                async for _ in stream:
                    pass


def test_two_workers_share_lightnings_account_limit(redis: RedisServer) -> None:
    with LightningServer.running_in_thread(voice="synthetic", account_limit=2, pace=0.3) as tts:
        args = ["tts", tts.ws_url, "--sessions", "4", "--segments", "2", "--slots", "2"]
        workers = [Worker(args, fleet_env(redis)) for _ in range(2)]
        try:
            start_all(workers)
            finals = [worker.finish() for worker in workers]
        finally:
            for worker in workers:
                worker.close()
        statuses = [r.status for r in tts.requests]
        peak = tts.max_active
    assert [(f["ok"], f["failed"]) for f in finals] == [(8, 0), (8, 0)]
    assert statuses == ["complete"] * 16  # nothing refused by the account's limit
    assert peak == 2
    assert redis.members("holders") == [] and redis.members("queue") == []


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server(tmp_path, password=PASSWORD)


async def test_the_redis_password_never_reaches_logs_or_errors(
    locked_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = locked_redis.url.replace(PASSWORD, PASSWORD[::-1])
    async with ElectronServer(ttft_ms=5, token_ms=1) as server:
        client = ElectronClient(server.base_url, KEY, plan=2, retry=RetryPolicy(scale=0.01))
        monkeypatch.setenv(fleet.URL_ENV, locked_redis.url)
        await ask(client, 2)  # through Redis, with the password
        assert int(locked_redis.client().get(seq_key(locked_redis))) == 2
        await anyio.to_thread.run_sync(locked_redis.stop)
        await ask(client, 1)  # Redis gone: local limits, a warning
        monkeypatch.setenv(fleet.URL_ENV, wrong)
        await anyio.to_thread.run_sync(locked_redis.start)
        await ask(client, 1)  # the wrong password: refused, a warning
    with pytest.raises(fleet.FleetError) as bad_port:
        monkeypatch.setenv(fleet.URL_ENV, f"redis://:{PASSWORD}@127.0.0.1:notaport/0")
        async with ElectronServer() as other:
            await ask(ElectronClient(other.base_url, KEY, plan=1), 1)
    fleet_lines = [r for r in caplog.records if r.name == "voiceagent.fleet"]
    warnings = [r.getMessage() for r in fleet_lines if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings  # Redis stopped, then the other URL refused
    assert "***@127.0.0.1" in warnings[0] and "***@127.0.0.1" in warnings[1]
    assert "***@127.0.0.1" in str(bad_port.value)
    everything = caplog.text + str(bad_port.value) + repr(bad_port.value)
    for secret in (PASSWORD, PASSWORD[::-1], KEY):
        assert secret not in everything


async def test_without_the_redis_package_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(fleet.URL_ENV, f"redis://:{PASSWORD}@127.0.0.1:1/0")
    for name in [m for m in sys.modules if m == "redis" or m.startswith("redis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)  # what an install without it imports
    async with ElectronServer() as server:
        client = ElectronClient(server.base_url, KEY, plan=1)
        with pytest.raises(fleet.FleetError, match=r"pip install 'voiceagent\[fleet\]'") as err:
            await ask(client, 1)
    assert PASSWORD not in str(err.value) and fleet.URL_ENV in str(err.value)
    assert server.requests == []  # refused before anything was sent
