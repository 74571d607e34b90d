"""The demo organisation `crm dev` creates once and reuses: an owner and a ready API key."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select

from app.db import Database
from app.domain.auth import api_keys
from app.domain.auth import service as auth_service
from app.domain.auth.models import LoginEmail, Role
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import ApiKeyCreate
from app.domain.errors import Unauthorized
from app.settings import Settings

DEMO_EMAIL = "owner@demo.example.com"


@dataclass
class DemoCredentials:
    org_id: str
    email: str
    password: str
    api_key: str


async def create_org_with_key(db: Database, settings: Settings, org_name: str, email: str, name: str,
                              password: str | None, key_name: str = "default") -> tuple[str, str, str]:
    """-> (org id, owner id, API key with every scope)."""
    async with db.sessions.begin() as session:
        org, owner = await auth_service.provision_org(session, settings, org_name, email, name, password)
        who = Principal.for_user(org.id, owner.id, owner.role)
        _, secret = await api_keys.create(session, who, ApiKeyCreate(name=key_name, scopes=["*"]))
        return str(org.id), str(owner.id), secret


async def ensure_demo(db: Database, settings: Settings) -> DemoCredentials:
    path = settings.data_dir / "demo-credentials.json"
    if path.exists():
        saved = DemoCredentials(**json.loads(path.read_text()))
        async with db.sessions.begin() as session:
            try:
                await auth_service.resolve_bearer(session, settings, saved.api_key)
                return saved
            except Unauthorized:
                pass  # revoked since: make a new key below
            org_id = await session.scalar(select(LoginEmail.org_id).where(LoginEmail.email == saved.email))
            owner_id = await session.scalar(select(LoginEmail.user_id).where(LoginEmail.email == saved.email))
            if org_id is not None:
                who = Principal.for_user(org_id, owner_id, Role.owner)
                _, saved.api_key = await api_keys.create(session, who, ApiKeyCreate(name="demo", scopes=["*"]))
                _write(path, saved)
                return saved
    password = secrets.token_urlsafe(12)
    org_id, _, key = await create_org_with_key(db, settings, "Demo Sales", DEMO_EMAIL, "Demo Owner", password, "demo")
    creds = DemoCredentials(org_id=org_id, email=DEMO_EMAIL, password=password, api_key=key)
    _write(path, creds)
    return creds


def _write(path: Path, creds: DemoCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(creds), f, indent=2)
