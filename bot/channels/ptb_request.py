"""python-telegram-bot's HTTP calls over aiohttp instead of httpx, through PTB's own extension point (``BaseRequest``).

Why: PTB's default transport (httpx over httpcore and anyio) costs about 1 ms of CPU per Bot API call once a few
calls are in flight at once — on every request httpcore looks at each pooled connection (a socket option read and
a readability poll per connection) and anyio enters cancel scopes and looks up the current task several times — so
a PTB bot sending replies to several chats spent as much CPU on HTTP as on everything else it does
(bench.handling, docs/benchmarks.md). aiohttp's connection pool hands out an idle connection without touching the
others, and it is already what the aiogram channel uses. Everything above the transport (PTB's ``Bot``, its
errors, the rate limiter hook that runs Sicheng's send gate) is unchanged.

Requests carry a JSON body (``application/json``, which the Bot API accepts for every method) unless they upload a
file (``multipart/form-data``). Errors map to PTB's: timeouts to ``TimedOut``, other transport errors to
``NetworkError``; neither message carries the request's URL (it holds the bot token). Bodies are written and
answers read with orjson (``bot.jsonio``); an answer orjson cannot read goes to PTB's own parser.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiohttp
import yarl
from aiohttp.helpers import get_env_proxy_for_url
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.channels.base import transport_failure
from bot.jsonio import dumps, loads

DEFAULT_TIMEOUT = 5.0  # seconds, PTB's defaults for connect, read and write
POOL_TIMEOUT = 1.0  # waiting for a free connection of the pool (PTB's default)
MEDIA_WRITE_TIMEOUT = 20.0  # uploading a file (PTB's default)


def _given(value: Any, default: float | None) -> float | None:
    return default if isinstance(value, type(BaseRequest.DEFAULT_NONE)) else value


class AiohttpRequest(BaseRequest):
    """One aiohttp session (and connection pool) for one kind of PTB call: the bot's requests, or ``getUpdates``."""

    def __init__(self, connections: int = 16, *, read_timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self._connections = connections
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], tuple[Any, Any]] = {}  # (scheme, host) → (proxy, its auth) or Nones

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        """PTB's hook for reading an answer: orjson; PTB's own (bytes decoded leniently, its error) otherwise."""
        try:
            return cast(dict[str, Any], loads(payload))
        except ValueError:
            return BaseRequest.parse_json_payload(payload)

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections)
            # Not trust_env: with it aiohttp looks for ~/.netrc and reads the proxy variables in a worker thread on
            # every request (two thread hops per Bot API call, bench.handling). The proxy is looked up once per host
            # instead (``_proxy``).
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data is not None and request_data.contains_files
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, MEDIA_WRITE_TIMEOUT if files else DEFAULT_TIMEOUT)
        connect = _given(connect_timeout, DEFAULT_TIMEOUT)
        pool = _given(pool_timeout, POOL_TIMEOUT)
        parts = (read, write, connect, pool)
        timeout = aiohttp.ClientTimeout(
            # aiohttp has no write timeout of its own: an upload gets the sum of PTB's four for the whole call (a
            # stalled upload must end); other calls send a little JSON, and a download (a GET) may take as long as
            # its data keeps coming — ``sock_read`` bounds each wait, as PTB's read timeout does with httpx.
            total=sum(p for p in parts if p is not None) if files and None not in parts else None,
            connect=None if connect is None or pool is None else connect + pool,  # waiting for the pool included
            sock_connect=connect,
            sock_read=read,
        )
        body: Any = None
        headers = None
        if request_data is not None:
            if files:
                body = aiohttp.FormData(quote_fields=False)  # file names as UTF-8, as httpx sends them
                for name, value in request_data.json_parameters.items():
                    body.add_field(name, value)
                for name, (filename, content, mimetype) in request_data.multipart_data.items():
                    body.add_field(name, content, filename=filename, content_type=mimetype)
            else:
                body = dumps(request_data.parameters)
                headers = {"Content-Type": "application/json"}
        target = yarl.URL(url)  # parsed once: for the proxy lookup and for aiohttp
        proxy, proxy_auth = self._proxy(target)
        try:
            async with session.request(
                method, target, data=body, headers=headers, timeout=timeout, proxy=proxy, proxy_auth=proxy_auth
            ) as response:
                return response.status, await response.read()
        except (TimeoutError, asyncio.TimeoutError) as error:  # noqa: UP041 (aiohttp raises either)
            raise TimedOut(f"aiohttp: {type(error).__name__}") from None
        except aiohttp.ClientError as error:
            raise NetworkError(transport_failure(error)) from None  # never the URL: it holds the token

    def _proxy(self, url: yarl.URL) -> tuple[Any, Any]:
        """The egress proxy HTTP(S)_PROXY names for this URL's host unless NO_PROXY exempts it, as PTB's httpx
        transport honoured them; read from the environment once per host."""
        key = (url.scheme, url.host or "")
        found = self._proxies.get(key)
        if found is None:
            try:
                found = get_env_proxy_for_url(url)
            except LookupError:  # no proxy for this scheme, or the host is exempt
                found = (None, None)
            self._proxies[key] = found
        return found
