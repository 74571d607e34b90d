"""Filters that name a user (`owner_id`, `assignee_id`, `actor_id`) also take `me`: the calling user, or for an
API key the user who created it. A phone app asks for "my open tasks" without first looking up its own id."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from app.domain.auth.principal import Principal
from app.domain.errors import ValidationFailed


def _one_error(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One error on the parameter itself rather than one per member of the union."""
    try:
        return handler(value)
    except ValidationError:
        raise ValueError("expected a user id (UUID) or `me`") from None


UserRef = Annotated[UUID | Literal["me"], WrapValidator(_one_error)]
ME_DOC = "a user id, or `me` for the caller (for an API key: the user who created it)"


def user_id_of(value: UserRef | None, who: Principal, name: str) -> UUID | None:
    """The id a user filter stands for; `me` without a user behind the caller is a 422 on that parameter."""
    if value != "me":
        return value
    if who.user_id is None:
        raise ValidationFailed(f"{name}=me: this caller acts for no user", loc=("query", name))
    return who.user_id
