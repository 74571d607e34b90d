"""One typed settings class, read from `CRM_*` environment variables and `.env`."""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["dev", "test", "production"]
JWT_ALGORITHMS = ("HS256", "HS384", "HS512")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", env_file=".env", extra="ignore")

    env: Environment = Field("production", description="dev and test relax secrets; production requires them")
    database_url: str | None = Field(None, description="postgresql+asyncpg://...; unset in dev = embedded")
    database_admin_url: str | None = Field(
        None, description="URL used by migrations (the role owning the tables); defaults to database_url. When it "
                          "differs, `crm migrate` grants the database_url role what the API needs on every table")
    database_sweep_url: str | None = Field(
        None, description="URL of the worker's sweeps over every org (outbox, timers, birthdays, retention): a role "
                          "with BYPASSRLS (or a superuser); defaults to database_admin_url")
    database_replica_url: str | None = Field(
        None, description="a read replica for reports (read-only transactions); unset = the primary")
    redis_url: str | None = Field(None, description="redis://... or unix://...; unset in dev = embedded")
    data_dir: Path = Path(".crm-data")

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "headless-crm"
    access_token_ttl_seconds: int = Field(900, ge=60)
    refresh_token_ttl_days: int = Field(30, ge=1)
    argon2_time_cost: int = Field(3, ge=1, description="argon2id passes (RFC 9106 second recommendation)")
    argon2_memory_kib: int = Field(65_536, ge=8, description="argon2id memory in KiB")

    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Fernet keys sealing stored credentials (mailbox passwords, OAuth tokens), "
                                          "comma-separated: the first seals, every one opens (rotation: put the new "
                                          "key first). Unset: a key derived from CRM_JWT_SECRET")

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_origin_regex: str | None = Field(
        None, description="origins allowed by a regular expression (full match); `crm dev` sets one for "
                          "http://localhost:* and http://127.0.0.1:*")
    signup_enabled: bool = True
    log_level: str = "INFO"
    log_json: bool = True

    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest accepted request body")
    db_pool_size: int = Field(10, ge=1)
    db_max_overflow: int = Field(10, ge=0)
    db_statement_timeout_ms: int = Field(30_000, ge=0)
    db_statement_cache_size: int = Field(
        100, ge=0, description="prepared statements cached per connection (asyncpg and SQLAlchemy); 0 behind "
                               "PgBouncer in transaction mode without max_prepared_statements")
    api_key_touch_seconds: int = Field(60, ge=0, description="how often last_used_at of a key is written")
    allow_private_networks: bool = False

    # Background work. Every timing is a setting so tests run in seconds with production defaults untouched.
    outbox_sweep_seconds: float = Field(5, gt=0, description="how often pending events are re-enqueued")
    outbox_sweep_grace_seconds: float = Field(2, ge=0, description="age before the sweeper takes an event")
    webhook_timeout_seconds: float = Field(10, gt=0)
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 86400],
        description="seconds before each retry; comma-separated in the environment")
    webhook_retry_jitter: float = Field(0.1, ge=0, le=1, description="± fraction added to each retry delay")
    webhook_disable_after_seconds: float = Field(5 * 86400, gt=0, description="failing this long disables")
    reminder_sweep_seconds: float = Field(30, gt=0)
    birthday_sweep_seconds: float = Field(900, gt=0)
    birthday_hour: int = Field(9, ge=0, le=23, description="local hour of contact.birthday events")
    worker_job_timeout_seconds: float = Field(300, gt=0, description="a job running longer is retried")
    worker_max_jobs: int = Field(20, ge=1)
    worker_heartbeat_seconds: float = Field(5, gt=0, description="how often a worker says it is alive (/readyz)")
    worker_reconnect_min_seconds: float = Field(1, gt=0, description="first wait before reconnecting to Redis")
    worker_reconnect_max_seconds: float = Field(30, gt=0, description="longest wait between reconnect attempts")
    worker_shutdown_grace_seconds: float = Field(30, ge=0, description="jobs in flight may finish this long on stop")

    idempotency_ttl_seconds: int = Field(86_400, ge=60, description="how long Idempotency-Key answers are kept")
    idempotency_running_seconds: int = Field(
        30, ge=1, description="a key's 'running' mark lasts this long past its request's last sign of life "
                              "(renewed while it runs): a process killed mid-request frees the key within it")
    events_retention_days: int = Field(30, ge=1, description="the changes feed keeps events this long")
    audit_retention_days: int = Field(365, ge=1, description="the audit log keeps rows this long")
    form_spam_retention_days: int = Field(30, ge=1, description="dropped form submissions (honeypot, too fast, "
                                                                "rate limited) are kept this long")

    # Password logins: failures per account (and, higher, per client IP) within a window lock further logins.
    login_max_failures: int = Field(5, ge=1, description="failed logins of one account within the window that lock it")
    login_failure_window_seconds: int = Field(900, ge=1, description="the window failed logins are counted in")
    login_lockout_seconds: int = Field(60, ge=1, description="first lock; each further failure doubles it")
    login_lockout_max_seconds: int = Field(3600, ge=1, description="longest lock")
    login_max_failures_per_ip: int = Field(
        100, ge=1, description="failed logins from one client IP within the window that lock logins from it")
    # Request rate limits (fixed windows in Redis; every limited response carries RateLimit-* headers).
    rate_limit_per_credential: int = Field(
        1200, ge=1, description="requests per API key, personal token or user login per rate-limit window")
    rate_limit_auth_per_ip: int = Field(
        30, ge=1, description="requests to /v1/auth/* (signup, token, refresh, logout) per client IP per window")
    rate_limit_window_seconds: int = Field(60, ge=1, description="length of a rate-limit window")
    changes_max_wait_seconds: float = Field(30, ge=0)

    import_max_bytes: int = Field(1 << 30, ge=1024, description="largest import upload")

    # Files attached to records (POST /v1/files).
    max_file_mb: int = Field(25, ge=1, description="largest file upload in MiB (413 above)")
    files_url: str | None = Field(None, description=(
        "where uploaded files are kept: unset = CRM_DATA_DIR/files; `s3://bucket/prefix?endpoint=...&region=...` "
        "= an S3-compatible bucket (credentials in the URL or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"))

    # Public lead forms.
    form_rate_limit: int = Field(10, ge=1, description="submissions per form and client IP per window")
    form_rate_window_seconds: int = Field(60, ge=1)
    form_max_body_bytes: int = Field(65_536, ge=1024, description="largest accepted form submission")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="addresses or CIDRs whose X-Forwarded-For is believed, comma-separated")
    public_url: str | None = Field(None, description="base URL of this API as browsers reach it (embed snippets)")

    # Mail.
    mail_sync_seconds: float = Field(60, gt=0, description="how often each mailbox is synced")
    automation_max_depth: int = Field(5, ge=0, le=100, description=(
        "automation chains deeper than this stop (`failed`, reason `loop`)"))
    automation_sweep_seconds: float = Field(60, gt=0, description="how often scheduled rules are checked")
    automation_catch_up_days: int = Field(7, ge=0, le=366, description=(
        "date rules whose moment passed while no worker ran fire late, up to this many days"))
    clock_offset_seconds: float = Field(0, description=(
        "moves the clock of scheduled rules (tests and drills); 0 in production"))
    mail_sweep_seconds: float = Field(5, gt=0, description="how often the worker looks for mailboxes and emails due")
    mail_timeout_seconds: float = Field(30, gt=0, description="IMAP and SMTP connect and command timeout")
    mail_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [60, 300, 1800, 7200, 21600],
        description="seconds before each retry of an email whose SMTP server failed temporarily (then failed)")
    document_link_ttl_seconds: int = Field(7 * 86400, ge=60, description=(
        "how long a shared document link (POST /v1/documents/{id}/share) opens the PDF"))
    oauth_token_urls: dict[Literal["google", "microsoft"], str] = Field(
        default_factory=dict, description="OAuth2 token endpoints replacing the providers' own, as JSON "
                                          '(`{"google": "https://..."}`): a proxy, or a test\'s token server')

    @field_validator("cors_origins", "webhook_retry_schedule", "trusted_proxies", "secret_keys", "mail_retry_schedule",
                     mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("files_url")
    @classmethod
    def _files_url(cls, value: str | None) -> str | None:
        if value:
            parts = urlsplit(value)
            if parts.scheme != "s3" or not parts.netloc.rpartition("@")[2]:
                raise ValueError("CRM_FILES_URL must be s3://bucket/prefix?endpoint=...&region=... (or unset: the "
                                 "data dir)")
        return value or None

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _require_secrets_outside_dev(self) -> Settings:
        if self.env == "production":
            if self.jwt_secret is None or len(self.jwt_secret.get_secret_value()) < 32:
                raise ValueError("CRM_JWT_SECRET (at least 32 characters) is required when CRM_ENV=production")
            if not self.database_url or not self.redis_url:
                raise ValueError("CRM_DATABASE_URL and CRM_REDIS_URL are required when CRM_ENV=production")
        return self

    @property
    def migration_url(self) -> str:
        url = self.database_admin_url or self.database_url
        if url is None:
            raise RuntimeError("no database URL configured")
        return url

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb << 20

    @property
    def sweep_url(self) -> str:
        return self.database_sweep_url or self.migration_url

    def jwt_key(self) -> str:
        """The signing secret; in dev and test a random one is generated once and kept in the data dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        secret = path.read_text().strip()
        self.jwt_secret = SecretStr(secret)
        return secret


@lru_cache
def get_settings() -> Settings:
    return Settings()
