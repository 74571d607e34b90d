"""Analytics: reports computed in SQL from live data, as JSON `{rows, totals}` or the rows as CSV."""

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from fastapi import Depends, Header, Query, Response
from pydantic import BaseModel, BeforeValidator

from app.api.deps import AnyCaller, ReportSessionDep, require
from app.api.problems import AUTHED, NOT_FOUND
from app.api.records import JSONBytes
from app.api.routing import Router
from app.api.user_filter import ME_DOC, UserRef, user_id_of
from app.domain.auth.principal import Principal
from app.domain.errors import ValidationFailed
from app.domain.reports import service
from app.domain.reports.schemas import ForecastReport, FunnelReport, GroupBy, WinLossReport
from app.domain.schemas import Currency, Source
from app.domain.text import spreadsheet_safe

router = Router(prefix="/v1/reports", tags=["reports"])
Reader = Annotated[Principal, require("reports:read")]
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


@dataclass(frozen=True)
class Filters:
    date_from: date | None
    date_to: date | None
    owner_id: UUID | None
    currency: str | None
    source: str | None
    csv: bool


def _wants_csv(accept: str | None) -> bool:
    """`Accept: text/csv` (preferred over application/json when both are listed)."""
    quality: dict[str, float] = {}
    for i, part in enumerate((accept or "").lower().split(",")):
        media, *options = [p.strip() for p in part.split(";")]
        q = next((float(o[2:]) for o in options if o.startswith("q=") and _is_float(o[2:])), 1.0)
        quality.setdefault(media, q - i * 1e-6)  # equal quality: the first listed wins
    return quality.get("text/csv", 0) > max(quality.get("application/json", 0), 0)


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


async def filters(
    who: AnyCaller,
    date_from: Annotated[IsoDate | None, Query(alias="from", description=(
        "first day (YYYY-MM-DD, inclusive) in the organisation's time zone"), examples=["2026-01-01"])] = None,
    date_to: Annotated[IsoDate | None, Query(alias="to", description=(
        "last day (YYYY-MM-DD, inclusive) in the organisation's time zone"), examples=["2026-03-31"])] = None,
    owner_id: Annotated[UserRef | None, Query(description=f"only deals this user owns: {ME_DOC}")] = None,
    currency: Annotated[Currency | None, Query(description=(
        "ISO 4217; default the organisation's default_currency. Deals in other currencies are left out"))] = None,
    source: Annotated[Source | None, Query(description=(
        "only deals converted from a lead with this source (e.g. web_form)"))] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description=(
        "csv: the rows as CSV (as with `Accept: text/csv`)"))] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Filters:
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ValidationFailed("from must not be after to", loc=("query", "from"))
    return Filters(date_from, date_to, user_id_of(owner_id, who, "owner_id"), currency, source,
                   format == "csv" if format is not None else _wants_csv(accept))


FiltersDep = Annotated[Filters, Depends(filters)]


def _params(who: Principal, f: Filters, **extra: Any) -> service.ReportParams:
    return service.ReportParams(who=who, date_from=f.date_from, date_to=f.date_to, owner_id=f.owner_id,
                                currency=f.currency, source=f.source, **extra)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict) and set(value) == {"amount", "currency"}:
        return value["amount"]
    return spreadsheet_safe(value) if isinstance(value, str) else value


def _respond(report: BaseModel, as_csv: bool, name: str) -> Response:
    if not as_csv:
        return JSONBytes(report.model_dump_json().encode())
    data = report.model_dump(mode="json")
    rows = data["rows"]
    (row_model,) = get_args(type(report).model_fields["rows"].annotation)
    columns = list(row_model.model_fields)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*columns, "currency"])
    currency = _currency(data["totals"])
    for row in rows:
        writer.writerow([*(_cell(row[c]) for c in columns), currency])
    return Response(out.getvalue().encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _currency(totals: dict[str, Any]) -> str:
    return next(v["currency"] for v in totals.values() if isinstance(v, dict) and "currency" in v)


def _csv_doc(columns: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "The report; with `format=csv` or `Accept: text/csv` its rows as CSV (header row "
                                 "first, money as the amount, and a `currency` column)",
                  "content": {"text/csv": {"schema": {"type": "string"}, "example": columns}}}}


