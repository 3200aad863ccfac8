"""Several workers in one test process: an intake and N workers, each with its own App (engine, caches, locks) on
one PostgreSQL database and one Redis, against the sandbox emulator over HTTP — the pieces `sicheng intake` and
`sicheng worker` run, without the subprocesses (the crash test runs those)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bot.app import App, build_app
from bot.channels.webhook import WebhookIntake, derive_secret, start_webhook
from bot.config import DatabaseSettings, FilesSettings, RedisSettings, Settings, TelegramSettings
from bot.runner import Timing, make_channel
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.demo import seed_database, seed_emulator
from bot.sandbox.emulator import Emulator
from bot.sandbox.server import run_emulator
from bot.workers import Take, run_intake, run_worker
from tests.support.crash import Person, add_residents, resident_ids
from tests.support.pg import truncate_all

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Running:
    app: App
    channel: Any
    task: asyncio.Task[None]
    redis: Redis

    async def stop(self) -> None:
        self.channel.stopping.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self.task, 20)
        await self.app.aclose()
        await self.redis.aclose()


@dataclass
class Cluster:
    url: str
    prefix: str
    tmp: Path
    emulator: Emulator
    base_url: str
    app: App  # the test's own view of the database
    redis: Redis
    residents: list[int]
    workers: list[Running] = field(default_factory=list)
    intake: Running | None = None
    redis_url: str = REDIS_URL  # what the intake and workers use (a test may put a proxy in between)
    webhook: bool = False  # the intake takes updates by webhook (else long polling)

    def settings(self) -> Settings:
        return Settings(
            database=DatabaseSettings(url=self.url),
            redis=RedisSettings(url=self.redis_url, prefix=self.prefix),
            files=FilesSettings(root=self.tmp / "media"),
            telegram=TelegramSettings(chat_per_second=50.0),
        )

    async def _start(self, kind: str, channel_kind: str = "aiogram") -> Running:
        app = await build_app(self.settings())
        redis: Redis = Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        channel = make_channel(app, channel_kind, DEFAULT_TOKEN, self.base_url)
        timing = Timing(tick_seconds=1.0, poll_seconds=2, drain_seconds=5.0)
        if kind == "intake":
            serve = None
            if self.webhook:  # the emulator posts to the intake's own address, with the derived secret

                async def serve(take: Take, stop: asyncio.Event) -> None:
                    hook = WebhookIntake(url=None, secret=derive_secret(DEFAULT_TOKEN), port=0)
                    server = await start_webhook(channel, hook, take)
                    await server.serve(stop)

            work = run_intake(app, channel, redis, DEFAULT_TOKEN, serve=serve, prefix=self.prefix, timing=timing,
                              handle_signals=False)  # fmt: skip
        else:
            work = run_worker(app, channel, redis, DEFAULT_TOKEN, prefix=self.prefix, timing=timing,
                              handle_signals=False)  # fmt: skip
        return Running(app, channel, asyncio.create_task(work), redis)

    async def start_worker(self, channel: str = "aiogram") -> Running:
        running = await self._start("worker", channel)
        self.workers.append(running)
        return running

    async def start_intake(self) -> Running:
        self.intake = await self._start("intake")
        return self.intake

    def person(self, user_id: int) -> Person:
        return Person(self.emulator, user_id)


@contextlib.asynccontextmanager
async def cluster(
    pg_url: str,
    tmp: Path,
    *,
    residents: int = 20,
    workers: int = 2,
    redis_url: str = REDIS_URL,
    webhook: bool = False,
) -> AsyncIterator[Cluster]:
    await truncate_all(pg_url)
    prefix = f"sicheng-test-{uuid.uuid4().hex[:8]}"
    redis: Redis = Redis.from_url(REDIS_URL)
    (tmp / "media").mkdir(exist_ok=True)
    base = Settings(database=DatabaseSettings(url=pg_url), files=FilesSettings(root=tmp / "media"))
    app = await build_app(base)
    try:
        await seed_database(app)
        people = resident_ids(residents)
        await add_residents(app, people, 5)
        emulator = Emulator()
        seed_emulator(emulator)
        for number, telegram_id in enumerate(people, 1):
            emulator.create_user(f"居民{number:02d}", user_id=telegram_id)
        async with run_emulator("127.0.0.1", 0, emulator=emulator) as (_, base_url):
            found = Cluster(
                pg_url, prefix, tmp, emulator, base_url, app, redis, people, redis_url=redis_url, webhook=webhook
            )
            try:
                await found.start_intake()
                for _ in range(workers):
                    await found.start_worker()
                yield found
            finally:
                for running in [*found.workers, *([found.intake] if found.intake else [])]:
                    await running.stop()
    finally:
        await app.aclose()
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


class Cuttable:
    """A TCP proxy to Redis that a test can cut (every connection dropped, new ones refused) and restore."""

    def __init__(self, port: int = 6379) -> None:
        self.target = port
        self.server: asyncio.Server | None = None
        self.port = 0
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._pipes):
            task.cancel()
        await self.server.wait_closed()
        self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers.update({writer, upstream_writer})

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        for task in (
            asyncio.create_task(pipe(reader, upstream_writer)),
            asyncio.create_task(pipe(upstream_reader, writer)),
        ):
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)
