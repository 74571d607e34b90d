"""Analytics: reports computed in SQL from live data, as JSON `{rows, totals}` or the rows as CSV.

Every report is one entry of `REPORTS`: its path, response model, the service that runs it, the filters it
takes (with what each means for it) and its groupings. One function turns an entry into its route, so the
parameters, the 422s, the 404 checks and the CSV rendering are the same for every report."""

import csv
import inspect
import io
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from fastapi import Header, Query, Response
from pydantic import BaseModel, BeforeValidator
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import ReportSessionDep, require
from app.api.problems import AUTHED, NOT_FOUND
from app.api.records import JSONBytes
from app.api.routing import Router
from app.api.user_filter import ME_DOC, UserRef, user_id_of
from app.domain.auth.principal import Principal
from app.domain.errors import ValidationFailed
from app.domain.reports import people, sales, service
from app.domain.reports.query import JsonReport
from app.domain.reports.schemas import (
    ActivitiesReport,
    CustomersReport,
    EmailsReport,
    ForecastReport,
    FunnelReport,
    GroupBy,
    LeadGroupBy,
    LeadSourcesReport,
    PeriodGroupBy,
    ProductsReport,
    ResponseGroupBy,
    ResponseTimesReport,
    RottingReport,
    StageDurationsReport,
    VelocityReport,
    WinLossReport,
)
from app.domain.schemas import Currency, Money, Source
from app.domain.text import spreadsheet_safe

router = Router(prefix="/v1/reports", tags=["reports"])
Reader = Annotated[Principal, require("reports:read")]
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


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


# --- the query parameters a report may take -------------------------------------------------------------

DEAL_OWNER = f"only deals this user owns: {ME_DOC}"
DEAL_TEAM = "only deals owned by members of this team (another organisation's or a deleted team → 404)"
DEAL_SOURCE = "only deals converted from a lead with this source (e.g. web_form)"
DEAL_PIPELINE = "only this pipeline's deals (another organisation's → 404)"
ONE_PIPELINE = "default: the organisation's default pipeline; another organisation's → 404"
LEAD_OWNER = f"only leads this user owns: {ME_DOC}"
LEAD_TEAM = "only leads owned by members of this team (another organisation's or a deleted team → 404)"
LEAD_SOURCE = "only leads with this source (e.g. web_form)"
CURRENCY = "ISO 4217; default the organisation's default_currency. Deals in other currencies are left out"

# name → (the Python name, the type, the alias in the URL, a fixed description or None for the report's own)
_PARAMS: dict[str, tuple[str, Any, str | None, str | None]] = {
    "from": ("date_from", IsoDate, "from", "first day (YYYY-MM-DD, inclusive) in the organisation's time zone"),
    "to": ("date_to", IsoDate, "to", "last day (YYYY-MM-DD, inclusive) in the organisation's time zone"),
    "pipeline_id": ("pipeline_id", UUID, None, None),
    "owner_id": ("owner_id", UserRef, None, None),
    "team_id": ("team_id", UUID, None, None),
    "currency": ("currency", Currency, None, CURRENCY),
    "source": ("source", Source, None, None),
}


def _query(name: str, annotation: Any, description: str, alias: str | None = None,
           examples: list[Any] | None = None) -> inspect.Parameter:
    extra: dict[str, Any] = {"examples": examples} if examples else {}
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[annotation | None, Query(alias=alias, description=description,
                                                                             **extra)])


_EXAMPLES = {"from": ["2026-01-01"], "to": ["2026-03-31"]}


@dataclass(frozen=True)
class Report:
    path: str  # /v1/reports/<path>
    operation_id: str
    summary: str
    model: type[BaseModel]
    run: Callable[[AsyncSession, service.ReportParams], Awaitable[BaseModel]]
    description: str
    filters: Mapping[str, str | None]  # the filters it takes, in order; a description where it has its own
    group_by: tuple[Any, str] | None = None  # (a Literal of its groupings, what they mean)
    # group_by → the row field holding the group, where it depends on the grouping (None: the default grouping);
    # in CSV only that field is a column
    keys: Mapping[str | None, str] = field(default_factory=dict)


def _columns(report: Report, group_by: str | None) -> list[str]:
    (row_model,) = get_args(report.model.model_fields["rows"].annotation)
    unused = set(report.keys.values()) - {report.keys.get(group_by, report.keys.get(None))}
    return [c for c in row_model.model_fields if c not in unused]


def _has_money(report: Report) -> bool:
    (row_model,) = get_args(report.model.model_fields["rows"].annotation)
    return any(f.annotation is Money or Money in get_args(f.annotation) for f in row_model.model_fields.values())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and set(value) == {"amount", "currency"}:
        return value["amount"]
    return spreadsheet_safe(value) if isinstance(value, str) else value


