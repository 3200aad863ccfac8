"""The HTTP surface: Bot API routes in all three body encodings, file download, the user-side JSON API."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from bot.sandbox import dispatch
from bot.sandbox.emulator import Emulator
from bot.sandbox.files import tiny_png
from bot.sandbox.limits import Faults
from bot.sandbox.server import run_emulator

Served = tuple[Emulator, str]


def _api(served: Served, method: str) -> str:
    emu, base_url = served
    return f"{base_url}/bot{emu.default_bot.token}/{method}"


async def _started_user(emu: Emulator) -> int:
    user = emu.create_user("小明")
    emu.send_text(user.id, "/start")
    return user.id


async def test_unknown_method_returns_404_json(served: Served) -> None:
    async with aiohttp.ClientSession() as http, http.post(_api(served, "fooBar")) as response:
        assert response.status == 404
        assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_unknown_token_returns_401(served: Served) -> None:
    _, base_url = served
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/bot1:wrong/getMe") as response:
        assert response.status == 401
        assert (await response.json())["description"] == "Unauthorized"


async def test_bot_path_without_method_returns_404_json(served: Served) -> None:
    emu, base_url = served
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/bot{emu.default_bot.token}") as response,
    ):
        assert response.status == 404
        assert (await response.json())["ok"] is False


async def test_method_names_are_case_insensitive(served: Served) -> None:
    async with aiohttp.ClientSession() as http, http.get(_api(served, "GETME")) as response:
        assert (await response.json())["result"]["is_bot"] is True


@pytest.mark.parametrize("encoding", ["json", "form", "query"])
async def test_send_message_accepts_each_encoding(served: Served, encoding: str) -> None:
    emu, _ = served
    chat_id = await _started_user(emu)
    markup = {"inline_keyboard": [[{"text": "好", "callback_data": "ok"}]]}
    params: dict[str, Any] = {"chat_id": chat_id, "text": "你好", "reply_markup": markup}
    form = {**params, "chat_id": str(chat_id), "reply_markup": json.dumps(markup)}
    async with aiohttp.ClientSession() as http:
        if encoding == "json":
            request = http.post(_api(served, "sendMessage"), json=params)
        elif encoding == "form":
            request = http.post(_api(served, "sendMessage"), data=form)
        else:
            request = http.get(_api(served, "sendMessage"), params=form)
        async with request as response:
            body = await response.json()
    assert body["ok"] is True
    assert body["result"]["reply_markup"] == markup


async def test_multipart_photo_upload_round_trips_through_get_file(served: Served) -> None:
    emu, base_url = served
    chat_id = await _started_user(emu)
    image = tiny_png(6, 5)
    form = aiohttp.FormData()
    form.add_field("chat_id", str(chat_id))
    form.add_field("caption", "<b>看</b>")
    form.add_field("parse_mode", "HTML")
    form.add_field("photo", "attach://f1")
    form.add_field("f1", image, filename="p.png", content_type="image/png")
    async with aiohttp.ClientSession() as http:
        async with http.post(_api(served, "sendPhoto"), data=form) as response:
            message = (await response.json())["result"]
        photo = message["photo"][-1]
        assert (photo["width"], photo["height"], message["caption"]) == (6, 5, "看")
        async with http.post(_api(served, "getFile"), json={"file_id": photo["file_id"]}) as response:
            path = (await response.json())["result"]["file_path"]
        async with http.get(f"{base_url}/file/bot{emu.default_bot.token}/{path}") as response:
            assert await response.read() == image
        async with http.get(f"{base_url}/file/bot{emu.default_bot.token}/photos/nope.jpg") as response:
            assert response.status == 404


async def test_injected_timeout_drops_connection() -> None:
    faults = Faults(share_timeout=1.0, hang_seconds=0.05)
    async with run_emulator(faults=faults) as (emu, base_url):
        chat_id = await _started_user(emu)
        url = f"{base_url}/bot{emu.default_bot.token}/sendMessage"
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                async with http.post(url, json={"chat_id": chat_id, "text": "x"}) as response:
                    await response.read()
        assert emu.calls(method="sendMessage")[-1].status == 0


async def test_internal_error_becomes_logged_500(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(dispatch.HANDLERS, "getme", broken)
    async with aiohttp.ClientSession() as http, http.get(_api(served, "getMe")) as response:
        assert response.status == 500
        assert (await response.json())["description"] == "Internal Server Error"


async def test_user_api_drives_a_conversation(served: Served) -> None:
    emu, base_url = served
    api = f"{base_url}/sandbox/api"
    async with aiohttp.ClientSession() as http:

        async def post(path: str, **body: Any) -> Any:
            async with http.post(f"{api}{path}", json=body) as response:
                data = await response.json()
                assert data["ok"], data
                return data["result"]

        async def get(path: str) -> Any:
            async with http.get(f"{api}{path}") as response:
                return (await response.json())["result"]

        user = await post("/users", first_name="小明", language_code="zh-hans", id=555)
        assert user["id"] == 555
        sent = await post("/chats/555/messages", text="/start c1_b2")
        assert sent["entities"][0]["type"] == "bot_command"
        reply = await emu.call_api(
            emu.default_bot.token,
            "sendMessage",
            {
                "chat_id": 555,
                "text": "选楼栋",
                "reply_markup": {"inline_keyboard": [[{"text": "1号", "callback_data": "b1"}]]},
            },
        )
        pressed = await post("/chats/555/callbacks", message_id=reply["message_id"], data="b1")
        assert (await get(f"/callbacks/{pressed['callback_query_id']}"))["answered"] is False
        async with http.post(f"{api}/chats/555/callbacks", json={"message_id": reply["message_id"], "data": "zz"}) as r:
            assert r.status == 404
        form = aiohttp.FormData()
        form.add_field("photo", tiny_png(), filename="p.png", content_type="image/png")
        async with http.post(f"{api}/chats/555/photos", data=form) as response:
            photo_message = (await response.json())["result"]
        await post("/chats/555/locations", latitude=31.2, longitude=121.5)
        transcript = await get("/chats/555/messages")
        assert [m["from_bot"] for m in transcript["messages"]] == [False, True, False, False]
        async with http.get(base_url + transcript["messages"][2]["photo_url"]) as response:
            assert await response.read() == tiny_png()
        assert photo_message["photo"][-1]["file_id"] in transcript["messages"][2]["photo_url"]
        events = await get(f"/events?after={transcript['version']}&timeout=0.01")
        assert events["events"] == []
        group = await post("/groups", title="楼栋群", members=[555])
        other = await post("/users", first_name="小红")
        joined = await post(f"/chats/{group['id']}/members", user_id=other["id"])
        assert joined["new_chat_members"][0]["id"] == other["id"]
        await post("/users/555/block")
        calls = await get("/calls?method=sendMessage")
        assert [c["status"] for c in calls] == [200]
        assert len(await get("/users")) == 2


async def test_uploaded_file_is_served_as_its_real_type_never_as_html() -> None:
    """An upload that claims text/html is served as a download, an image with its sniffed type; both nosniff."""
    from bot.sandbox.server import file_response

    html = file_response(b"<html><script>alert(1)</script></html>")
    assert html.content_type == "application/octet-stream" and html.headers["Content-Disposition"] == "attachment"
    assert html.headers["X-Content-Type-Options"] == "nosniff"
    png = file_response(tiny_png())
    assert png.content_type == "image/png" and png.headers["X-Content-Type-Options"] == "nosniff"


async def test_cross_origin_post_and_foreign_host_are_refused() -> None:
    import aiohttp

    from bot.sandbox.server import run_emulator

    async with run_emulator("127.0.0.1", 0) as (_, url), aiohttp.ClientSession() as http:
        users = f"{url}/sandbox/api/users"
        async with http.post(users, json={"first_name": "x"}, headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 403
        async with http.get(users, headers={"Host": "evil.example"}) as r:
            assert r.status == 403  # a rebinding name pointing at this machine
        async with http.post(users, json={"first_name": "小李"}, headers={"Origin": url}) as r:
            assert r.status == 200
        async with http.get(users) as r:
            assert r.status == 200
