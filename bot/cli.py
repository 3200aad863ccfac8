"""``sicheng`` command line: run, sandbox, db, content, admin, community."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from bot.config import Settings

T = TypeVar("T")

app = typer.Typer(help="Sicheng (四城) — community bot for 四城同创.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
content_app = typer.Typer(help="Content: templates, tracks, question banks.", no_args_is_help=True)
admin_app = typer.Typer(help="Roles: grant and revoke.", no_args_is_help=True)
community_app = typer.Typer(help="Communities and buildings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(content_app, name="content")
app.add_typer(admin_app, name="admin")
app.add_typer(community_app, name="community")


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings


def _with_app(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(app)`` against the configured database (migrating SQLite as ``run`` would)."""
    from bot.app import build_app, prepare_database

    async def main() -> T:
        await prepare_database(settings.database.url)
        built = await build_app(settings)
        try:
            return await work(built)
        finally:
            await built.aclose()

    return asyncio.run(main())


def _fail(message: str) -> None:
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
    from bot.runner import make_channel, run_polling

    kind = channel or settings.telegram.channel
    url = api_url or settings.telegram.api_url

    async def work(built: Any) -> None:
        await run_polling(make_channel(built, kind, token.get_secret_value(), url))

    _with_app(settings, work)


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


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()
