"""The real HTTP client behind webhook delivery."""

from __future__ import annotations

from typing import Any

import aiohttp

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class AiohttpPoster:
    """Posts updates as JSON with the secret-token header, like Telegram does."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str, update: dict[str, Any], secret_token: str | None) -> tuple[int, str]:
        """Send one update; return the HTTP status and reason."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {SECRET_HEADER: secret_token} if secret_token else {}
        try:
            async with self._session.post(url, json=update, headers=headers) as response:
                await response.read()
                return response.status, response.reason or ""
        except aiohttp.ClientError as exc:
            raise OSError(str(exc)) from exc

    async def close(self) -> None:
        """Close the client session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
