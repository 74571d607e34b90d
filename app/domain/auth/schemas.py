from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, Field

from app.domain.auth.models import Role
from app.domain.auth.passwords import check_password
from app.domain.auth.scopes import KNOWN_SCOPES
from app.domain.auth.secrets import MIN_PASSWORD_LENGTH
from app.domain.orgs.schemas import OrgRead
from app.domain.schemas import Email, InputModel, Instant, Name, ReadModel

Password = Annotated[
    str,
    Field(min_length=MIN_PASSWORD_LENGTH, max_length=256, examples=["correct horse battery"],
          description=f"at least {MIN_PASSWORD_LENGTH} characters; not a common password, one repeated character "
                      "or a simple sequence"),
    AfterValidator(check_password),
]


def _scope(value: str) -> str:
    if value not in KNOWN_SCOPES:
        raise ValueError(f"unknown scope {value!r}; use '*' or '<area>:read' / '<area>:write'")
    return value


Scope = Annotated[str, Field(examples=["contacts:read"], json_schema_extra={"enum": sorted(KNOWN_SCOPES)}),
                  AfterValidator(_scope)]


class SignupRequest(InputModel):
    model_config = {
        "json_schema_extra": {
            "examples": [{"org_name": "Acme Sales", "email": "ana@example.com", "password": "correct horse battery",
                          "name": "Ana Silva"}]
        }
    }

    org_name: Name
    email: Email
    password: Password
    name: Name


class TokenPair(ReadModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")


class RefreshRequest(InputModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class UserRead(ReadModel):
    id: UUID
    email: str
    name: str
    role: Role
    manager_id: UUID | None
    active: bool
    out_of_office: bool
    last_login_at: datetime | None
    deactivated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class SignupResponse(TokenPair):
    org: OrgRead
    user: UserRead


class UserInvite(InputModel):
    model_config = {
        "json_schema_extra": {"examples": [{"email": "rep@example.com", "name": "Rui Costa", "role": "member"}]}
    }

    email: Email
    name: Name
    role: Role = Role.member
    password: Password | None = Field(None, description="set an initial password; without one the user cannot log in yet")
    manager_id: UUID | None = None


class UserUpdate(InputModel):
    """JSON Merge Patch. Users may change their own `name` and `out_of_office`; the rest is admin-only."""

    name: Name | None = None
    email: Email | None = None
    role: Role | None = None
    manager_id: UUID | None = None
    out_of_office: bool | None = None


class PasswordChange(InputModel):
    """`current` proves who you are; with an access token (accepted even when the password expired) `email` is
    not needed, without one it names the account."""

    model_config = {"json_schema_extra": {"examples": [{"current": "correct horse battery",
                                                          "new": "staple battery horse correct"}]}}

    email: Email | None = Field(None, description="the account, when calling without an access token")
    current: str = Field(min_length=1, max_length=256)
    new: Password


class DeactivateRequest(InputModel):
    reassign_to: UUID | None = Field(None, description="active user who takes over the leaving user's records")


class ApiKeyCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{"name": "ERP sync", "scopes": ["contacts:write", "deals:read"]}]}}

    name: Name
    scopes: list[Scope] = Field(min_length=1, max_length=len(KNOWN_SCOPES))
    expires_at: Instant | None = None


class ApiKeyRead(ReadModel):
    id: UUID
    name: str
    prefix: str = Field(description="public part of the key, to recognise it")
    scopes: list[str]
    created_by: UUID
    created_at: datetime
    last_used_at: datetime | None
    last_used_ip: str | None = Field(description="the client address of the last use")
    expires_at: AwareDatetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="the full key; shown only in this response", examples=["crm_1a2b3c4d5e6f_..."])


class PersonalTokenCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [
        {"name": "Phone", "scopes": ["contacts:write", "activities:write"], "expires_at": "2027-06-30T00:00:00Z"}]}}

    name: Name
    scopes: list[Scope] = Field(min_length=1, max_length=len(KNOWN_SCOPES),
                                description="at most the scopes of the credential creating it")
    expires_at: Instant | None = Field(None, description="null: until revoked")


class PersonalTokenRead(ReadModel):
    id: UUID
    name: str
    prefix: str = Field(description="public part of the token, to recognise it")
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    last_used_ip: str | None = Field(description="the client address of the last use")
    expires_at: AwareDatetime | None


class PersonalTokenCreated(PersonalTokenRead):
    secret: str = Field(description="the full token; shown only in this response", examples=["crm_1a2b3c4d5e6f_..."])


class PasswordSet(InputModel):
    password: Password


class Caller(ReadModel):
    type: Literal["user", "api_key"]
    id: UUID = Field(description="the user's or the API key's id")
    org_id: UUID
    role: Role
    scopes: list[str]


class MeResponse(ReadModel):
    type: Literal["user", "api_key"]
    role: Role
    scopes: list[str]
    org: OrgRead
    user: UserRead | None
    api_key: ApiKeyRead | None
