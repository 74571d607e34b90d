"""What a database failure means for the client, decided by PostgreSQL's SQLSTATE class.

- class 22 (data exception) and 23 (integrity violation): the request is wrong → 422 naming the column
  or constraint when the server names one; a unique violation is a duplicate → 409.
- 40001 / 40P01 (serialization failure, deadlock): the transaction lost a race → the unit of work is run
  once more (app.api.retry), then 409.
- 57014 (statement timeout): 503 with Retry-After.
- connection loss (class 08, 57P0x shutdowns, a closed connection, a socket error while connecting): 503.
- anything else (a bug, a missing table) is not the client's to retry: None → 500.

The server's message is logged, never sent: it may quote the data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from sqlalchemy.exc import DisconnectionError, StatementError

RETRY_AFTER_UNAVAILABLE = 1
RETRY_AFTER_TIMEOUT = 5
_KEY_COLUMNS = re.compile(r"^Key \(([^)]*)\)")
_TENANT_KEY = "org_id"


@dataclass(frozen=True)
class DatabaseProblem:
    status: int
    slug: str
    title: str
    detail: str
    retry_after: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    extensions: dict[str, Any] = field(default_factory=dict)
    transient: bool = False  # the same request may succeed when run again (lost a race)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raised_by_driver(exc: BaseException) -> bool:
    """The exception passed through the database driver or SQLAlchemy (a socket error while connecting)."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "sqlalchemy")):
            return True
        tb = tb.tb_next
    return False


def _server_error(exc: BaseException) -> Any:
    """asyncpg's exception (it carries sqlstate, column_name, constraint_name, detail), if any."""
    for link in _chain(exc):
        if isinstance(link, asyncpg.PostgresError):
            return link
    return None


def server_message(exc: BaseException) -> str | None:
    """The first line of PostgreSQL's own message (it names the problem, never the parameters), if any."""
    server = _server_error(exc)
    return (str(server).splitlines() or [""])[0][:300] if server is not None else None


def _sqlstate(exc: BaseException) -> str | None:
    for link in _chain(exc):
        state = getattr(link, "sqlstate", None)
        if isinstance(state, str) and len(state) == 5:
            return state
    return None


def _fields(server: Any) -> list[str]:
    """Columns the server names: `column_name`, or the key of a unique / foreign key violation."""
    if server is None:
        return []
    column = getattr(server, "column_name", None)
    if column:
        return [column]
    match = _KEY_COLUMNS.match(getattr(server, "detail", None) or "")  # "Key (org_id, email)=(...)": names only
    if match:
        return [c.strip() for c in match.group(1).split(",") if c.strip() and c.strip() != _TENANT_KEY]
    return []


def _unavailable() -> DatabaseProblem:
    return DatabaseProblem(503, "unavailable", "Service unavailable",
                           "The database is unreachable right now; retry shortly", RETRY_AFTER_UNAVAILABLE)


def _invalid(fields: list[str], constraint: str | None, why: str) -> DatabaseProblem:
    named = ", ".join(fields) or constraint
    detail = f"{why}: {named}" if named else why
    errors = [{"loc": ["body", f], "msg": why, "type": "value_error"} for f in fields] or \
        [{"loc": ["body"], "msg": detail, "type": "value_error"}]
    return DatabaseProblem(422, "validation", "Validation failed", detail, errors=errors,
                           extensions={"constraint": constraint} if constraint else {})


def _by_sqlstate(state: str, exc: BaseException) -> DatabaseProblem | None:
    server = _server_error(exc)
    constraint = getattr(server, "constraint_name", None)
    if state in ("40001", "40P01"):
        return DatabaseProblem(409, "transaction-conflict", "Transaction conflict",
                               "The request collided with a concurrent one and was rolled back; send it again",
                               transient=True)
    if state == "57014":
        return DatabaseProblem(503, "timeout", "Timed out", "The database did not answer in time; retry later",
                               RETRY_AFTER_TIMEOUT)
    if state[:2] == "08" or state in ("57P01", "57P02", "57P03", "25P03", "53300"):
        return _unavailable()
    if state[:2] == "53" or state in ("55P03", "25006"):  # out of resources, lock timeout, read-only server
        return _unavailable()
    if state == "23505":
        fields = _fields(server)
        return DatabaseProblem(409, "conflict", "Conflict",
                               f"A record with the same {', '.join(fields) or 'key'} already exists",
                               extensions={"fields": fields or None, "constraint": constraint})
    if state[:2] == "23":
        return _invalid(_fields(server), constraint, "The value conflicts with a rule of the data")
    if state[:2] == "22":
        return _invalid(_fields(server), constraint, "A value cannot be stored (out of range, too long or malformed)")
    return None


def classify(exc: BaseException) -> DatabaseProblem | None:
    """The problem to answer for a database failure; None when `exc` is not one (or is our own bug)."""
    state = _sqlstate(exc)
    if state is not None:
        return _by_sqlstate(state, exc)
    for link in _chain(exc):
        if isinstance(link, DisconnectionError) or getattr(link, "connection_invalidated", False):
            return _unavailable()
        if isinstance(link, asyncpg.InterfaceError):
            if isinstance(link, ValueError):  # the driver refused a parameter before sending it
                return _invalid([], None, "A value cannot be stored (out of range, too long or malformed)")
            if "closed" in str(link):  # "connection is closed": lost before or during the statement
                return _unavailable()
        if isinstance(link, OSError | ConnectionError) and _raised_by_driver(link):
            return _unavailable()
    if isinstance(exc, StatementError) and _unencodable(exc.orig):
        return _invalid([], None, "A value cannot be stored (out of range or not valid text)")
    return None


def _unencodable(exc: BaseException | None) -> bool:
    """A parameter the driver or the JSON encoder could not turn into bytes: text that is not UTF-8
    (an unpaired surrogate) or a number beyond 64 bits. Any other encoding failure is a bug of ours."""
    if isinstance(exc, UnicodeError | OverflowError):
        return True
    return isinstance(exc, orjson.JSONEncodeError) and ("surrogates" in str(exc) or "64-bit" in str(exc))
