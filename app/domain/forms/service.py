"""Lead forms (admin side): definitions, key rotation, embed snippets, the submissions log."""

from __future__ import annotations

import html
import json
import secrets
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Text, bindparam, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import ORG_SETTING
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.errors import NotFound, ValidationFailed
from app.domain.forms.models import Form, FormKey, FormSubmission
from app.domain.forms.schemas import Embed, FormCreate, FormUpdate, SubmissionRead
from app.domain.kinds import FORM as FORM_TYPE
from app.domain.kinds import Reader, org_of
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.pipelines import service as pipelines
from app.domain.records import Kind, apply_prime, prime_columns, prime_params, require_ref, require_user

FORM: Kind[Form] = Kind.of(FORM_TYPE)
SORTS = {"created_at": Form.created_at, "name": Form.name}
SUBMISSION_SORTS = {"received_at": FormSubmission.received_at}


def _new_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


async def _check_refs(session: AsyncSession, org_id: UUID, values: dict) -> None:
    for user_id in values.get("assignees") or []:
        await require_user(session, org_id, user_id, "assignees")
    if values.get("escalate_to"):
        await require_user(session, org_id, values["escalate_to"], "escalate_to")
    if values.get("pipeline_id"):
        await require_ref(session, pipelines.PIPELINE, org_id, values["pipeline_id"], "pipeline_id")


async def create(session: AsyncSession, actor: Principal, body: FormCreate) -> Form:
    if actor.user_id is None:
        raise ValidationFailed("forms are created on behalf of a user")
    values = body.model_dump()
    values["assignees"] = list(dict.fromkeys(values["assignees"] or [actor.user_id]))
    await _check_refs(session, actor.org_id, values)
    form = Form(org_id=actor.org_id, public_key=_new_key(), created_by=actor.user_id, **values)
    await FORM.created(session, actor, form)
    session.add(FormKey(public_key=form.public_key, org_id=form.org_id, form_id=form.id))
    await session.flush()
    return form


async def list_page(session: AsyncSession, org_id: UUID, page: PageRequest) -> Page[Form]:
    return await keyset_page(session, FORM.scoped(org_id), page, SORTS, Form.id)


async def update(session: AsyncSession, actor: Principal, form_id: UUID, patch: FormUpdate,
                 expected_version: int | None) -> Form:
    form = await FORM.get(session, actor.org_id, form_id, for_update=True)
    check_version(form.version, expected_version)
    before = FORM.dump(form)
    changes = patch.model_dump(exclude_unset=True)
    nullable = {"redirect_url", "escalate_to", "min_fill_seconds", "pipeline_id"}
    changes = {k: v for k, v in changes.items() if v is not None or k in nullable}
    if "assignees" in changes:
        changes["assignees"] = list(dict.fromkeys(changes["assignees"])) or [form.created_by]
    await _check_refs(session, actor.org_id, changes)
    for key, value in changes.items():
        setattr(form, key, value)
    if form.creates == "deal" and form.pipeline_id is None:
        raise ValidationFailed("pipeline_id is required when the form creates deals", loc=("body", "pipeline_id"))
    return await FORM.updated(session, actor, form, before)


async def rotate_key(session: AsyncSession, actor: Principal, form_id: UUID) -> Form:
    """A new public key; the old one answers 404 from now on."""
    form = await FORM.get(session, actor.org_id, form_id, for_update=True)
    before = FORM.dump(form)
    await session.execute(delete(FormKey).where(FormKey.public_key == form.public_key))
    form.public_key = _new_key()
    session.add(FormKey(public_key=form.public_key, org_id=form.org_id, form_id=form.id))
    return await FORM.updated(session, actor, form, before)


async def delete_form(session: AsyncSession, actor: Principal, form_id: UUID, expected_version: int | None) -> None:
    form = await FORM.delete(session, actor, form_id, expected_version)
    await session.execute(delete(FormKey).where(FormKey.public_key == form.public_key))


async def submissions(session: AsyncSession, who: Reader, form_id: UUID, page: PageRequest,
                      status: str = "accepted") -> Page[FormSubmission]:
    """The submissions of a form `who` may read (a deleted form's: 404, as its GET), accepted or spam."""
    await FORM.get(session, who, form_id)
    stmt = select(FormSubmission).where(FormSubmission.org_id == org_of(who), FormSubmission.form_id == form_id,
                                        FormSubmission.status == status)
    if page.sort is None:
        page = PageRequest(page.limit, page.cursor, "-received_at")
    return await keyset_page(session, stmt, page, SUBMISSION_SORTS, FormSubmission.id)


TRACKING = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid")


