"""A deal board written against the Python client generated from openapi/openapi.json by openapi-python-client
(tests/test_openapi_clients.py generates `crm_client` and runs this against a live server).

Usage: python board.py <base URL>  -> prints what it saw as JSON."""

from __future__ import annotations

import json
import sys
import uuid

from crm_client import AuthenticatedClient, Client
from crm_client.api.auth import signup
from crm_client.api.contacts import create_contact
from crm_client.api.deals import create_deal, list_deals
from crm_client.api.pipelines import get_pipeline_summary, list_pipelines
from crm_client.api.schema_and_timeline import get_contact_timeline
from crm_client.api.sync import list_changes
from crm_client.models import (
    ActivityEntry,
    ContactCreate,
    DealChange,
    DealCreate,
    MoneyIn,
    Problem,
    SignupRequest,
    StageChangeEntry,
)


def main(base_url: str) -> dict:
    account = signup.sync(client=Client(base_url=base_url), body=SignupRequest(
        org_name="Board", email=f"owner-{uuid.uuid4().hex[:8]}@example.com", password="correct horse battery 9",
        name="Olga Owner"))
    assert not isinstance(account, Problem) and account is not None, account
    client = AuthenticatedClient(base_url=base_url, token=account.access_token)
    pipeline = list_pipelines.sync(client=client).data[0]
    ana = create_contact.sync(client=client, body=ContactCreate(first_name="Ana", last_name="Silva"))
    deal = create_deal.sync(client=client, body=DealCreate(
        title="Acme: 50 seats", contact_id=ana.id, value=MoneyIn(amount="1200.00")))
    page = list_deals.sync(client=client, pipeline_id=pipeline.id, expand=["contact,owner"])
    summary = get_pipeline_summary.sync(pipeline.id, client=client)
    missing = create_contact.sync(client=client, body=ContactCreate())  # a contact needs a name, email or phone
    card = page.data[0]
    # The feed and timelines are unions the client tells apart by `object_type` / `kind`.
    changes = list_changes.sync(client=client, types="deal")
    created = [c for c in changes.data if isinstance(c, DealChange) and c.type_ == "deal.created"]
    timeline = get_contact_timeline.sync(ana.id, client=client)
    kinds = sorted({type(e).__name__ for e in timeline.data if isinstance(e, (ActivityEntry, StageChangeEntry))})
    return {
        "deal": str(deal.id), "card": str(card.id), "contact": card.expanded.contact.first_name,
        "owner": card.expanded.owner.name, "stages": len(summary.stages),
        "deals": sum(s.deals for s in summary.stages), "value": summary.totals.value.amount,
        "feed": [str(created[0].object_id), created[0].data.object_.title, created[0].actor.type_],
        "timeline": kinds,
        "problem": [missing.status, missing.type_] if isinstance(missing, Problem) else None,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
