"""One typed settings object, read from ``LEADSTAGE_*`` environment variables, built once and injected."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADSTAGE_", extra="ignore")

    database_url: str = Field(
        default="./leadstage.db",
        description="SQLAlchemy URL or a SQLite file path; postgresql:// uses psycopg 3.",
    )
    default_timezone: str = Field(
        default="UTC", description="Zone that naive timestamps in files are read in."
    )
    date_day_first: bool = Field(
        default=True, description="Read 03/04/2026 as 3 April (True) or March 4 (False)."
    )
    default_phone_region: str = Field(
        default="US", description="Region for phone numbers without a country code."
    )
    email_strip_plus: bool = Field(default=True, description="jane+news@acme.com matches jane@acme.com.")
    email_gmail_dots: bool = Field(default=True, description="j.ane@gmail.com matches jane@gmail.com.")
    auto_create_accounts: bool = Field(
        default=True, description="Create an account for a new company email domain."
    )
    import_batch_rows: int = Field(
        default=50_000, ge=100, le=1_000_000, description="Rows per committed batch on the bulk import path."
    )
    incremental_scoring: bool = Field(
        default=True, description="Score leads and activities as they are imported (when a model is active)."
    )
    qualification_file: str | None = Field(
        default=None,
        description="YAML of qualification frameworks (MEDDIC, CHAMP, a BANT policy of your own) and which "
        "team uses which; unset: BANT with all four criteria confirmed.",
    )
    max_request_bytes: int = Field(
        default=5_000_000, ge=1_000, description="Largest request body the server accepts (larger: 413)."
    )
    capture_rate_per_minute: int = Field(
        default=30, ge=1, description="Form posts accepted per minute from one address (more: 429)."
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for e-mail notifications; unset: no e-mail is sent."
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port.")
    smtp_from: str = Field(default="leadstage@localhost", description="Sender address of notifications.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_user: str | None = Field(default=None, description="SMTP login (with SMTP_PASSWORD).")
    smtp_password: str | None = Field(default=None, description="SMTP password.")
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="How long a web login lasts.")
    secure_cookies: bool = Field(
        default=False,
        description="Mark session cookies Secure (set it when serving over HTTPS, e.g. behind a proxy).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="`serve`'s logs: text lines, or one JSON object per line (`json`)."
    )
    host: str = Field(default="127.0.0.1", description="Address `leadstage serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `leadstage serve` listens on.")
    tick_seconds: float = Field(
        default=60.0,
        ge=0,
        description="`leadstage serve` runs `tick` (SLAs, hand-off queue) this often; 0 turns it off.",
    )
    follow_up_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="`serve` scores activities received in API batches (and updates their attribution "
        "credits) this long after they arrive, all batches since the last run at once.",
    )
    follow_up_process: bool = Field(
        default=True,
        description="`serve` on a SQLite database file runs those follow-ups in a process of its own, beside "
        "the one answering requests (ADR 25); off: in a thread of the server's process.",
    )
    token_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="`serve` trusts a checked API token this long without reading it again: a token revoked "
        "(or a user deactivated) from another process stops working within it; 0 reads every time.",
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="Processes `leadstage serve` starts (each answers requests)."
    )
    lease_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="How long a server's claim on running the background loop lasts unless renewed; a "
        "server that stopped is replaced by another within about this long.",
    )
    secret_file: str | None = Field(
        default=None,
        description="The session signing key file; unset: beside a SQLite database file "
        "(`leadstage.db.secret`); required for PostgreSQL.",
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
            ) from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.default_timezone)
