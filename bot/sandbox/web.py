"""The sandbox's web chat page: a Telegram-like client for the simulated residents, served by the emulator's app.

``GET /`` renders the page; ``/static/`` serves its script and style. Two small read-only JSON helpers that the
resident-side API does not offer live under ``/sandbox/page/``: the chats one person sees (the private chat with the
bot and the groups they are in, with a last-message preview) and the bot's command menu in a language. Everything
else the page does goes through the documented ``/sandbox/api/`` endpoints.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bot.sandbox.errors import SandboxError
from bot.sandbox.user_api import EMULATOR_KEY

WEB_ROOT = Path(__file__).with_name("web")
STATIC_ROOT = WEB_ROOT / "static"
STATIC_URL = "/static"
PAGE_API = "/sandbox/page"
PREVIEW_CHARS = 60
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

# The page loads only its own files; bot text is rendered through the DOM (textContent), never as HTML.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_dumps = functools.partial(json.dumps, ensure_ascii=False)
# The emulator lives in memory; the sandbox saves its chats beside its database (bot/sandbox/history.py), and ids
# (polls, messages) start again only with a new history. The page keys what it remembers in the browser (a person's
# poll votes) by this, so nothing leaks from one history into the next.
INSTANCE_KEY = web.AppKey("sicheng_sandbox_page_instance", str)


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(WEB_ROOT),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _asset_version() -> str:
    """A short hash of the static files, appended to their URLs so a browser never runs a stale script."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_ROOT.glob("*")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


async def index(request: web.Request) -> web.Response:
    """The page, with the bot's identity inlined so the first paint needs no extra request."""
    emulator = request.app[EMULATOR_KEY]
    bot = emulator.default_bot
    boot = {
        "bot": {"id": bot.id, "name": bot.first_name, "username": bot.username},
        "instance": request.app[INSTANCE_KEY],
    }
    template = _templates().get_template("index.html.j2")
    html = template.render(static=STATIC_URL, version=_asset_version(), boot=boot, bot_name=bot.first_name)
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _preview(view: dict[str, Any]) -> str:
    """One line for the chat list, like Telegram's: text, or a label for media."""
    message = view["message"]
    if text := view.get("text") or view.get("caption"):
        line = " ".join(str(text).split())
    elif "photo" in message:
        line = "🖼"
    elif "poll" in message:
        line = "📊 " + str(message["poll"]["question"])
    elif "location" in message:
        line = "📍"
    elif "document" in message:
        line = "📄 " + str(message["document"].get("file_name") or "")
    elif "new_chat_members" in message:
        line = "+ " + "、".join(str(member["first_name"]) for member in message["new_chat_members"])
    else:
        line = ""
    return line[:PREVIEW_CHARS]


def _chat_entry(chat: dict[str, Any], transcript: dict[str, Any] | None) -> dict[str, Any]:
    """A chat for the list: its Telegram shape, the newest message version (for unread dots) and a preview."""
    messages = transcript["messages"] if transcript else []
    last = messages[-1] if messages else None
    entry: dict[str, Any] = {**chat, "last": None, "version": max((m["version"] for m in messages), default=0)}
    if last is not None:
        sender = last["message"].get("from") or {}
        entry["last"] = {
            "text": _preview(last),
            "date": last["message"].get("date"),
            "from_bot": last["from_bot"],
            "sender": sender.get("first_name"),
        }
    return entry


def _json(result: Any, status: int = 200) -> web.Response:
    body = {"ok": True, "result": result} if status == 200 else {"ok": False, "error": result}
    return web.json_response(body, status=status, dumps=_dumps)


async def person_chats(request: web.Request) -> web.Response:
    """GET /sandbox/page/chats?user_id=N: the private chat with the default bot first, then the person's groups."""
    emulator = request.app[EMULATOR_KEY]
    try:
        user = emulator.user(int(request.query["user_id"]))
    except (KeyError, ValueError):
        return _json("user_id is required", 400)
    except SandboxError as exc:
        return _json(exc.message, exc.status)
    bot = emulator.default_bot
    private = emulator.private_chat(user)
    # Reading a transcript creates an empty conversation; only read the private one if the person ever wrote.
    started = (bot.id, user.id) in emulator.conversations
    chats = [
        {
            **_chat_entry(private.to_api(), emulator.transcript(user.id) if started else None),
            "title": bot.first_name,
            "username": bot.username,
            "is_bot": True,
        }
    ]
    for group in emulator.groups.values():
        if user.id in group.members:
            entry = _chat_entry(group.to_api(), emulator.transcript(group.id))
            chats.append({**entry, "members": len(group.members)})
    return _json(chats)


async def commands(request: web.Request) -> web.Response:
    """GET /sandbox/page/commands?language_code=zh-hans: the menu a Telegram client would show that person.

    Telegram clients ask for the user's language and fall back to the default list, always in the default scope.
    Read from the bot's stored menus (as setMyCommands left them) rather than through getMyCommands, so that the
    page's reads never show up in the bot's request log.
    """
    bot = request.app[EMULATOR_KEY].default_bot
    menus: dict[str, list[dict[str, str]]] = {}
    for (scope, language), items in bot.commands.items():
        if json.loads(scope).get("type") == "default":
            menus[language] = items
    wanted = request.query.get("language_code", "").lower().split("-")[0]
    return _json(menus.get(wanted) or menus.get("") or [])


async def static(request: web.Request) -> web.StreamResponse:
    """GET /static/{name}: only the page's own files, served as UTF-8 (the script and style hold Chinese text)."""
    name = request.match_info["name"]
    content_type = STATIC_TYPES.get(Path(name).suffix)
    path = STATIC_ROOT / name
    if content_type is None or "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound()
    response = web.FileResponse(path, headers={"Content-Type": content_type, "X-Content-Type-Options": "nosniff"})
    response.headers["Cache-Control"] = "no-cache"
    return response


def setup_web(app: web.Application, *, instance: str | None = None) -> None:
    """Mount the page on the emulator's app (called by ``bot.sandbox.app``).

    ``instance`` names the emulator's state: a new one per run, unless the chat history is kept across runs (then
    the same as long as that history lives), so the page's memory of votes matches the polls it shows.
    """
    app[INSTANCE_KEY] = instance or secrets.token_hex(6)
    app.router.add_get("/", index)
    app.router.add_get(f"{STATIC_URL}/{{name}}", static)
    app.router.add_get(f"{PAGE_API}/chats", person_chats)
    app.router.add_get(f"{PAGE_API}/commands", commands)
