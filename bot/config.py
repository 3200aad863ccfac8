"""Configuration: one pydantic-settings class, from ``SICHENG_...`` environment variables and ``.env``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TELEGRAM_API = "https://api.telegram.org"


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
    # Empty: single process, in-memory locks and SQL dialog state. Set it when running several workers.
    url: str | None = None


class LocaleSettings(BaseModel):
    default: str = Field("zh_Hans", pattern="^(zh_Hans|en)$")
    timezone: str = "Asia/Shanghai"


class SandboxSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    database: str = "sqlite+aiosqlite:///./sicheng-sandbox.db"


class FilesSettings(BaseModel):
    # Where residents' photos are kept (metadata stripped). A local folder by default; back it up.
    root: Path = Path("./media")


class Settings(BaseSettings):
    """Everything configurable. Nested groups use ``__``: ``SICHENG_TELEGRAM__TOKEN``."""

    model_config = SettingsConfigDict(env_prefix="SICHENG_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    telegram: TelegramSettings = TelegramSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    locale: LocaleSettings = LocaleSettings()
    sandbox: SandboxSettings = SandboxSettings()
    files: FilesSettings = FilesSettings()
    content_dir: Path | None = None
    log_level: str = "INFO"
