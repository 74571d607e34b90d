"""Shared pydantic building blocks: strict input models, readable output models, normalised values."""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class InputModel(BaseModel):
    """Request bodies: unknown fields are an error (422), strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def normalize_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


Email = Annotated[
    str,
    Field(min_length=3, max_length=320, examples=["ana@example.com"]),
    AfterValidator(normalize_email),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
