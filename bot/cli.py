"""``sicheng`` command line: run, sandbox, db, content, admin, community."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
from collections.abc import Awaitable, Callable
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
stats_app = typer.Typer(help="Figures: awareness, reports.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(content_app, name="content")
app.add_typer(admin_app, name="admin")
app.add_typer(community_app, name="community")
rewards_app = typer.Typer(help="Rewards catalogue (积分兑换).", no_args_is_help=True)
points_app = typer.Typer(help="Points ledger (文明积分).", no_args_is_help=True)
app.add_typer(rewards_app, name="rewards")
app.add_typer(points_app, name="points")
app.add_typer(stats_app, name="stats")
export_app = typer.Typer(help="Exports: the 问题台账 (issue ledger) as xlsx or csv.", no_args_is_help=True)
app.add_typer(export_app, name="export")


def _settings() -> Settings:
    settings = Settings()
    token = settings.telegram.token
    logs.configure(settings.log_level, [token.get_secret_value()] if token else [])
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
) -> None:
    """Run the bot with long polling (needs SICHENG_TELEGRAM__TOKEN)."""
    settings = _settings()
    token = settings.telegram.token
    if token is None:
        _fail("No bot token: set SICHENG_TELEGRAM__TOKEN (see .env.example), or try `sicheng sandbox`.")
        return
    from bot.runner import make_channel, run_bot

    kind = channel or settings.telegram.channel
    url = api_url or settings.telegram.api_url

    async def work(built: Any) -> None:
        await run_bot(built, make_channel(built, kind, token.get_secret_value(), url))

    _with_app(settings, work)


@app.command()
def sandbox(
    host: str = typer.Option(None, help="Address of the page and the emulator (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default 8080)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start from an empty sandbox database."),
    channel: str = typer.Option("aiogram", help="aiogram (default) or ptb."),
) -> None:
    """Try Sicheng with no token and no internet: a local Telegram emulator and a web chat page."""
    from bot.sandbox.app import start_sandbox

    settings = _settings()
    where_host, where_port = host or settings.sandbox.host, port or settings.sandbox.port

    async def main() -> None:
        async with start_sandbox(settings, host=where_host, port=where_port, channel=channel, fresh=fresh) as box:
            typer.secho(f"Sicheng sandbox: open {box.url}  (Ctrl+C to stop)", fg=typer.colors.GREEN)
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
def content_check() -> None:
    """Validate every content file; fails when a template or label is missing in a locale."""
    from bot.content_check import check_all

    errors = check_all(_settings())
    for error in errors:
        typer.secho(f"✗ {error}", fg=typer.colors.RED, err=True)
    if errors:
        raise typer.Exit(1)
    typer.echo("content OK")


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
        f"sent, {outbox.get('skipped', 0)} skipped (recipient blocked the bot), {outbox.get('failed', 0)} failed"
    )
    for item in figures["set_aside"]:
        typer.echo(f"  set aside: update {item['update_id']}: {item['reason']}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()
