"""``sicheng`` command line: run, sandbox, db, content, admin, community."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from bot import logs
from bot.config import Settings

T = TypeVar("T")

app = typer.Typer(help="Sicheng (四城) — community bot for 四城同创.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
content_app = typer.Typer(help="Content: templates, tracks, question banks.", no_args_is_help=True)
admin_app = typer.Typer(help="Roles: grant and revoke.", no_args_is_help=True)
community_app = typer.Typer(help="Communities and buildings.", no_args_is_help=True)
stats_app = typer.Typer(help="Figures: awareness, reports, volunteers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(content_app, name="content")
app.add_typer(admin_app, name="admin")
app.add_typer(community_app, name="community")
rewards_app = typer.Typer(help="Rewards catalogue (积分兑换).", no_args_is_help=True)
points_app = typer.Typer(help="Points ledger (文明积分).", no_args_is_help=True)
app.add_typer(rewards_app, name="rewards")
app.add_typer(points_app, name="points")
app.add_typer(stats_app, name="stats")
export_app = typer.Typer(
    help="Exports as xlsx or csv: the 问题台账 (issue ledger), the 志愿服务时长台账 (volunteer hours), the 积分台账 "
    "(points ledger), the 兑换记录 (redemptions).",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")
volunteers_app = typer.Typer(
    help="Volunteers (志愿服务): certificates, the community's settings.", no_args_is_help=True
)
app.add_typer(volunteers_app, name="volunteers")
notices_app = typer.Typer(help="Campaign notices (通知公告): send, list, cancel, watch.", no_args_is_help=True)
outbox_app = typer.Typer(help="The outbox: list, retry failed messages, cancel waiting ones.", no_args_is_help=True)
app.add_typer(notices_app, name="notices")
app.add_typer(outbox_app, name="outbox")


def _settings() -> Settings:
    settings = Settings()
    token = settings.telegram.token
    logs.configure(settings.log_level, [token.get_secret_value()] if token else [], fmt=settings.log_format)
    return settings


def _with_app(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(app)`` against the configured database (migrating SQLite as ``run`` would)."""
    from bot.app import DatabaseNotMigrated, build_app, prepare_database

    async def main() -> T:
        await prepare_database(settings.database.url)
        built = await build_app(settings)
        try:
            return await work(built)
        finally:
            await built.aclose()

    try:
        return asyncio.run(main())
    except DatabaseNotMigrated as error:
        _fail(str(error))


def _fail(message: str) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def run(
    channel: str = typer.Option(None, help="aiogram (default) or ptb."),
    api_url: str = typer.Option(None, "--api-url", help="Bot API server (default: Telegram's)."),
    webhook: bool = typer.Option(False, "--webhook", help="Take updates by webhook instead of long polling."),
    webhook_url: str = typer.Option(None, "--webhook-url", help="Public HTTPS URL Telegram posts to."),
    webhook_host: str = typer.Option(None, "--webhook-host", help="Address to listen on (default 127.0.0.1)."),
    webhook_port: int = typer.Option(None, "--webhook-port", help="Port to listen on (default 8081)."),
    webhook_path: str = typer.Option(None, "--webhook-path", help="Path to listen on (default /telegram/webhook)."),
    delete_webhook: bool = typer.Option(
        False, "--delete-webhook", help="Long polling after a webhook: delete the webhook first (updates are kept)."
    ),
) -> None:
    """Run the bot with long polling, or --webhook (needs SICHENG_TELEGRAM__TOKEN)."""
    settings = _settings()
    token = settings.telegram.token
    if token is None:
        _fail("No bot token: set SICHENG_TELEGRAM__TOKEN (see .env.example), or try `sicheng sandbox`.")
        return
    from bot.channels.webhook import WebhookIntake
    from bot.runner import make_channel, run_bot

    kind = channel or settings.telegram.channel
    url = api_url or settings.telegram.api_url
    intake = None
    if webhook:
        if delete_webhook:
            _fail("--delete-webhook is for long polling; --webhook sets the webhook itself.")
        try:
            intake = WebhookIntake.from_settings(
                settings.webhook,
                token.get_secret_value(),
                url=webhook_url,
                host=webhook_host,
                port=webhook_port,
                path=webhook_path,
            )
        except ValueError as error:
            _fail(str(error))
        if not intake.url:
            _fail(
                "No public webhook URL: set SICHENG_WEBHOOK__URL (the HTTPS address of your proxy that forwards to "
                "this process) or pass --webhook-url."
            )

    async def work(built: Any) -> None:
        from bot.dashboard.app import serve_if_set

        bot_channel = make_channel(built, kind, token.get_secret_value(), url)
        if delete_webhook:
            await bot_channel.delete_webhook()
        async with serve_if_set(built):  # the organisers' dashboard too, when SICHENG_DASHBOARD__PORT is set
            await run_bot(built, bot_channel, webhook=intake)

    _with_app(settings, work)


@app.command()
def dashboard(
    host: str = typer.Option(None, help="Address to listen on (default: SICHENG_DASHBOARD__HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default: SICHENG_DASHBOARD__PORT, else 8082)."),
) -> None:
    """Serve the organisers' web dashboard on its own (PostgreSQL; the bot runs in other processes). Put it behind
    the TLS proxy at SICHENG_DASHBOARD__URL, the address the bot's /dashboard links start with."""
    import signal

    settings = _settings()
    if settings.database.is_sqlite:
        _fail(
            "An SQLite database is served by one process: set SICHENG_DASHBOARD__PORT and `sicheng run` serves the "
            "dashboard beside the bot (or try it in `sicheng sandbox`)."
        )
    if not settings.dashboard.url:
        typer.secho(
            "Note: SICHENG_DASHBOARD__URL is not set, so the bot cannot give login links (set it for the bot too).",
            fg=typer.colors.YELLOW,
            err=True,
        )
    where_host = host or settings.dashboard.host
    where_port = port if port is not None else settings.dashboard.port or 8082

    async def work(built: Any) -> None:
        from bot.dashboard.app import serve

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with serve(built, where_host, where_port) as address:
            typer.secho(f"dashboard: {address}/dashboard/  (Ctrl+C to stop)", fg=typer.colors.GREEN)
            await stop.wait()

    _with_app(settings, work)


def _multi(settings: Settings) -> tuple[str, str]:
    """(token, Redis URL) for the multi-worker commands, or a clear error."""
    from bot.workers import MultiWorkerUnavailable, check_settings

    token = settings.telegram.token
    if token is None:
        _fail("No bot token: set SICHENG_TELEGRAM__TOKEN (see .env.example).")
    try:
        return token.get_secret_value(), check_settings(settings)
    except MultiWorkerUnavailable as error:
        _fail(str(error))


@app.command()
def worker(
    channel: str = typer.Option(None, help="aiogram (default) or ptb."),
    api_url: str = typer.Option(None, "--api-url", help="Bot API server (default: Telegram's)."),
    concurrency: int = typer.Option(16, min=1, max=256, help="Updates of different people handled at once."),
) -> None:
    """One of several worker processes (PostgreSQL + Redis): handles the updates `sicheng intake` takes in."""
    settings = _settings()
    token, redis_url = _multi(settings)
    from bot.runner import make_channel
    from bot.workers import run_worker

    kind = channel or settings.telegram.channel
    url = api_url or settings.telegram.api_url

    async def work(built: Any, redis: Any) -> None:
        bot_channel = make_channel(built, kind, token, url)
        await run_worker(built, bot_channel, redis, token, concurrency=concurrency, prefix=settings.redis.prefix)

    _with_redis(settings, redis_url, work)


