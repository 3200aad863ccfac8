"""Crash tests: the bot as a real subprocess, killed (SIGKILL / SIGTERM) and restarted while residents use it.

    uv run pytest -m crash                      # all of them, both channels (several minutes)
    uv run pytest -m "not crash"                # everything else
    SICHENG_CRASH_SEED=123 SICHENG_CRASH_ROUNDS=3 uv run pytest tests/crash/test_report_submit.py -k ptb

One fork server per session imports the bot once (see ``tests.support.crash``); ``SICHENG_CRASH_LAUNCH=exec``
starts every bot from a fresh interpreter instead (slower: seconds of imports per start). The seed of a test's
random kill moments is printed at set-up and in every failure; ``SICHENG_CRASH_SEED`` replays it (the kill moments,
not the machine's timing), ``SICHENG_CRASH_ROUNDS`` sets the number of kill rounds (default 10; some tests use
half), ``SICHENG_CRASH_QUIET`` the seconds of silence that mean "done", ``SICHENG_CRASH_BUDGET`` a test's limit.
A failure names the residents and rounds concerned, the kills (when, which signal, how the process ended), the
inbox/outbox rows by status and the tail of the bot's log (its full log is ``bot.log`` in the test's tmp_path).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.crash import LAUNCH, ForkServer, Launcher, crash_seed, exec_bot


@pytest.fixture(scope="session")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    server = ForkServer(tmp_path_factory.mktemp("crash-forkserver") / "forkserver.log")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def launcher(request: pytest.FixtureRequest) -> Launcher:
    if LAUNCH == "exec":
        return exec_bot
    server: ForkServer = request.getfixturevalue("fork_server")
    return server.spawn


@pytest.fixture
def seed() -> int:
    value = crash_seed()
    print(f"crash test seed: SICHENG_CRASH_SEED={value}")
    return value
