"""Crash tests: the bot as a real subprocess, killed (SIGKILL / SIGTERM) and restarted while residents use it.

One fork server per session imports the bot once (see ``tests.support.crash``); ``SICHENG_CRASH_LAUNCH=exec``
starts every bot from a fresh interpreter instead. The seed of a test's random kill moments is printed at set-up
and in every failure; ``SICHENG_CRASH_SEED`` replays it, ``SICHENG_CRASH_ROUNDS`` sets the number of kill rounds.
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