@app.command()
def intake(
    polling: bool = typer.Option(False, "--polling", help="Long polling instead of the webhook (one intake only)."),
    channel: str = typer.Option(None, help="aiogram (default) or ptb."),
    api_url: str = typer.Option(None, "--api-url", help="Bot API server (default: Telegram's)."),
    webhook_url: str = typer.Option(None, "--webhook-url", help="Public HTTPS URL Telegram posts to."),
    webhook_host: str = typer.Option(None, "--webhook-host", help="Address to listen on (default 127.0.0.1)."),
    webhook_port: int = typer.Option(None, "--webhook-port", help="Port to listen on (default 8081)."),
    webhook_path: str = typer.Option(None, "--webhook-path", help="Path to listen on (default /telegram/webhook)."),
) -> None:
    """Take updates in for several workers (PostgreSQL + Redis): store each, then announce it to `sicheng worker`.

    By webhook (several intakes may run behind the proxy), or with --polling (exactly one intake)."""
    settings = _settings()
    token, redis_url = _multi(settings)
    from functools import partial

    from bot.channels.webhook import WebhookIntake, start_webhook
    from bot.runner import make_channel
    from bot.workers import Take, run_intake
    from storage.db import ping

    kind = channel or settings.telegram.channel
    url = api_url or settings.telegram.api_url
    hook: WebhookIntake | None = None
    if not polling:
        try:
            hook = WebhookIntake.from_settings(
                settings.webhook, token, url=webhook_url, host=webhook_host, port=webhook_port, path=webhook_path
            )
        except ValueError as error:
            _fail(str(error))
        if not hook.url:
            _fail(
                "No public webhook URL: set SICHENG_WEBHOOK__URL (the HTTPS address of your proxy that forwards to "
                "this process) or pass --webhook-url; or take updates with --polling (one intake only)."
            )

    async def work(built: Any, redis: Any) -> None:
        bot_channel = make_channel(built, kind, token, url)

        async def serve(take: Take, stop: asyncio.Event) -> None:
            assert hook is not None
            server = await start_webhook(bot_channel, hook, take, partial(ping, built.engine))
            await server.serve(stop)

        await run_intake(built, bot_channel, redis, token, serve=serve if hook else None, prefix=settings.redis.prefix)

    _with_redis(settings, redis_url, work)


def _with_redis(settings: Settings, redis_url: str, work: Callable[[Any, Any], Awaitable[None]]) -> None:
    """Run ``work(app, redis)`` for the multi-worker commands: a clear error when Redis cannot be reached."""
    from bot.workers import MultiWorkerUnavailable, connect

    async def with_redis(built: Any) -> None:
        redis = await connect(redis_url)
        try:
            await work(built, redis)
        finally:
            await redis.aclose()

    try:
        _with_app(settings, with_redis)
    except MultiWorkerUnavailable as error:
        _fail(str(error))


@app.command()
def sandbox(
    host: str = typer.Option(None, help="Address of the page and the emulator (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default 8080)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start from an empty sandbox database and empty chat histories."),
    channel: str = typer.Option("aiogram", help="aiogram (default) or ptb."),
) -> None:
    """Try Sicheng with no token and no internet: a local Telegram emulator and a web chat page."""
    from bot.sandbox.app import start_sandbox

    settings = _settings()
    where_host, where_port = host or settings.sandbox.host, port or settings.sandbox.port

    async def main() -> None:
        async with start_sandbox(settings, host=where_host, port=where_port, channel=channel, fresh=fresh) as box:
            typer.secho(f"Sicheng sandbox: open {box.url}  (Ctrl+C to stop)", fg=typer.colors.GREEN)
            typer.echo(f"Organisers' dashboard: {box.url}/dashboard/ (as 刘主任 or 老张, send /dashboard for a link)")
            if not _loopback(where_host):
                typer.secho(
                    f"Warning: listening on {where_host}: anyone who can reach this machine can open the page and "
                    "act as any persona, including the organiser. Use 127.0.0.1 unless that is what you want.",
                    fg=typer.colors.YELLOW,
                    err=True,
                )
            await asyncio.Event().wait()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        _fail(
            f"Port {where_port} on {where_host} is taken (another sandbox?). "
            f"Stop it, or choose another port: sicheng sandbox --port {where_port + 1}"
        )


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head"), url: str = typer.Option(None, help="Database URL.")) -> None:
    """Create or migrate the database to the newest schema."""
    from storage.db import upgrade

    target = url or _settings().database.url
    upgrade(target, revision)
    typer.echo(f"database at {revision}: {_safe_url(target)}")