def embed(form: Form, base_url: str) -> Embed:
    action = f"{base_url.rstrip('/')}/v1/public/forms/{form.public_key}/submissions"
    a = html.escape(action, quote=True)
    snippet = f"""<form action="{a}" method="post" accept-charset="utf-8">
  <input name="first_name" placeholder="First name" autocomplete="given-name">
  <input name="last_name" placeholder="Last name" autocomplete="family-name">
  <input name="email" type="email" placeholder="Email" autocomplete="email" required>
  <input name="phone" type="tel" placeholder="Phone" autocomplete="tel">
  <input name="company_name" placeholder="Company" autocomplete="organization">
  <textarea name="note" placeholder="How can we help?"></textarea>
  <!-- leave this field empty: it is a trap for bots -->
  <input name="_hp" tabindex="-1" autocomplete="off" aria-hidden="true" style="position:absolute;left:-10000px">
  <input type="hidden" name="_ts">
  <button type="submit">Send</button>
</form>
<script>
(function (f) {{
  f.elements._ts.value = Date.now();
  var q = new URLSearchParams(location.search), add = function (k, v) {{
    if (!v) return; var i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v;
    f.appendChild(i);
  }};
  {json.dumps(list(TRACKING))}.forEach(function (k) {{ add(k, q.get(k)); }});
  add("page_url", location.href); add("referrer", document.referrer);
}})(document.currentScript.previousElementSibling);
</script>
"""
    script = f"""// POST JSON from any page on an allowed origin; answers 202 {{"status": "accepted", "id": ...}}
// _ts: when the form was shown, in milliseconds since the epoch (Date.now()), recorded as this script loads.
// With min_fill_seconds set, a submission sent sooner than that after _ts is kept as spam (too_fast).
const shownAt = Date.now();
const params = new URLSearchParams(location.search);
async function sendLead(fields) {{
const response = await fetch({json.dumps(action)}, {{
  method: "POST",
  headers: {{ "Content-Type": "application/json" }},
  body: JSON.stringify({{
    ...fields, page_url: location.href, referrer: document.referrer,
    utm_source: params.get("utm_source"), utm_medium: params.get("utm_medium"),
    utm_campaign: params.get("utm_campaign"), gclid: params.get("gclid"), fbclid: params.get("fbclid"),
    _ts: shownAt,
  }}),
}});
if (!response.ok) console.error(await response.json());  // problem+json: {{title, detail, errors}}
return response;
}}
// e.g. sendLead({{ first_name: "Ana", last_name: "Silva", email: "ana@example.com", note: "Please call me" }});
"""
    return Embed(html=snippet, javascript=script, action_url=action)


def dump_submission(s: FormSubmission) -> dict:
    return SubmissionRead.model_validate(s).model_dump(mode="json")


def now() -> datetime:
    return datetime.now(UTC)


async def get(session: AsyncSession, org_id: UUID, form_id: UUID) -> Form:
    return await FORM.get(session, org_id, form_id)


_ORG_OF_KEY = (
    select(FormKey.org_id, FormKey.form_id, func.set_config(ORG_SETTING, cast(FormKey.org_id, Text), True))
    .where(FormKey.public_key == bindparam("public_key"))
)


INTAKE_KINDS = ("lead", "activity")  # what a submission creates (`app.domain.flows.form_intake`)
_LIVE = (Form.org_id == bindparam("org_id"), Form.id == bindparam("form_id"), Form.deleted_at.is_(None),
         Form.enabled.is_(True))
_FORM = select(Form).where(*_LIVE)
_FORM_FOR_INTAKE = select(Form, *prime_columns()).where(*_LIVE)


async def by_public_key(session: AsyncSession, public_key: str, intake: bool = False) -> Form:
    """The enabled, live form behind a public key; 404 otherwise (unknown, rotated, disabled, deleted).
    `intake`: what the submission's writes read (`records.prime`) comes along with the form."""
    # The key (a global lookup) names the org and sets it for the transaction (row-level security) in one
    # statement; the form (a tenant table) is read next.
    found = (await session.execute(_ORG_OF_KEY, {"public_key": public_key})).first()
    if found is None:
        raise NotFound("No such form (the key may have been rotated, or the form disabled)")
    params = {"org_id": found.org_id, "form_id": found.form_id}
    if intake:
        params.update(prime_params(found.org_id, None, INTAKE_KINDS))
    row = (await session.execute(_FORM_FOR_INTAKE if intake else _FORM, params)).first()
    if row is None:
        raise NotFound("No such form (the key may have been rotated, or the form disabled)")
    if intake:
        apply_prime(session, found.org_id, None, INTAKE_KINDS, row)
    return row[0]
