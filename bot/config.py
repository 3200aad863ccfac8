"""Configuration: one pydantic-settings class, from ``SICHENG_...`` environment variables and ``.env``."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TELEGRAM_API = "https://api.telegram.org"
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram allows in a webhook's secret_token
# The update kinds bot.channels.translate turns into something to handle; a webhook asks Telegram for these only.
HANDLED_UPDATES = ("message", "callback_query", "poll_answer")


class TelegramSettings(BaseModel):
    token: SecretStr | None = None
    # Any Bot API server: Telegram's, a self-hosted telegram-bot-api server, or the sandbox emulator.
    api_url: str = TELEGRAM_API
    channel: str = Field("aiogram", pattern="^(aiogram|ptb)$")
    # Seconds between polls when long polling fails (network down, 5xx).
    poll_timeout: int = 30
    group_per_minute: int = 20
    chat_per_second: float = 1.0
    # Telegram's free broadcast limit for one token, shared by every process (Redis) — lower it to leave headroom.
    bot_per_second: int = 30


class DatabaseSettings(BaseModel):
    url: str = "sqlite+aiosqlite:///./sicheng.db"
    echo: bool = False
    pool_size: int = 10

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class RedisSettings(BaseModel):
    # Empty: single process, in-memory locks. Required by `sicheng worker` / `sicheng intake` (several workers).
    url: str | None = None
    # Start of every key (streams, locks, leases); several bots or test runs on one Redis use different ones.
    prefix: str = Field("sicheng", pattern=r"^[A-Za-z0-9_.:-]{1,40}$")


class LocaleSettings(BaseModel):
    default: str = Field("zh_Hans", pattern="^(zh_Hans|en)$")
    timezone: str = "Asia/Shanghai"


class SandboxSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    database: str = "sqlite+aiosqlite:///./sicheng-sandbox.db"


class WebhookSettings(BaseModel):
    """``sicheng run --webhook``: Telegram posts updates to ``url`` (HTTPS, at a TLS-terminating proxy), which forwards
    them to ``host:port`` + ``path`` where the bot listens in plain HTTP."""

    url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8081, ge=0, le=65535)
    path: str = Field("/telegram/webhook", pattern="^/")
    # Telegram sends it back in X-Telegram-Bot-Api-Secret-Token; 1-256 of A-Za-z0-9_- (checked at start, never echoed).
    # Unset: derived from the token (stable across restarts and processes, see bot.channels.webhook.derive_secret).
    secret: SecretStr | None = None
    max_connections: int = Field(40, ge=1, le=100)
    # Any other kind would only cost a request and an inbox row.
    allowed_updates: list[str] = Field(default_factory=lambda: list(HANDLED_UPDATES))
    max_body: int = Field(1024 * 1024, ge=1024)


class FilesSettings(BaseModel):
    # Where residents' photos are kept (metadata stripped). A local folder by default; back it up.
    root: Path = Path("./media")


class MetricsSettings(BaseModel):
    """``GET /metrics`` in Prometheus' text format (docs/operations.md). Port 0: off. Keep it on a private address."""

    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)


class DashboardSettings(BaseModel):
    """The organisers' web dashboard (docs/operations.md). ``port`` unset: ``sicheng run`` does not serve it
    (``sicheng dashboard`` still can). ``url``: the public base URL the bot's login links start with (HTTPS behind
    the TLS proxy; the session cookie is marked Secure then)."""

    port: int | None = Field(None, ge=0, le=65535)
    host: str = "127.0.0.1"
    url: str = ""
    session_hours: float = Field(8, gt=0)
    link_minutes: float = Field(10, gt=0)


class Settings(BaseSettings):
    """Everything configurable. Nested groups use ``__``: ``SICHENG_TELEGRAM__TOKEN``."""

    model_config = SettingsConfigDict(env_prefix="SICHENG_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    telegram: TelegramSettings = TelegramSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    locale: LocaleSettings = LocaleSettings()
    sandbox: SandboxSettings = SandboxSettings()
    webhook: WebhookSettings = WebhookSettings()
    files: FilesSettings = FilesSettings()
    metrics: MetricsSettings = MetricsSettings()
    dashboard: DashboardSettings = DashboardSettings()
    content_dir: Path | None = None
    log_level: str = "INFO"
    # "json": one JSON object a line (time, level, logger, message, update_id, user_id, exception).
    log_format: str = Field("text", pattern="^(text|json)$")