@db_app.command("current")
def db_current(url: str = typer.Option(None, help="Database URL.")) -> None:
    """Show the schema revision of the database."""
    from storage.db import current_revision, head_revision, make_engine

    async def main() -> str | None:
        engine = make_engine(url or _settings().database.url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    current = asyncio.run(main())
    typer.echo(f"current: {current or 'empty'}; newest: {head_revision()}")


@content_app.command("check")
def content_check(
    root: Path = typer.Option(None, help="Content folder (default: the bundled content)."),
) -> None:
    """Validate every content file; fails when a template or label is missing in a locale, a track's questions can
    be passed by guessing (see `content stats`) or a text uses a wording the glossary rules out."""
    import content
    from bot.content_check import check_all

    errors = check_all(_settings(), root or content.ROOT)
    for error in errors:
        typer.secho(f"✗ {error}", fg=typer.colors.RED, err=True)
    if errors:
        raise typer.Exit(1)
    typer.echo("content OK")


@content_app.command("stats")
def content_stats(
    root: Path = typer.Option(None, help="Content folder (default: the bundled content)."),
) -> None:
    """How far each track's questions can be passed by guessing: "pick the longest option", answer positions,
    answer length against the distractors, hint words only the answer has, multi-select mix — per language, against
    their goals (`sicheng content check` fails on a goal missed)."""
    import content
    from content.quiz_bank import load_bank
    from content.quiz_fairness import (
        ALL_BUT_ONE_MAX,
        HINT_MAX,
        LENGTH_RATIO_MAX,
        LONGEST_MAX,
        POSITION_MAX,
        POSITION_MIN,
        STRICTLY_LONGEST_MAX,
        bank_fairness,
    )

    bank = load_bank(root or content.ROOT)
    rows = bank_fairness({track: bank.questions(track) for track in bank.tracks})
    typer.echo(
        f"goals: longest ≤ {LONGEST_MAX:.0%}, strictly longest ≤ {STRICTLY_LONGEST_MAX:.0%}, "
        f"length ≤ {LENGTH_RATIO_MAX}×, each position {POSITION_MIN:.0%}–{POSITION_MAX:.0%}, hints ≤ {HINT_MAX:.0%}, "
        f"multi-select with all options but one correct ≤ {ALL_BUT_ONE_MAX:.0%}"
    )
    typer.echo(f"{'track':<12} {'lang':<8} {'qs':>4} {'single':>6} {'longest':>8} {'strict':>7} {'length':>7}  "
               f"{'positions 1/2/3/4':<22} {'hints':>5}  multi-select")  # fmt: skip
    missed = 0
    for row in rows:
        positions = "/".join(f"{share:.0%}" for share in row.positions)
        mix = ", ".join(f"{k}: {v}" for k, v in row.multi_mix.items()) or "—"
        mark = "✓" if not row.problems() else "✗"
        missed += mark == "✗"
        typer.echo(
            f"{row.track:<12} {row.locale:<8} {row.questions:>4} {row.single:>6} {row.longest_score:>8.0%} "
            f"{row.strictly_longest:>7.0%} {row.length_ratio:>6.2f}×  {positions:<22} {row.hints:>5.0%}  {mix}  {mark}"
        )
    if missed:
        typer.echo(f"{missed} of {len(rows)} track-languages miss a goal (`sicheng content check` fails on each)")
    else:
        typer.echo(f"all {len(rows)} track-languages meet every goal")


@content_app.command("import")
def content_import(
    path: Path, root: Path = typer.Option(None, help="Content folder (default: the bundled content).")
) -> None:
    """Validate an organiser's question file and append it to its track's bank."""
    import content
    from content.quiz_bank import BankError, import_questions

    try:
        added = import_questions(path, root or content.ROOT)
    except BankError as error:
        for line in error.errors:
            typer.secho(f"✗ {line}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"imported {added} question(s) from {path.name}")


@stats_app.command("awareness")
def stats_awareness(community: str = typer.Option(..., help="Community code.")) -> None:
    """Awareness per track (knows / registered), participation and average score, per building."""
    from bot.domain.errors import NotFound
    from handlers.quiz_stats import awareness_table

    async def work(built: Any) -> Any:
        return await built.services.quiz.stats.for_community(community)

    try:
        report = _with_app(_settings(), work)
    except NotFound:
        _fail(f"no community with code {community!r}")
        return
    typer.echo(f"{report.community.name} ({report.community.code}), last {report.days} days")
    for line in awareness_table(report):
        typer.echo(line)


@stats_app.command("reports")
def stats_reports(
    community: str = typer.Option(..., help="Community code."),
    since: str = typer.Option(None, "--from", help="First day (YYYY-MM-DD, local time)."),
    until: str = typer.Option(None, "--to", help="Last day, included (YYYY-MM-DD)."),
) -> None:
    """Reports by status and category, median and p90 handling times, on-time and reopened shares."""
    from bot.export import figure_lines, period

    async def work(built: Any) -> list[str]:
        start, end = period(since, until, _tz(built))
        found = await built.services.report_stats.figures(community, start, end)
        names = {c.key: c.name("zh_Hans") for c in built.services.reports.policy.categories}
        return figure_lines(community, found, names)

    for line in _reports_cli(work):
        typer.echo(line)


@export_app.command("reports")
def export_reports(
    community: str = typer.Option(..., help="Community code."),
    fmt: str = typer.Option("xlsx", "--format", help="xlsx or csv."),
    since: str = typer.Option(None, "--from", help="First day (YYYY-MM-DD, local time)."),
    until: str = typer.Option(None, "--to", help="Last day, included (YYYY-MM-DD)."),
    out: Path = typer.Option(None, help="Output file (default: reports-<community>.<format>)."),
) -> None:
    """The 问题台账: ticket, category, place, masked reporter, assignee, deadline, dates, result, photos."""
    import content
    from bot.export import period, table, write_csv, write_xlsx
    from content.tracks import load_tracks

    if fmt not in ("xlsx", "csv"):
        _fail("--format must be xlsx or csv")
    target = out or Path(f"reports-{community}.{fmt}")

    async def work(built: Any) -> Path:
        start, end = period(since, until, _tz(built))
        rows = await built.services.report_stats.ledger(community, start, end)
        tracks = {t.key: t.zh_Hans.name for t in load_tracks(content.ROOT / "tracks.yaml")}
        lines = table(rows, lambda key: built.renderer.label("zh_Hans", key), tracks)
        if fmt == "csv":
            return write_csv(target, lines)
        return write_xlsx(target, lines, built.renderer.label("zh_Hans", "reports.export.sheet"))

    typer.echo(f"written {_reports_cli(work)}")


def _tz(built: Any) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(built.settings.locale.timezone)


def _reports_cli(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run a report command; a wrong community code or date is a clear message, not a traceback."""
    from bot.domain.errors import NotFound

    try:
        return _with_app(_settings(), work)
    except NotFound as error:
        _fail(f"no community with code {error.context.get('code')!r}")
    except ValueError as error:
        _fail(f"bad date: {error}")
    raise AssertionError("unreachable")


@admin_app.command("grant")
def admin_grant(
    telegram_id: int, role: str, community: str = typer.Option(None, help="Community code (default: all).")
) -> None:
    """Give a role: resident, volunteer, grid_worker, organiser, service_point."""
    _change_role(telegram_id, role, community, grant=True)


@admin_app.command("revoke")
def admin_revoke(telegram_id: int, role: str, community: str = typer.Option(None, help="Community code.")) -> None:
    """Take a role away."""
    _change_role(telegram_id, role, community, grant=False)


def _change_role(telegram_id: int, role_name: str, community: str | None, *, grant: bool) -> None:
    from bot.domain.errors import NotFound
    from bot.domain.roles import parse_role

    try:
        role = parse_role(role_name)
    except ValueError as error:
        _fail(str(error))
        return

    async def work(built: Any) -> bool:
        change = built.services.access.grant if grant else built.services.access.revoke
        return bool(await change(telegram_id, role, community, actor=None))

    try:
        changed = _with_app(_settings(), work)
    except NotFound:
        _fail(f"no community with code {community!r}")
        return
    verb = "granted" if grant else "revoked"
    where = f" in {community}" if community else " everywhere"
    typer.echo(f"{role.value} {verb} for {telegram_id}{where}" if changed else "nothing to change")


@community_app.command("add")
def community_add(
    code: str,
    name: str,
    building: list[str] = typer.Option([], help="Building as code:name, repeatable (e.g. 3:3号楼)."),
) -> None:
    """Create a community (code is used in QR deep links: c<code>_b<building>)."""
    from bot.domain.errors import InvalidInput

    pairs = [tuple(b.split(":", 1)) if ":" in b else (b, b) for b in building]

    async def work(built: Any) -> Any:
        return await built.services.communities.add(code, name, pairs)

    try:
        community = _with_app(_settings(), work)
    except InvalidInput as error:
        _fail(f"cannot add community: {error.context}")
        return
    typer.echo(f"community {community.code} ({community.name}) with {len(community.buildings)} buildings")


@community_app.command("building")
def community_building(community: str, code: str, name: str) -> None:
    """Add a building to a community."""

    async def work(built: Any) -> Any:
        return await built.services.communities.add_building(community, code, name)

    building = _with_app(_settings(), work)
    typer.echo(f"building {building.code} ({building.name}) added to {community}")


@community_app.command("import")
def community_import(path: Path) -> None:
    """Create communities and buildings from a YAML file (see content/demo/community.yaml)."""
    from bot.seed import import_communities

    async def work(built: Any) -> list[str]:
        return await import_communities(built.services, path)

    for line in _with_app(_settings(), work):
        typer.echo(line)


@community_app.command("list")
def community_list() -> None:
    """List communities, buildings and the deep-link payload of each (for QR posters)."""
    from bot.domain.residents import make_deep_link

    async def work(built: Any) -> Any:
        return await built.services.communities.list()

    for community in _with_app(_settings(), work):
        typer.echo(f"{community.code}\t{community.name}\tstart={make_deep_link(community.code)}")
        for b in community.buildings:
            typer.echo(f"  {b.code}\t{b.name}\tstart={make_deep_link(community.code, b.code)}")


@rewards_app.command("import")
def rewards_import(path: Path, community: str = typer.Option(..., help="Community code.")) -> None:
    """Add or update a community's rewards catalogue from YAML (see content/rewards/demo.yaml)."""

    async def work(built: Any) -> Any:
        return await built.services.rewards.import_rewards(path, community)

    summary = _with_app(_settings(), work)
    typer.echo(f"rewards of {community}: {summary.added} added, {summary.updated} updated")


@points_app.command("check")
def points_check() -> None:
    """Verify every balance equals the sum of its ledger entries (exit 1 on any mismatch)."""

    async def work(built: Any) -> list[tuple[int, int, int, int]]:
        return list(await built.services.points.check())

    mismatches = _with_app(_settings(), work)
    for row in mismatches:
        typer.secho(f"✗ account {row[0]} (resident {row[1]}): balance {row[2]} ≠ entries {row[3]}", fg="red", err=True)
    if mismatches:
        raise typer.Exit(1)
    typer.echo("ledger OK: every balance equals the sum of its entries")


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Messages in motion: updates waiting or set aside in the inbox, messages waiting, sent, skipped or failed."""

    async def work(built: Any) -> dict[str, Any]:
        from datetime import UTC, datetime

        async with built.uow() as uow:
            inbox = await uow.inbox.counts()
            outbox = await uow.outbox.counts()
            due = await uow.outbox.pending_count(datetime.now(UTC))
            aside = await uow.inbox.set_aside_items(10)
        return {
            "inbox": inbox,
            "outbox": outbox,
            "outbox_due_now": due,
            "set_aside": [{"update_id": i.update_id, "reason": i.error} for i in aside],
        }

    figures = _with_app(_settings(), work)
    if as_json:
        typer.echo(json.dumps(figures, ensure_ascii=False))
        return
    inbox, outbox = figures["inbox"], figures["outbox"]
    typer.echo(
        f"inbox: {inbox.get('pending', 0)} to handle, {inbox.get('done', 0)} handled (kept 2 days), "
        f"{inbox.get('set_aside', 0)} set aside"
    )
    typer.echo(
        f"outbox: {outbox.get('pending', 0)} waiting ({figures['outbox_due_now']} due now), {outbox.get('sent', 0)} "
        f"sent, {outbox.get('skipped', 0)} skipped (recipient blocked the bot), {outbox.get('failed', 0)} failed, "
        f"{outbox.get('cancelled', 0)} cancelled"
    )
    for item in figures["set_aside"]:
        typer.echo(f"  set aside: update {item['update_id']}: {item['reason']}")


# ---- notices and the outbox, for operators ---------------------------------------------------------------------

URL_OPTION = typer.Option(None, "--url", help="Database URL (default: SICHENG_DATABASE__URL).")
AUDIENCES = ("all", "buildings", "track", "volunteers", "grid-workers", "groups")
POLL_SECONDS = 1.0
IDLE_HINT_SECONDS = 30.0


class _Refused(Exception):
    """An operator's request that cannot be carried out as given; nothing was changed (exit code 2)."""


def _refuse(message: str) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _settings_at(url: str | None) -> Settings:
    settings = _settings()
    if url is None:
        return settings
    return settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})


def _read_notice(file: str) -> str:
    """The notice text of FILE (``-``: standard input), UTF-8."""
    import sys

    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as error:
        _refuse(f"cannot read {file}: {error.strerror or error}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        _refuse(f"{file}: not UTF-8 (byte {error.start + 1} cannot be read); save the file as UTF-8")


def notice_problem(source: str, name: str) -> str | None:
    """Why Telegram would refuse the notice text (with line, column and the line itself), or None."""
    from bot.domain.campaigns import BODY_LIMIT
    from bot.domain.telegram_html import check_html, plain_length

    problem = check_html(source)
    if problem is not None and problem.code != "too_long":
        if not problem.position:
            return f"{name}: {problem.code}: {problem.detail}"
        index = problem.position - 1
        line_start = source.rfind("\n", 0, index) + 1
        line_end = source.find("\n", index)
        line = source[line_start : line_end if line_end >= 0 else len(source)]
        row, column = source.count("\n", 0, index) + 1, index - line_start + 1
        caret = " " * _cell_width(line[: column - 1]) + "^"
        return f"{name}:{row}:{column}: {problem.code}: {problem.detail}\n  {line}\n  {caret}"
    length = plain_length(source)
    if length > BODY_LIMIT:
        return (
            f"{name}: too_long: {length} characters after removing the tags; a notice may have at most {BODY_LIMIT} "
            f"(the header takes the rest of Telegram's 4096)"
        )
    return None


def _campaign_problem(built: Any, error: Any) -> str:
    """A CampaignError in the words organisers get (English)."""
    from jinja2 import UndefinedError

    try:
        text = str(built.renderer.render("en", "notices/problem", error.context))
    except UndefinedError:
        return f"the notice cannot be sent: {error.code}"
    return text.removeprefix("⚠️").strip()


def _audience(kind: str, buildings: list[int], track: str | None) -> Any:
    from bot.domain.campaigns import Audience, AudienceKind
    from bot.domain.roles import Role

    if kind == "buildings":
        return Audience(AudienceKind.BUILDINGS, tuple(buildings))
    if buildings:
        raise _Refused(f"--buildings goes with --audience buildings, not {kind}")
    if kind == "track":
        if track is None:
            raise _Refused("--audience track needs --track (civilised, sanitary, garden, food_safety)")
        return Audience(AudienceKind.TRACK, track=track)
    if kind in ("volunteers", "grid-workers"):
        return Audience(AudienceKind.ROLE, role=Role.VOLUNTEER if kind == "volunteers" else Role.GRID_WORKER)
    return Audience(AudienceKind(kind))


def _local(moment: Any, zone: Any) -> str:
    return "-" if moment is None else str(moment.astimezone(zone).strftime("%Y-%m-%d %H:%M"))


def _cell_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell (CJK characters count double); the last column is not padded."""
    widths = [max(_cell_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [c + " " * (widths[i] - _cell_width(c)) for i, c in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def _counts_text(counts: Any) -> str:
    return f"sent {counts.sent} · skipped {counts.skipped} · failed {counts.failed} · pending {counts.pending}" + (
        f" · cancelled {counts.cancelled}" if counts.cancelled else ""
    )


@notices_app.command("send")
def notices_send(
    file: str = typer.Argument(None, help="The notice text in Telegram HTML (UTF-8); - reads standard input."),
    community: str = typer.Option(..., help="Community code."),
    buildings: str = typer.Option(None, help="Building codes, comma-separated (e.g. 1,2): those residents only."),
    track: str = typer.Option(None, help="Track of the notice (civilised, sanitary, garden, food_safety)."),
    audience: str = typer.Option(None, help="all (default), buildings, track, volunteers, grid-workers, groups."),
    at: str = typer.Option(None, "--at", help="Send time in the community's time zone: 18:30, 12-08 09:00, …"),
    urgent: bool = typer.Option(False, "--urgent", help="Urgent: not held by residents' quiet hours."),
    template: str = typer.Option(None, help="A notice of the content library (e.g. sorting_weekly) instead of FILE."),
    weekly: bool = typer.Option(False, "--weekly", help="Send it again every week at the same time."),
    wait: bool = typer.Option(False, "--wait", help="Show a progress bar until every delivery is settled."),
    url: str = URL_OPTION,
) -> None:
    """Send a notice to a community's residents (or schedule it): checked first, queued only when valid."""
    from bot.app import utcnow
    from bot.domain.campaigns import CampaignError, CampaignStatus, Draft, parse_local_time

    if (file is None) == (template is None):
        _refuse("give the notice text as FILE, or a library notice with --template (not both)")
    body = ""
    if file is not None:
        body = _read_notice(file)
        problem = notice_problem(body, "<stdin>" if file == "-" else file)
        if problem is not None:
            _refuse(problem)
    kind = audience or ("buildings" if buildings else "all")
    if kind not in AUDIENCES:
        _refuse(f"--audience must be one of {', '.join(AUDIENCES)}")
    building_codes = [b.strip() for b in (buildings or "").split(",") if b.strip()]
    settings = _settings_at(url)

    async def work(built: Any) -> tuple[Any, Any, Any]:
        found = await built.services.communities.by_code(community)
        if found is None:
            raise _Refused(f"no community with code {community!r}")
        campaigns = built.services.campaigns
        if template is not None and template not in campaigns.templates:
            raise _Refused(f"no library notice {template!r}; there are: {', '.join(campaigns.templates)}")
        zone = campaigns.zone(found)
        ids = []
        for code in building_codes:
            place = found.building(code)
            if place is None:
                known = ", ".join(b.code for b in found.buildings)
                raise _Refused(f"{found.code} has no building {code!r} (it has: {known})")
            ids.append(place.id)
        try:
            send_at = parse_local_time(at, utcnow(), zone) if at else None
            draft = Draft(
                found.id,
                body,
                _audience(kind, ids, track),
                track=track,
                urgent=urgent,
                repeat_weekly=weekly,
                template=template,
                send_at=send_at,
            )
            campaign = await campaigns.create(None, draft)
        except CampaignError as error:
            raise _Refused(_campaign_problem(built, error)) from None
        return campaign, found, zone

    try:
        campaign, found, zone = _with_app(settings, work)
    except _Refused as refused:
        _refuse(str(refused))
    when = "sending now"
    if campaign.status is not CampaignStatus.SENDING:
        when = f"goes out {_local(campaign.send_at, zone)} ({zone.key})"
    typer.echo(f"notice {campaign.id}: {campaign.recipients} recipient(s) in {found.name} ({found.code}), {when}")
    if weekly:
        typer.echo("  and again every week at the same time, until cancelled")
    if wait:
        _wait_for(settings, campaign.id)


@notices_app.command("wait")
def notices_wait(campaign_id: int = typer.Argument(..., help="Notice id."), url: str = URL_OPTION) -> None:
    """Watch a notice until every delivery is settled (Ctrl-C stops watching, not the notice)."""
    _wait_for(_settings_at(url), campaign_id)


def _wait_for(settings: Settings, campaign_id: int) -> None:
    """Poll the database every second and draw delivered/skipped/failed against the recipients; the bot process
    (here or elsewhere, on the same database) delivers."""
    import time

    from bot.app import utcnow
    from bot.domain.campaigns import CampaignStatus
    from bot.domain.errors import NotFound
    from bot.services.outbox_admin import NoticeAdmin

    async def work(built: Any) -> Any:
        admin = NoticeAdmin(built.uow, utcnow)
        line = await admin.state(campaign_id)
        if line.campaign.status is CampaignStatus.SCHEDULED:
            zone = built.services.campaigns.zone(line.community)
            typer.echo(f"notice {campaign_id} goes out {_local(line.campaign.send_at, zone)}; waiting for it")
        typer.echo("(Ctrl-C stops waiting; the notice goes on)")
        length = max(line.campaign.recipients, line.counts.total, 1)
        shown, last_change, hinted = 0, time.monotonic(), False
        label = f"notice {campaign_id}: {_counts_text(line.counts)}"
        with typer.progressbar(length=length, label=label, show_pos=True) as bar:
            while True:
                counts = line.counts
                bar.length = max(line.campaign.recipients, counts.total, 1)
                if counts.done != shown:
                    last_change = time.monotonic()
                bar.label = f"notice {campaign_id}: {_counts_text(counts)}"
                bar.update(counts.done - shown)
                shown = counts.done
                if line.finished:
                    break
                started = line.campaign.status is CampaignStatus.SENDING or line.campaign.send_at <= utcnow()
                if started and not hinted and time.monotonic() - last_change > IDLE_HINT_SECONDS:
                    hinted = True
                    typer.echo(
                        f"\nnothing delivered for {int(IDLE_HINT_SECONDS)} s: is the bot running (sicheng run) on "
                        "this database? Residents' quiet hours also hold notices until they end.",
                        err=True,
                    )
                await asyncio.sleep(POLL_SECONDS)
                line = await admin.state(campaign_id)
        return line

    try:
        line = _with_app(settings, work)
    except NotFound:
        _refuse(f"no notice {campaign_id}")
    except KeyboardInterrupt:
        typer.echo(f"\nstopped waiting; notice {campaign_id} goes on (sicheng notices wait {campaign_id})")
        return
    typer.echo(f"notice {campaign_id} {line.campaign.status.value}: {_counts_text(line.counts)}")


@notices_app.command("list")
def notices_list(
    community: str = typer.Option(None, help="Community code (default: all)."),
    limit: int = typer.Option(20, help="At most this many, newest first."),
    url: str = URL_OPTION,
) -> None:
    """Notices of the last 30 days and every scheduled one: status, local send time, recipients, deliveries."""
    from bot.app import utcnow
    from bot.domain.errors import NotFound
    from bot.domain.telegram_html import EntityParseError, parse_html
    from bot.services.outbox_admin import NoticeAdmin

    async def work(built: Any) -> list[list[str]]:
        rows = []
        for line in await NoticeAdmin(built.uow, utcnow).recent(community, limit):
            c, counts = line.campaign, line.counts
            zone = built.services.campaigns.zone(line.community)
            try:
                what = f"[{c.template}]" if c.template else " ".join(parse_html(c.body)[0].split())
            except EntityParseError:
                what = c.body
            flags = ("urgent " if c.urgent else "") + ("weekly " if c.repeat_weekly else "")
            rows.append(
                [
                    str(c.id),
                    line.community.code,
                    c.status.value,
                    _local(c.send_at, zone),
                    str(c.recipients),
                    str(counts.sent),
                    str(counts.skipped),
                    str(counts.failed),
                    str(counts.pending),
                    str(counts.cancelled),
                    flags + (what[:30] + "…" if len(what) > 30 else what),
                ]
            )
        return rows

    try:
        rows = _with_app(_settings_at(url), work)
    except NotFound:
        _refuse(f"no community with code {community!r}")
    if not rows:
        typer.echo("no notices in the last 30 days")
        return
    header = ["id", "community", "status", "send at (local)", "recipients", "sent", "skipped", "failed", "pending"]
    for text in _table([*header, "cancelled", "notice"], rows):
        typer.echo(text)


@notices_app.command("cancel")
def notices_cancel(campaign_id: int = typer.Argument(..., help="Notice id."), url: str = URL_OPTION) -> None:
    """Cancel a scheduled notice, or stop one that is sending (what was sent stays sent)."""
    from bot.domain.campaigns import CampaignError
    from bot.domain.errors import NotFound

    async def work(built: Any) -> tuple[Any, int]:
        try:
            stopped: tuple[Any, int] = await built.services.campaigns.stop(None, campaign_id)
            return stopped
        except CampaignError as error:
            raise _Refused(_campaign_problem(built, error)) from None

    try:
        campaign, stopped = _with_app(_settings_at(url), work)
    except NotFound:
        _refuse(f"no notice {campaign_id}")
    except _Refused as refused:
        _refuse(f"notice {campaign_id}: {refused}")
    if stopped or campaign.status.value == "sending":
        typer.echo(f"notice {campaign_id} stopped: {stopped} waiting deliveries cancelled (what was sent stays sent)")
    else:
        typer.echo(f"notice {campaign_id} cancelled")


def _selection(ids: list[str], campaign: int | None, chat: int | None, statuses: tuple[Any, ...] = ()) -> Any:
    from bot.domain.outbox_admin import Selection

    numbers: list[int] = []
    for text in ids:
        for part in text.split(","):
            if not part.strip():
                continue
            try:
                numbers.append(int(part))
            except ValueError:
                _refuse(f"--id takes outbox row ids (numbers), not {part.strip()!r}")
    return Selection(tuple(numbers), campaign, chat, statuses)


class _Bar:
    """A progress bar that appears only when the work spans several batches."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        from bot.domain.outbox_admin import ADMIN_BATCH

        if self.bar is None:
            if total <= ADMIN_BATCH:
                return
            self.bar = typer.progressbar(length=total, label=self.label, show_pos=True)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _outbox_change(action: str, selection: Any, all_failed: bool, url: str | None) -> Any:
    from bot.app import utcnow
    from bot.services.outbox_admin import OutboxAdmin

    bar = _Bar("retrying" if action == "retry" else "cancelling")

    async def work(built: Any) -> Any:
        admin = OutboxAdmin(built.uow, utcnow)
        if action == "retry":
            return await admin.retry(selection, all_failed=all_failed, progress=bar)
        return await admin.cancel(selection, progress=bar)

    try:
        return _with_app(_settings_at(url), work)
    finally:
        bar.close()


@outbox_app.command("list")
def outbox_list(
    status: str = typer.Option(None, help="pending, failed, skipped, cancelled or sent (default: all but sent)."),
    chat: int = typer.Option(None, help="Only messages to this chat."),
    campaign: int = typer.Option(None, help="Only deliveries of this notice."),
    limit: int = typer.Option(50, help="At most this many rows, newest first."),
    url: str = URL_OPTION,
) -> None:
    """Messages in the outbox: id, chat, kind/template, priority, status, attempts, not before (local), error."""
    from zoneinfo import ZoneInfo

    from bot.app import utcnow
    from bot.domain.messaging import OutboxStatus
    from bot.domain.notices import Priority
    from bot.services.outbox_admin import OutboxAdmin

    known = [s.value for s in OutboxStatus]
    if status is not None and status not in known:
        _refuse(f"--status must be one of {', '.join(known)}")
    wanted = (OutboxStatus(status),) if status else tuple(s for s in OutboxStatus if s is not OutboxStatus.SENT)
    selection = _selection([], campaign, chat, wanted)
    settings = _settings_at(url)
    zone = ZoneInfo(settings.locale.timezone)

    async def work(built: Any) -> list[Any]:
        return list(await OutboxAdmin(built.uow, utcnow).entries(selection, limit))

    entries = _with_app(settings, work)
    if not entries:
        typer.echo("no outbox rows match")
        return
    priorities = {int(p): p.name.lower() for p in Priority}
    rows = [
        [
            str(e.id),
            str(e.chat_id),
            e.kind + (f":{e.template}" if e.template else ""),
            priorities.get(e.priority, str(e.priority)),
            e.status.value,
            str(e.attempts),
            _local(e.not_before, zone),
            "-" if e.campaign_id is None else str(e.campaign_id),
            (e.error or "")[:80],
        ]
        for e in entries
    ]
    header = ["id", "chat", "kind/template", "priority", "status", "attempts", "not before", "notice", "error"]
    for text in _table(header, rows):
        typer.echo(text)
    if len(entries) == limit:
        typer.echo(f"(the newest {limit}; --limit shows more)")


@outbox_app.command("retry")
def outbox_retry(
    failed: bool = typer.Option(False, "--failed", help="Every failed message (or narrow with the options below)."),
    ids: list[str] = typer.Option([], "--id", help="Outbox row ids (repeatable, or comma-separated)."),
    campaign: int = typer.Option(None, help="The failed deliveries of this notice."),
    chat: int = typer.Option(None, help="The failed messages to this chat."),
    url: str = URL_OPTION,
) -> None:
    """Send failed messages again: back to waiting, attempts reset, no delay."""
    selection = _selection(ids, campaign, chat)
    if not (failed or selection.names_rows):
        _refuse("say which failed messages to send again: --failed (all), --id, --campaign or --chat")
    result = _outbox_change("retry", selection, failed, url)
    typer.echo(f"{result.changed} failed message(s) waiting to be sent again" + _left(result.left, "failed"))
    if result.campaigns:
        typer.echo(f"notice(s) {', '.join(map(str, result.campaigns))} sending again; their reports will follow")


@outbox_app.command("cancel")
def outbox_cancel(
    ids: list[str] = typer.Option([], "--id", help="Outbox row ids (repeatable, or comma-separated)."),
    campaign: int = typer.Option(None, help="The waiting deliveries of this notice."),
    chat: int = typer.Option(None, help="The waiting messages to this chat."),
    url: str = URL_OPTION,
) -> None:
    """Cancel waiting messages (a message being sent right now is left alone)."""
    selection = _selection(ids, campaign, chat)
    if not selection.names_rows:
        _refuse("say which waiting messages to cancel: --id, --campaign or --chat (all of them is not an option)")
    result = _outbox_change("cancel", selection, False, url)
    typer.echo(f"{result.changed} waiting message(s) cancelled" + _left(result.left, "waiting"))


def _left(count: int, status: str) -> str:
    return f" ({count} no longer {status} or being sent, left alone)" if count else ""


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# ---- volunteers ---------------------------------------------------------------------------------------------------

LOCALE_OPTION = typer.Option("zh_Hans", "--locale", help="Language of the file: zh_Hans or en.")
MAX_STARS = 5


def _locale(locale: str) -> str:
    from bot.domain.residents import LOCALES

    if locale not in LOCALES:
        _fail(f"--locale must be one of {', '.join(LOCALES)}")
    return locale


def _volunteers_cli(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run a volunteers command; a refusal is a clear message (exit 1), not a traceback."""
    try:
        return _with_app(_settings(), work)
    except _Refused as refused:
        _fail(str(refused))


async def _community_zone(built: Any, code: str) -> tuple[Any, Any]:
    found = await built.services.communities.by_code(code)
    if found is None:
        raise _Refused(f"no community with code {code!r}")
    return found, built.services.volunteers.zone(found)


def _period(since: str | None, until: str | None, zone: Any) -> tuple[Any, Any]:
    from bot.export import period

    try:
        return period(since, until, zone)
    except ValueError as error:
        raise _Refused(f"bad date (YYYY-MM-DD): {error}") from None


def _track_names(locale: str) -> dict[str, str]:
    import content
    from content.tracks import load_tracks

    return {t.key: t.text(locale).name for t in load_tracks(content.ROOT / "tracks.yaml")}


@export_app.command("volunteers")
def export_volunteers(
    community: str = typer.Option(..., help="Community code."),
    since: str = typer.Option(None, "--from", help="First day of the shifts (YYYY-MM-DD, local time)."),
    until: str = typer.Option(None, "--to", help="Last day, included (YYYY-MM-DD)."),
    fmt: str = typer.Option("xlsx", "--format", help="xlsx or csv."),
    output: Path = typer.Option(None, "--output", "-o", help="Output file (default: volunteers-<community>.<format>)."),
    locale: str = LOCALE_OPTION,
) -> None:
    """The 志愿服务时长台账: one line per volunteer and shift (approved, waiting for approval, no-show); xlsx adds
    totals per volunteer and per activity."""
    from bot.volunteer_export import hours_rows, write_volunteer_export

    if fmt not in ("xlsx", "csv"):
        _fail("--format must be xlsx or csv")
    language = _locale(locale)
    target = output or Path(f"volunteers-{community}.{fmt}")

    async def work(built: Any) -> tuple[Path, int]:
        found, zone = await _community_zone(built, community)
        start, end = _period(since, until, zone)
        _, entries = await built.services.volunteer_desk.ledger(found.code, start, end)
        rows = hours_rows(entries)
        write_volunteer_export(
            target,
            rows,
            fmt=fmt,  # type: ignore[arg-type]  # checked above
            label=lambda key: built.renderer.label(language, key),
            tz=zone,
            tracks=_track_names(language),
        )
        details = {"community": found.code, "from": since, "to": until, "rows": len(rows)}
        await built.services.access.audit(None, "volunteer.export", details)
        return target, len(rows)

    path, count = _volunteers_cli(work)
    typer.echo(f"written {path} ({count} line(s))")


LANG_OPTION = typer.Option("zh_Hans", "--lang", "--locale", help="Language of the file: zh_Hans or en.")


def _export_format(fmt: str | None, out: Path | None) -> str:
    """``--format``, else the suffix of ``--out`` (``.csv``: csv), else xlsx."""
    chosen = fmt or ("csv" if out is not None and out.suffix.lower() == ".csv" else "xlsx")
    if chosen not in ("xlsx", "csv"):
        _fail("--format must be xlsx or csv")
    return chosen


@export_app.command("points")
def export_points(
    community: str = typer.Option(..., help="Community code."),
    since: str = typer.Option(None, "--from", help="First day (YYYY-MM-DD, local time)."),
    until: str = typer.Option(None, "--to", help="Last day, included (YYYY-MM-DD)."),
    out: Path = typer.Option(None, "--out", "--output", "-o", help="Output file (default: points-<community>.xlsx)."),
    fmt: str = typer.Option(None, "--format", help="xlsx or csv (default: from --out's suffix, else xlsx)."),
    lang: str = LANG_OPTION,
) -> None:
    """The 积分台账: one line per ledger entry of the community's residents (time, masked resident, building, points,
    reason, reference, balance after, expiry); xlsx adds totals per resident and per reason."""
    from bot.points_export import points_rows, write_points_export

    async def rows(built: Any, code: str, start: datetime | None, end: datetime | None, _: str) -> Sequence[Any]:
        return points_rows(await built.services.points.ledger(code, start, end))

    _ledger_export("points", community, since, until, out, fmt, lang, rows, write_points_export)


def _ledger_export(
    name: str,
    community: str,
    since: str | None,
    until: str | None,
    out: Path | None,
    fmt: str | None,
    lang: str,
    rows: Callable[[Any, str, datetime | None, datetime | None, str], Awaitable[Sequence[Any]]],
    write: Callable[..., Path],
) -> None:
    """Write one of the points ledgers of ``community`` for a period (the dashboard's downloads use the same
    writers), audited as ``<name>.export``."""
    kind = _export_format(fmt, out)
    language = _locale(lang)
    target = out or Path(f"{name}-{community}.{kind}")

    async def work(built: Any) -> tuple[Path, int]:
        found, zone = await _community_zone(built, community)
        start, end = _period(since, until, zone)
        lines = await rows(built, found.code, start, end, language)

        def label(key: str) -> str:
            return str(built.renderer.label(language, key))

        write(target, lines, fmt=kind, label=label, tz=zone)
        details = {"community": found.code, "from": since, "to": until, "rows": len(lines)}
        await built.services.access.audit(None, f"{name}.export", details)
        return target, len(lines)

    path, count = _volunteers_cli(work)
    typer.echo(f"written {path} ({count} line(s))")


@export_app.command("redemptions")
def export_redemptions(
    community: str = typer.Option(..., help="Community code."),
    since: str = typer.Option(None, "--from", help="First day (YYYY-MM-DD, local time)."),
    until: str = typer.Option(None, "--to", help="Last day, included (YYYY-MM-DD)."),
    out: Path = typer.Option(
        None, "--out", "--output", "-o", help="Output file (default: redemptions-<community>.xlsx)."
    ),
    fmt: str = typer.Option(None, "--format", help="xlsx or csv (default: from --out's suffix, else xlsx)."),
    lang: str = LANG_OPTION,
) -> None:
    """The 兑换记录: one line per redemption (time, masked resident, reward, cost, status, code verified when and by
    which service point, cancelled or expired when); xlsx adds totals per reward and per service point."""
    from bot.points_export import redemption_rows, write_redemption_export

    async def rows(built: Any, code: str, start: datetime | None, end: datetime | None, lang: str) -> Sequence[Any]:
        return redemption_rows(await built.services.points.redemption_ledger(code, start, end), lang)

    _ledger_export("redemptions", community, since, until, out, fmt, lang, rows, write_redemption_export)


@volunteers_app.command("certificate")
def volunteers_certificate(
    telegram_id: int = typer.Argument(..., help="The volunteer's Telegram id."),
    since: str = typer.Option(None, "--from", help="First day of the service (YYYY-MM-DD; default: all of it)."),
    until: str = typer.Option(None, "--to", help="Last day, included (YYYY-MM-DD)."),
    output: Path = typer.Option(None, "--output", "-o", help="The PDF to write (default: <number>.pdf)."),
    locale: str = LOCALE_OPTION,
) -> None:
    """Issue a 志愿服务记录证明 of the volunteer's approved hours (registered: its number can be checked) as PDF."""
    from bot.certificates import render_certificate
    from bot.domain.errors import NotFound
    from bot.domain.volunteers import VolunteerError, hours

    language = _locale(locale)

    async def work(built: Any) -> tuple[Any, Path]:
        found = await built.services.volunteer_desk.member(telegram_id)
        if found is None:
            raise _Refused(f"no registered resident with Telegram id {telegram_id}")
        resident, community = found
        zone = built.services.volunteers.zone(community)
        start, end = _period(since, until, zone)
        try:
            cert = await built.services.volunteers.issue_certificate(
                None, resident_id=resident.id, since=start, until=end, issued_by=None
            )
        except VolunteerError as error:
            if error.code == "no_hours":
                raise _Refused(f"{telegram_id} has no approved volunteer hours in that period") from None
            raise
        except NotFound:
            raise _Refused(f"no registered resident with Telegram id {telegram_id}") from None
        target = output or Path(f"{cert.number}.pdf")
        pdf = render_certificate(cert, locale=language, tz=zone, labels=lambda key: built.renderer.label(language, key))
        target.write_bytes(pdf)
        return cert, target

    cert, path = _volunteers_cli(work)
    typer.echo(f"certificate {cert.number}: {cert.name}, {hours(cert.minutes):.1f} hours, written {path}")


@volunteers_app.command("check")
def volunteers_check(
    number: str = typer.Argument(..., help="The certificate number, e.g. ZYFW-2026-000123-K7QX."),
) -> None:
    """Check a 志愿服务记录证明 by its number (as /checkcert does): who, when, how many hours, issued by whom."""
    from datetime import timedelta

    from bot.domain.volunteers import hours

    async def work(built: Any) -> tuple[Any, Any]:
        cert = await built.services.volunteers.check_certificate(number)
        if cert is None:
            raise _Refused(f"no certificate with number {number!r}")
        communities = await built.services.communities.list()
        issuer = next((c for c in communities if c.name == cert.community), None)
        return cert, built.services.volunteers.zone(issuer)

    cert, zone = _volunteers_cli(work)
    first = cert.period_from.astimezone(zone).date()
    end = cert.period_to.astimezone(zone)
    last = end.date() - timedelta(days=1) if end.time() == end.time().min and end.date() > first else end.date()
    typer.echo(f"certificate {cert.number}: valid")
    typer.echo(f"  volunteer: {cert.name}")
    typer.echo(f"  service:   {first} – {last}, {hours(cert.minutes):.1f} hours")
    if cert.services:
        typer.echo(f"  content:   {'、'.join(cert.services)}")
    typer.echo(f"  issued by: {cert.community} on {cert.issued_at.astimezone(zone).date()}")


@stats_app.command("volunteers")
def stats_volunteers(
    community: str = typer.Option(..., help="Community code."),
    days: int = typer.Option(30, "--days", min=0, help="Shifts of the last N days (0: all time)."),
) -> None:
    """Volunteer participation against the 5% goal, applications waiting, hours per track and per building, shifts,
    bookings and no-shows."""
    from datetime import UTC, datetime, timedelta

    from bot.domain.volunteers import PARTICIPATION_GOAL, hours

    async def work(built: Any) -> tuple[Any, Any]:
        found, _ = await _community_zone(built, community)
        since = datetime.now(UTC) - timedelta(days=days) if days else None
        community_row, figures = await built.services.volunteer_desk.figures(found.code, since)
        return community_row, figures

    found, figures = _volunteers_cli(work)
    tracks = _track_names("zh_Hans")
    met = "met" if figures.goal_met else "not yet"
    typer.echo(f"{found.name} ({found.code}), {'last ' + str(days) + ' days' if days else 'all time'}")
    typer.echo(
        f"participation: {figures.volunteers} volunteer(s) of {figures.residents} registered resident(s) = "
        f"{figures.participation:.1%} (goal {PARTICIPATION_GOAL:.0%}: {met})"
    )
    typer.echo(f"applications waiting for approval: {figures.pending}")
    no_show_share = f" ({figures.no_shows / figures.bookings:.0%})" if figures.bookings else ""
    typer.echo(f"shifts: {figures.shifts} · bookings: {figures.bookings} · no-shows: {figures.no_shows}{no_show_share}")
    for title, minutes_by in (("track", figures.minutes_by_track), ("building", figures.minutes_by_building)):
        typer.echo(f"approved hours per {title}:" + ("" if minutes_by else " none"))
        rows = [[tracks.get(key, key) if title == "track" else key, f"{hours(m):.1f}"] for key, m in minutes_by.items()]
        for line in _table([title, "hours"], sorted(rows, key=lambda r: -float(r[1])))[1:] if rows else []:
            typer.echo(f"  {line}")


@volunteers_app.command("settings")
def volunteers_settings(
    community: str = typer.Option(..., help="Community code."),
    approval: bool = typer.Option(
        None, "--approval/--no-approval", help="Whether an organiser approves each new volunteer first."
    ),
    stars: str = typer.Option(None, help="Hours for 1★ … 5★, rising, comma-separated (e.g. 100,300,600,1000,1500)."),
) -> None:
    """Show a community's volunteer settings, or change them (changes are audited)."""
    from bot.domain.volunteers import Stars

    thresholds = None
    if stars is not None:
        try:
            thresholds = Stars(tuple(int(part) for part in stars.split(",")))
        except ValueError:
            _fail(f"--stars must be 1 to {MAX_STARS} rising whole numbers of hours, e.g. 100,300,600,1000,1500")
        if len(thresholds.thresholds) > MAX_STARS:
            _fail(f"--stars takes at most {MAX_STARS} thresholds (1★ … {MAX_STARS}★)")

    async def work(built: Any) -> tuple[Any, bool, Any]:
        found, _ = await _community_zone(built, community)
        community_row, required, current = await built.services.volunteer_desk.configure(
            found.code, approval, thresholds
        )
        return community_row, bool(required), current

    found, required, current = _volunteers_cli(work)
    typer.echo(f"{found.name} ({found.code}):")
    typer.echo(f"  new volunteers: {'approved by an organiser first' if required else 'approved at once'}")
    levels = ", ".join(f"{n}★ {h} h" for n, h in enumerate(current.thresholds, start=1))
    typer.echo(f"  stars: {levels}")


def main() -> None:
    app()


def _loopback(host: str) -> bool:
    """Whether the sandbox listens only on this machine."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@export_app.command("survey")
def export_survey(
    survey_id: int = typer.Argument(..., help="The survey's number (see /surveys in the bot)."),
    out: Path = typer.Option(None, "--out", "--output", "-o", help="Output file (default: survey-<id>.xlsx)."),
    fmt: str = typer.Option(None, "--format", help="xlsx or csv (default: from --out's suffix, else xlsx)."),
    lang: str = LANG_OPTION,
) -> None:
    """A 满意度测评: results per question and one line per response (xlsx; csv: the responses). Respondents of a
    named survey are masked; an anonymous survey's lines name nobody."""
    from bot.domain.surveys import SurveyError
    from bot.survey_export import write_survey_export

    kind = _export_format(fmt, out)
    language = _locale(lang)
    target = out or Path(f"survey-{survey_id}.{kind}")

    async def work(built: Any) -> tuple[Path, int]:
        try:
            results, responses = await built.services.surveys.export(survey_id)
        except SurveyError:
            raise _Refused(f"no survey with number {survey_id}") from None

        def label(key: str, **context: Any) -> str:
            return str(built.renderer.label(language, key, context))

        write_survey_export(target, results, responses, fmt=kind, locale=language, label=label)  # type: ignore[arg-type]  # checked
        details = {"survey": survey_id, "rows": len(responses), "anonymous": results.survey.anonymous}
        await built.services.access.audit(None, "survey.export", details)
        return target, len(responses)

    path, count = _volunteers_cli(work)
    typer.echo(f"written {path} ({count} response(s))")
