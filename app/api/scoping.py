"""What a credential may read across kinds: routes that reach records of several kinds (the changes feed,
webhook subscriptions) check each kind's own read scope, not only their area's."""

from __future__ import annotations

from collections.abc import Iterable

from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.auth.scopes import ALL, grants
from app.domain.errors import Forbidden

FEED_TYPES = kinds.names("feed")


def read_scope(object_type: str) -> str | None:
    """`contacts:read` for `contact`; None for what is no record kind."""
    kind = kinds.BY_TYPE.get(object_type)
    return f"{kind.scope_area}:read" if kind is not None else None


def missing_read_scopes(who: Principal, object_types: Iterable[str]) -> list[str]:
    return sorted({s for t in object_types if (s := read_scope(t)) is not None and not grants(who.scopes, s)})


def refuse_unreadable(who: Principal, object_types: Iterable[str], what: str) -> None:
    """403 naming the read scopes `who` lacks for `object_types`."""
    missing = missing_read_scopes(who, object_types)
    if missing:
        raise Forbidden(f"{what} needs the scopes {', '.join(missing)} as well", missing_scopes=missing)


def readable_feed_types(who: Principal) -> list[str] | None:
    """The feed's object types `who` may read; None when that is all of them (and whatever is no kind)."""
    if ALL in who.scopes:
        return None
    return [t for t in FEED_TYPES if not missing_read_scopes(who, [t])]


def event_object_types(patterns: Iterable[str]) -> set[str]:
    """The record kinds that event patterns (`deal.*`, `contact.created`, `*`) reach."""
    out: set[str] = set()
    for pattern in patterns:
        out.update(FEED_TYPES if pattern == "*" else [pattern.partition(".")[0]])
    return out
