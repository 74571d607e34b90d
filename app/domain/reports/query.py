"""What every report statement is built from: the parameters a report is asked for, and the fragments of SQL
that hold for all of them (the org's time zone and currency, the period's bounds, the readable rule, the
pipeline, owner, team and source filters, the 404 checks that ride in the statement itself).

Values never go into the text: `Sql.bind` collects them as bound parameters, so the text of a statement depends
only on which filters are given, never on their values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import TextClause, text
from sqlalchemy.dialects import postgresql

from app.domain.errors import NotFound
from app.domain.kinds import DEAL, LEAD, PIPELINE, TEAM, Reader, reader_params
from app.domain.schemas import Money, amount_places

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ReportParams:
    """What a report is asked for. `None` means no filter (for `currency`: the org's default currency).
    `group_by` is one of the report's own groupings (see each report's endpoint)."""

    who: Reader  # the caller: reports read only what they may read
    date_from: date | None = None
    date_to: date | None = None
    pipeline_id: UUID | None = None
    owner_id: UUID | None = None
    currency: str | None = None
    source: str | None = None
    group_by: str | None = None
    team_id: UUID | None = None


# Calendar periods: how a local timestamp or date is labelled, and where its period starts.
PERIOD_LABELS = {"month": "YYYY-MM", "week": 'IYYY-"W"IW', "day": "YYYY-MM-DD"}


def period_label(unit: str, local: str) -> str:
    """`YYYY-MM` for a month, the ISO week `YYYY-Www` for a week, of a local timestamp or date expression."""
    return f"to_char({local}, '{PERIOD_LABELS[unit]}')"


class Sql:
    """Collects the bound parameters while a statement's text is put together from fixed fragments."""

    def __init__(self, p: ReportParams) -> None:
        self.p = p
        self.binds: dict[str, Any] = reader_params(p.who)

    def bind(self, name: str, value: Any) -> str:
        self.binds[name] = value
        return f":{name}"

    # --- the org and the period ---------------------------------------------------------------------------

    def org_cte(self, timestamps: bool, today: bool = False) -> str:
        """`org`: the org's time zone, the report's currency and, for timestamp periods, the period's bounds
        as instants (`lo`: local midnight of `from`, `hi`: local midnight after `to`); with `today`, the org's
        current date."""
        p = self.p
        cols = ["o.timezone AS tz",
                f"CAST({self.bind('currency', p.currency)} AS varchar) AS currency" if p.currency
                else "o.default_currency AS currency"]
        if timestamps and p.date_from is not None:
            cols.append(f"CAST({self.bind('date_from', p.date_from)} AS date)::timestamp AT TIME ZONE o.timezone AS lo")
        if timestamps and p.date_to is not None:
            cols.append(f"(CAST({self.bind('date_to', p.date_to)} AS date) + 1)::timestamp AT TIME ZONE o.timezone"
                        " AS hi")
        if today:
            cols.append("(now() AT TIME ZONE o.timezone)::date AS today")
        return f"org AS (SELECT {', '.join(cols)} FROM orgs o WHERE o.id = :org_id)"

    def in_period(self, column: str) -> list[str]:
        """Conditions putting a timestamptz column in the period (bounds from `org`); none without bounds."""
        where = []
        if self.p.date_from is not None:
            where.append(f"{column} >= (SELECT lo FROM org)")
        if self.p.date_to is not None:
            where.append(f"{column} < (SELECT hi FROM org)")
        return where

    def span_cte(self, days: str) -> str:
        """`span`: the report's days as local dates, `first` from `from` (else the first of `days`, a query of
        local dates) and `last` from `to` (else the later of today and the last of `days`), with `label`, the
        span as an ISO 8601 interval `YYYY-MM-DD/YYYY-MM-DD` (null when there is no first day)."""
        p = self.p
        first = (f"CAST({self.bind('date_from', p.date_from)} AS date)" if p.date_from is not None
                 else f"(SELECT min(x) FROM ({days}) s(x))")
        last = (f"CAST({self.bind('date_to', p.date_to)} AS date)" if p.date_to is not None
                else f"greatest((SELECT today FROM org), (SELECT max(x) FROM ({days}) s(x)))")
        return (f"span AS (SELECT first, last, to_char(first, 'YYYY-MM-DD') || '/' || to_char(last, 'YYYY-MM-DD')"
                f" AS label FROM (SELECT {first} AS first, {last} AS last) b)")

    # --- whose records ------------------------------------------------------------------------------------

    def team_members(self) -> str:
        """The users of the asked-for team (a live team of the org; its members, not its manager)."""
        return (f"SELECT tm.user_id FROM team_members tm JOIN teams t ON {TEAM.readable_sql('t')}"
                " AND t.id = tm.team_id WHERE tm.org_id = :org_id"
                f" AND tm.team_id = {self.bind('team_id', self.p.team_id)}")

    def users(self, column: str) -> list[str]:
        """`owner_id` and `team_id` on the column that names a report's user."""
        where = []
        if self.p.owner_id is not None:
            where.append(f"{column} = {self.bind('owner_id', self.p.owner_id)}")
        if self.p.team_id is not None:
            where.append(f"{column} IN ({self.team_members()})")
        return where

    def deal_where(self, period: str | None, pipeline: str | None = None, *, money: bool = True,
                   by_pipeline: bool = True) -> str:
        """Conditions on `deals d`: org first, readable (live, visible), in the report's currency (money
        reports), the period on `period` (a timestamptz column), pipeline, owner, team and lead source."""
        p = self.p
        where = [DEAL.readable_sql("d")]
        if money:
            where.append("d.currency = :currency" if p.currency else "d.currency = (SELECT currency FROM org)")
        if period:
            where += self.in_period(f"d.{period}")
        if pipeline is not None:
            where.append(pipeline)
        elif by_pipeline and p.pipeline_id is not None:
            where.append(f"d.pipeline_id = {self.bind('pipeline_id', p.pipeline_id)}")
        where += self.users("d.owner_id")
        if p.source is not None:
            where.append(f"EXISTS (SELECT 1 FROM leads l WHERE {LEAD.readable_sql('l')} AND l.deal_id = d.id"
                         f" AND l.source = {self.bind('source', p.source)})")
        return " AND ".join(where)

    def lead_where(self, period: str | None) -> str:
        """Conditions on `leads l`: org first, readable, the period on `period`, owner, team and source."""
        where = [LEAD.readable_sql("l")]
        if period:
            where += self.in_period(f"l.{period}")
        where += self.users("l.owner_id")
        if self.p.source is not None:
            where.append(f"l.source = {self.bind('source', self.p.source)}")
        return " AND ".join(where)

    # --- the stages of one pipeline -------------------------------------------------------------------------

    def stages_cte(self) -> tuple[str, str]:
        """`stages` (id, name, position, kind): the live stages of the asked-for pipeline, else of the org's
        default pipeline; and the condition that puts `deals d` in that pipeline."""
        if self.p.pipeline_id is not None:
            pipe_id = self.bind("pipeline_id", self.p.pipeline_id)
            return (f"stages AS (SELECT s.id, s.name, s.position, s.kind FROM pipeline_stages s JOIN pipelines p"
                    f" ON {PIPELINE.readable_sql('p')} AND p.id = s.pipeline_id"
                    f" WHERE s.org_id = :org_id AND s.pipeline_id = {pipe_id} AND s.deleted_at IS NULL)",
                    f"d.pipeline_id = {pipe_id}")
        # a semi-join, not `= (SELECT ...)`: the planner then expects most of the org's deals rather than a
        # 1/n_distinct share, and joins the stage history by hash instead of one probe per deal
        default = f"SELECT p.id FROM pipelines p WHERE {PIPELINE.readable_sql('p')} AND p.is_default"
        return (f"pipe AS ({default}),\n"
                "stages AS (SELECT s.id, s.name, s.position, s.kind FROM pipeline_stages s"
                " WHERE s.org_id = :org_id AND s.pipeline_id = (SELECT id FROM pipe) AND s.deleted_at IS NULL)",
                f"d.pipeline_id IN ({default})")

    # --- 404 checks in the statement ------------------------------------------------------------------------

    def found(self) -> str:
        """Columns `pipeline_found` and `team_found`: 1 when the asked-for pipeline (team) is a live one of the
        org, or when none was asked for (see `check_found`)."""
        pipeline = team = "1"
        if self.p.pipeline_id is not None:
            pipeline = (f"(SELECT count(*) FROM pipelines p WHERE {PIPELINE.readable_sql('p')}"
                        f" AND p.id = {self.bind('pipeline_id', self.p.pipeline_id)})")
        if self.p.team_id is not None:
            team = (f"(SELECT count(*) FROM teams t WHERE {TEAM.readable_sql('t')}"
                    f" AND t.id = {self.bind('team_id', self.p.team_id)})")
        return f"{pipeline} AS pipeline_found, {team} AS team_found"

    def statement(self, sql: str) -> TextClause:
        return text(sql).bindparams(**self.binds)


def check_found(row: Any) -> None:
    if not row["pipeline_found"]:
        raise NotFound("Pipeline not found")
    if not row["team_found"]:
        raise NotFound("Team not found")


@dataclass(frozen=True)
class JsonReport:
    """A report whose rows PostgreSQL wrote as JSON text (`rows_json`), with its totals as JSON values."""

    rows_json: str
    totals: dict[str, Any]

    def body(self) -> bytes:
        return b'{"rows":' + self.rows_json.encode() + b',"totals":' + orjson.dumps(self.totals) + b"}"

    def values(self) -> dict[str, Any]:
        return {"rows": orjson.loads(self.rows_json), "totals": self.totals}


def money(amount: Any, currency: str) -> Money:
    return Money(amount=Decimal(amount).quantize(Decimal(1).scaleb(-amount_places(currency))), currency=currency)


def maybe_money(amount: Any, currency: str) -> Money | None:
    return None if amount is None else money(amount, currency)


def asyncpg_args(statement: TextClause) -> tuple[str, list[Any]]:
    """The statement as asyncpg runs it: SQL with `$n` placeholders, and the arguments in order."""
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[attr-defined]
    params = compiled.construct_params()
    return str(compiled), [params[name] for name in compiled.positiontup or ()]