def _respond(report: Report, result: BaseModel | JsonReport, as_csv: bool, group_by: str | None) -> Response:
    """`result`: the report's model, or its JSON already written by PostgreSQL (a report of many rows)."""
    if not as_csv:
        return JSONBytes(result.body() if isinstance(result, JsonReport) else result.model_dump_json().encode())
    data = result.values() if isinstance(result, JsonReport) else result.model_dump(mode="json")
    columns = _columns(report, group_by)
    money = _has_money(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*columns, "currency"] if money else columns)
    currency = [_currency(data["totals"])] if money else []
    for row in data["rows"]:
        writer.writerow([*(_cell(row[c]) for c in columns), *currency])
    return Response(out.getvalue().encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{report.path}.csv"'})


def _currency(totals: dict[str, Any]) -> str:
    return next(v["currency"] for v in totals.values() if isinstance(v, dict) and "currency" in v)


def _csv_doc(report: Report) -> dict[int | str, dict[str, Any]]:
    columns = ",".join([*_columns(report, None), *(["currency"] if _has_money(report) else [])])
    money = "money as the amount, and a `currency` column" if _has_money(report) else "no money columns"
    return {200: {"description": f"The report; with `format=csv` or `Accept: text/csv` its rows as CSV (header row "
                                 f"first, {money})",
                  "content": {"text/csv": {"schema": {"type": "string"}, "example": columns}}}}


def _add_route(report: Report) -> None:
    """The report's GET route, with exactly the query parameters it takes (others → 422)."""
    params = [inspect.Parameter("session", inspect.Parameter.KEYWORD_ONLY, annotation=ReportSessionDep),
              inspect.Parameter("who", inspect.Parameter.KEYWORD_ONLY, annotation=Reader)]
    for name, own in report.filters.items():
        python, annotation, alias, fixed = _PARAMS[name]
        description = own or fixed
        assert description, f"{report.path}: {name} needs a description"
        params.append(_query(python, annotation, description, alias, _EXAMPLES.get(name)))
    if report.group_by is not None:
        params.append(_query("group_by", report.group_by[0], report.group_by[1]))
    params.append(_query("format", Literal["json", "csv"], "csv: the rows as CSV (as with `Accept: text/csv`)"))
    params.append(inspect.Parameter("accept", inspect.Parameter.KEYWORD_ONLY, default=None,
                                    annotation=Annotated[str | None, Header(include_in_schema=False)]))

    async def endpoint(session: AsyncSession, who: Principal, **query: Any) -> Response:
        date_from, date_to = query.get("date_from"), query.get("date_to")
        if date_from is not None and date_to is not None and date_from > date_to:
            raise ValidationFailed("from must not be after to", loc=("query", "from"))
        fmt, accept, group_by = query.pop("format"), query.pop("accept"), query.get("group_by")
        if "owner_id" in query:
            query["owner_id"] = user_id_of(query["owner_id"], who, "owner_id")
        result = await report.run(session, service.ReportParams(who=who, **query))
        return _respond(report, result, fmt == "csv" if fmt is not None else _wants_csv(accept), group_by)

    endpoint.__signature__ = inspect.Signature(params, return_annotation=Response)  # type: ignore[attr-defined]
    endpoint.__name__ = report.operation_id
    router.add_api_route(f"/{report.path}", endpoint, methods=["GET"], response_model=report.model,
                         operation_id=report.operation_id, summary=report.summary, description=report.description,
                         responses={**_csv_doc(report), **AUTHED, **NOT_FOUND})


DEALS = {"from": None, "to": None, "pipeline_id": DEAL_PIPELINE, "owner_id": DEAL_OWNER, "team_id": DEAL_TEAM,
         "currency": None, "source": DEAL_SOURCE}
LEADS = {"from": None, "to": None, "owner_id": LEAD_OWNER, "team_id": LEAD_TEAM, "source": LEAD_SOURCE}
PERIODS = ("month (YYYY-MM) or week (ISO week YYYY-Www, from Monday), in the organisation's time zone. Absent: one "
           "row for the report's days")

REPORTS: tuple[Report, ...] = (
    Report(
        "funnel", "getFunnelReport", "Funnel report", FunnelReport, service.funnel,
        """How deals move through one pipeline, stage by stage, for the deals **created** in the period
(`from`/`to` on `created_at`). `reached`: for an open or won stage, the deals that ever entered it or a later
open or won stage (by the stages' current positions; stage history plus the current stage), so a deal that
skipped a stage, or moved back, still counts as having passed the stages up to the furthest it got. Lost stages
are exits, not steps: their `reached` counts the deals that ever entered them, and entering one does not carry
a deal further down. `current`: all deals now in the stage (for won and lost stages, the deals won or lost
there), `value_current` their value. `conversion_to_next`: reached of the next open or won stage ÷ reached of
this one (null for the last of them, for lost stages, and when nothing reached the stage). Deals count in the
pipeline they are in now.""",
        {**DEALS, "pipeline_id": ONE_PIPELINE}),
    Report(
        "win-loss", "getWinLossReport", "Win-loss report", WinLossReport, service.win_loss,
        """Deals won and lost in the period (`from`/`to` on `closed_at`, in the organisation's time zone):
counts, values and `win_rate` = won ÷ (won + lost) (null when neither), per group; `totals` adds the lost
reasons, most frequent first. Grouped by owner or source, the rows come by won value, highest first; by month,
in calendar order.""",
        DEALS, (GroupBy, "owner (user id), month (YYYY-MM of closed_at in the organisation's time zone) or source "
                         "(of the lead the deal was converted from; null when none). Absent: one row for all")),
    Report(
        "forecast", "getForecastReport", "Forecast report", ForecastReport, service.forecast,
        """Open deals by month of `expected_close_date` (`from`/`to` bound that date) and `forecast_category`
(pipeline, best_case, commit): how many, their value, and the weighted value (value × the probability of the
deal's current stage ÷ 100, rounded to the cent). Deals marked `omitted` and deals without an expected close
date are left out. `totals` sums all months, overall and per category.""",
        DEALS),
    Report(
        "stage-durations", "getStageDurationsReport", "Stage durations report", StageDurationsReport,
        sales.stage_durations,
        """How long deals stay in each stage of one pipeline, from the stage history: a **stay** begins when a
deal enters a stage and ends when it leaves it; the stays that **ended** in the period (`from`/`to` on the
move out, in the organisation's time zone) count, so a deal still in a stage adds nothing to it yet. A deal
that comes back to a stage (moved backwards, then forwards again) has one stay per visit, and each counts.
Per stage: `deals` (stays), `avg_seconds` and `median_seconds` of their lengths (null when none); `totals`
over all the pipeline's stages. Rows: every live stage of the pipeline, in order. A stay counts for its stage
whatever pipeline the deal is in now; `owner_id`, `team_id` and `source` apply to the deal as it is now. Deals
of every currency count.""",
        {"from": None, "to": None, "pipeline_id": ONE_PIPELINE, "owner_id": DEAL_OWNER, "team_id": DEAL_TEAM,
         "source": DEAL_SOURCE}),
    Report(
        "velocity", "getVelocityReport", "Sales velocity report", VelocityReport, sales.velocity,
        """Deals closed in the period (`from`/`to` on `closed_at`, in the organisation's time zone), per
calendar month or ISO week (`group_by`), or for the report's days as one period. The report's days run from
`from` (without it: the day of the first close counted) to `to` (without it: today, in the organisation's
time zone); every period of them is a row, empty ones included, and a period's days are its days within them
(a month cut by `from` has fewer). Per period: `won` (deals won), `avg_won_value` (their mean value),
`win_rate` = won ÷ (won + lost), `avg_cycle_days` (mean days from `created_at` to `closed_at` of the won deals,
to 0.01) and

**velocity_per_day = value won in the period ÷ days in the period** (to the cent): the revenue the team
actually closed per calendar day. (The classic forecast formula, open deals × average value × win rate ÷ cycle
length, is not used: it needs the open pipeline at each period's start, and it answers what *could* close,
where this report states what did.)

`totals` is the report's days as one period, with `lost` and `won_value` besides. A deal counts by its status
now: won and then moved back to an open stage, it is no longer won.""",
        DEALS, (PeriodGroupBy, PERIODS)),
    Report(
        "rotting", "getRottingReport", "Rotting deals report", RottingReport, sales.rotting,
        """Open deals that have sat in their current stage longer than the stage's `rotting_days` (a setting of
the stage; stages without one never rot): `days_in_stage` counts whole days of 24 hours since
`stage_entered_at`, and a deal rots once more than `rotting_days` × 24 hours have passed. As of now, so it has
no period. Rows come longest past the threshold first; deals of every currency count.""",
        {"pipeline_id": DEAL_PIPELINE, "owner_id": DEAL_OWNER, "team_id": DEAL_TEAM, "source": DEAL_SOURCE}),
    Report(
        "activities", "getActivitiesReport", "Activities report", ActivitiesReport, people.activities,
        """Activities per assignee and type: `open` (not done, overdue ones included), `completed` (done) and
`overdue` (not done and due before now). An activity falls in the period (`from`/`to`, in the organisation's
time zone) by its due date, or by its creation when it has no due date, so a period shows what was planned in
it and how much of that got done. `owner_id` and `team_id` name the assignee. `user_id` is null for
unassigned activities (notes, by default).""",
        {"from": None, "to": None, "owner_id": f"only activities assigned to this user: {ME_DOC}",
         "team_id": "only activities assigned to members of this team (another organisation's or a deleted team → "
                    "404)"}),
    Report(
        "lead-sources", "getLeadSourcesReport", "Lead sources report", LeadSourcesReport, people.lead_sources,
        """Leads created in the period (`from`/`to` on the lead's `created_at`, in the organisation's time zone)
per source, `utm_campaign` or form (`group_by`): `leads`, `converted` (of them, those converted), `deals_won`
(the deals they were converted into that are won now, whenever they closed; in the report's currency) and
`won_value` (Σ their values). The row holds its group in the field the grouping names (`source`,
`utm_campaign` or `form_id`); the other two are null (in CSV only that column is written).""",
        {"from": None, "to": None, "owner_id": LEAD_OWNER, "team_id": LEAD_TEAM,
         "currency": "ISO 4217; default the organisation's default_currency. Won deals in other currencies are left "
                     "out of deals_won and won_value", "source": LEAD_SOURCE},
        (LeadGroupBy, "source (the default), utm_campaign (the leads' `utm.campaign`) or form (the form they came "
                      "from)"),
        {None: "source", "source": "source", "utm_campaign": "utm_campaign", "form": "form_id"}),
    Report(
        "response-times", "getResponseTimesReport", "Lead response times report", ResponseTimesReport,
        people.response_times,
        """How fast leads get a first answer: per owner (or form, `group_by`), the leads created in the period
(`from`/`to` on `created_at`, in the organisation's time zone) that got a first completed activity — the
others are left out — their `count`, and `p50_seconds` / `p90_seconds`: the median and the 90th percentile
(interpolated) of the seconds from the lead's creation (for a lead from a web form: its submission) to its
first completed activity (`first_response_at`). The row holds its group in `user_id` or `form_id`; the other
is null (in CSV only that column is written).""",
        LEADS, (ResponseGroupBy, "owner (the default: the lead's owner) or form (the form it came from)"),
        {None: "user_id", "owner": "user_id", "form": "form_id"}),
    Report(
        "emails", "getEmailsReport", "Emails report", EmailsReport, people.emails,
        """Mail per user and period: `sent` (outbound mail that was sent; queued and failed mail is not
counted) and `received` (inbound mail), by `sent_at` (the message's date) in the organisation's time zone.
The user of sent mail is who sent it through the API, else (mail synced from a mailbox's Sent folder,
auto-replies) the mailbox's owner; of received mail, the mailbox's owner; null for a mailbox without one.
`owner_id` and `team_id` name that user. Only mail the caller may read counts (a private mailbox's mail: its
owner and admins). Not grouped, `period` is the report's days: from `from` (without it: the day of the first
mail counted) to `to` (without it: today).""",
        {"from": None, "to": None, "owner_id": f"only this user's mail: {ME_DOC}",
         "team_id": "only mail of members of this team (another organisation's or a deleted team → 404)"},
        (PeriodGroupBy, PERIODS)),
    Report(
        "customers", "getCustomersReport", "Customers report", CustomersReport, sales.customers,
        """Customers: per contact, the won deals whose `contact_id` it is (deals without a contact are left out;
so is a contact that is deleted or that the caller may not read), closed in the period (`from`/`to` on
`closed_at`, in the organisation's time zone): `won_deals`, `lifetime_value` (Σ their values, in the report's
currency), `first_won_at` and `last_won_at` (their earliest and latest `closed_at`) and `repeat`
(won_deals ≥ 2). Rows come by lifetime value, highest first.""",
        DEALS),
    Report(
        "products", "getProductsReport", "Products report", ProductsReport, sales.products,
        """What the catalogue sold: per product, the line items of the deals **won** in the period (`from`/`to`
on `closed_at`, in the organisation's time zone; a deal moving on among its pipeline's won stages counts once),
in the report's currency: `quantity` (Σ the items' quantities), `revenue` (Σ the items' values, after discount
and before tax) and `deals` (won deals with an item of the product). Items without a product are left out; a
deleted deal counts no more, a deleted product's past sales still do. Rows come by revenue, highest first.""",
        DEALS),
)

for _report in REPORTS:
    _add_route(_report)
