"""What the benchmarks share: the Telegram emulator in a child process (so the bot under test has the CPU of its own
process and the emulator's work is not counted as the bot's), driven through a pipe, and a scratch PostgreSQL
database per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import multiprocessing
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.sandbox.emulator import Emulator
from bot.sandbox.server import run_emulator

# Builds, in the child, the emulator and the object whose methods the parent calls by name. A module-level function
# (or a functools.partial of one): it is pickled to the spawned child.
DriverFactory = Callable[[], tuple[Emulator, Any]]


class RemoteEmulator:
    """The driver runs in a child process; calls go through a pipe."""

    def __init__(self, conn: Connection, base_url: str) -> None:
        self.conn, self.base_url = conn, base_url

    def _roundtrip(self, message: tuple[str, tuple[Any, ...]]) -> Any:
        self.conn.send(message)
        status, result = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"emulator process: {result}")
        return result

    async def call(self, name: str, *args: Any) -> Any:
        # A worker thread waits on the pipe, so the caller's event loop keeps running during a burst.
        return await asyncio.to_thread(self._roundtrip, (name, args))


def _child(conn: Connection, make: DriverFactory) -> None:
    """Child process: serve the emulator over HTTP and run the driver's commands from the pipe."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(conn, make))


async def _serve(conn: Connection, make: DriverFactory) -> None:
    emulator, driver = make()
    async with run_emulator(emulator=emulator) as (_, base_url):
        conn.send(base_url)
        while (message := await asyncio.to_thread(conn.recv)) is not None:
            name, args = message
            try:
                result = getattr(driver, name)(*args)
                conn.send(("ok", await result if inspect.isawaitable(result) else result))
            except Exception as error:
                conn.send(("error", repr(error)))


@contextlib.asynccontextmanager
async def emulator_process(make: DriverFactory) -> AsyncIterator[RemoteEmulator]:
    """An emulator serving HTTP in a child process for as long as the block runs."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_child, args=(child, make), daemon=True)
    process.start()
    try:
        base_url = await asyncio.to_thread(parent.recv)
        yield RemoteEmulator(parent, base_url)
    finally:
        with contextlib.suppress(OSError):
            parent.send(None)
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.terminate()


async def pg_database(admin_url: str, name: str, *, create: bool) -> str:
    """Create (or drop, closing its connections) a scratch PostgreSQL database; the URL that reaches it."""
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            sql = f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            await conn.execute(text(sql))
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)
