from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from app.domain.base import Base
from app.ids import new_id


class Xid8(UserDefinedType):
    """PostgreSQL's 64-bit transaction id: ties an org's events to the commit that wrote them.
    Read as an int (asyncpg returns xid8 as text)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        return lambda value: None if value is None else int(value)


class Event(Base):
    """One state change, written in the same transaction as the change (the outbox)."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "org_id", "txid", "id"),
        Index(None, "org_id", "object_type", "object_id", "occurred_at"),
        Index(None, "occurred_at"),
        Index("ix_events_undispatched", "occurred_at", postgresql_where=text("dispatched_at IS NULL")),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    txid: Mapped[int] = mapped_column(Xid8(), server_default=text("pg_current_xact_id()"))
    type: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[UUID] = mapped_column()
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int | None] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    dispatched_at: Mapped[datetime | None] = mapped_column()  # set once consumers got it (the relay's mark)


class EventPosition(Base):
    """An org's commit counter: the last commit position handed out (see events.service: stamped at commit)."""

    __tablename__ = "event_positions"

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class EventCommit(Base):
    """One committed transaction that wrote events of the org, at its position in the org's commit order.
    The changes feed reads an org's events in (seq, event id) order."""

    __tablename__ = "event_commits"

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    txid: Mapped[int] = mapped_column(Xid8())
    committed_at: Mapped[datetime] = mapped_column(server_default=func.clock_timestamp())


# Let reflection (alembic's compare) recognise the column type.
from sqlalchemy.dialects.postgresql.base import ischema_names  # noqa: E402

ischema_names["xid8"] = Xid8