@router.get("/funnel", response_model=FunnelReport, operation_id="getFunnelReport", summary="Funnel report",
            responses={**_csv_doc("stage_id,name,position,kind,reached,current,value_current,conversion_to_next,"
                                  "currency"), **AUTHED, **NOT_FOUND})
async def funnel(session: ReportSessionDep, who: Reader, f: FiltersDep,
                 pipeline_id: Annotated[UUID | None, Query(description=(
                     "default: the organisation's default pipeline; another organisation's → 404"))] = None,
                 ) -> Response:
    """How deals move through one pipeline, stage by stage, for the deals **created** in the period
    (`from`/`to` on `created_at`). `reached`: for an open or won stage, the deals that ever entered it or a
    later open or won stage (by the stages' current positions; stage history plus the current stage), so a
    deal that skipped a stage still counts as having passed it. Lost stages are exits, not steps: their
    `reached` counts the deals that ever entered them, and entering one does not carry a deal further
    down. `current`: all deals now in the stage (for won and lost stages, the deals won or lost there),
    `value_current` their value. `conversion_to_next`: reached of the next open or won stage ÷ reached of
    this one (null for the last of them, for lost stages, and when nothing reached the stage). Deals count
    in the pipeline they are in now."""
    report = await service.funnel(session, _params(who, f, pipeline_id=pipeline_id))
    return _respond(report, f.csv, "funnel")


@router.get("/win-loss", response_model=WinLossReport, operation_id="getWinLossReport", summary="Win-loss report",
            responses={**_csv_doc("group,won,lost,won_value,lost_value,win_rate,currency"), **AUTHED, **NOT_FOUND})
async def win_loss(session: ReportSessionDep, who: Reader, f: FiltersDep,
                   pipeline_id: Annotated[UUID | None, Query(description="only this pipeline's deals")] = None,
                   group_by: Annotated[GroupBy | None, Query(description=(
                       "owner (user id), month (YYYY-MM of closed_at in the organisation's time zone) or source "
                       "(of the lead the deal was converted from; null when none). Absent: one row for all"))] = None,
                   ) -> Response:
    """Deals won and lost in the period (`from`/`to` on `closed_at`, in the organisation's time zone):
    counts, values and `win_rate` = won ÷ (won + lost) (null when neither), per group; `totals` adds the
    lost reasons, most frequent first. Grouped by owner or source, the rows come by won value, highest
    first; by month, in calendar order."""
    report = await service.win_loss(session, _params(who, f, pipeline_id=pipeline_id, group_by=group_by))
    return _respond(report, f.csv, "win-loss")


@router.get("/forecast", response_model=ForecastReport, operation_id="getForecastReport",
            summary="Forecast report",
            responses={**_csv_doc("month,category,deals,open_value,weighted_value,currency"), **AUTHED, **NOT_FOUND})
async def forecast(session: ReportSessionDep, who: Reader, f: FiltersDep,
                   pipeline_id: Annotated[UUID | None, Query(description="only this pipeline's deals")] = None,
                   ) -> Response:
    """Open deals by month of `expected_close_date` (`from`/`to` bound that date) and `forecast_category`
    (pipeline, best_case, commit): how many, their value, and the weighted value (value × the probability of
    the deal's current stage ÷ 100, rounded to the cent). Deals marked `omitted` and deals without an
    expected close date are left out. `totals` sums all months, overall and per category."""
    report = await service.forecast(session, _params(who, f, pipeline_id=pipeline_id))
    return _respond(report, f.csv, "forecast")
