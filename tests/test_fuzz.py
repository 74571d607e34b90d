"""Schemathesis over every operation of the API, with a valid API key: no input gets a 5xx, and every answer
conforms to the document: a documented status code, a body matching its schema, the documented content type and
headers (CRM_FUZZ_CHECKS names schemathesis checks, comma-separated, to run others).

The operations come from the committed contract (openapi/openapi.json, kept equal to the app's by the drift
check); the app runs in-process (ASGI) on a database of its own, so what the fuzzer writes stays out of the
other tests. Hypothesis is derandomized and bounded (CRM_FUZZ_EXAMPLES per operation): the same cases on
every run. A deeper local run: CRM_FUZZ_EXAMPLES=50 CRM_FUZZ_PHASES=explicit,generate (explicit adds the
schema's examples and schemathesis' boundary values).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import schemathesis
from arq.connections import ArqRedis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as schemathesis_checks
from schemathesis.python.asgi import get_client

from app import migrate
from app.db import Database
from app.main import create_app

FUZZ_EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "12"))
DEFAULT_CHECKS = ("not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,"
                  "response_headers_conformance")
FUZZ_CHECKS = [getattr(schemathesis_checks, name)
               for name in os.environ.get("CRM_FUZZ_CHECKS", DEFAULT_CHECKS).split(",")]
FUZZ_PHASES = [Phase[name] for name in os.environ.get("CRM_FUZZ_PHASES", "generate").split(",")]
schema = schemathesis.openapi.from_path(Path(__file__).parent.parent / "openapi" / "openapi.json")


@pytest.fixture(scope="session")
def fuzz_client(pg, settings):
    """The app on a database of its own, called in-process on schemathesis' event loop (where its pool and
    Redis client connect on first use)."""
    url = pg.create_database("crm_fuzz")
    migrate.upgrade(url)
    fuzz_settings = settings.model_copy(update={"database_url": url})
    app = create_app(fuzz_settings, db=Database.from_settings(fuzz_settings),
                     redis=ArqRedis.from_url(fuzz_settings.redis_url))
    return get_client(app)  # a requests session whose adapter calls the ASGI app


@pytest.fixture(scope="session")
def api_key(fuzz_client) -> str:
    """An owner's all-scopes API key, made through the API."""
    client = fuzz_client
    email = f"fuzz-owner-{uuid.uuid4().hex[:8]}@example.com"  # unique: each module that uses it signs up
    r = client.post("/v1/auth/signup", json={"org_name": "Fuzz", "email": email,
                                             "password": "correct horse battery staple", "name": "Fuzz Owner"})
    assert r.status_code == 201, r.text
    token = r.json()["access_token"]
    r = client.post("/v1/api-keys", headers={"Authorization": f"Bearer {token}"}, json={"name": "fuzz", "scopes": ["*"]})
    assert r.status_code == 201, r.text
    return r.json()["secret"]


def short_polls(case: schemathesis.Case) -> None:
    """The changes feed's long poll may hold a request 30 s when nothing is new: cap it at 1 s so that an
    example never outlasts the client's timeout (the long poll itself is tested in tests/test_changes.py)."""
    if isinstance(case.query, dict) and isinstance(case.query.get("wait"), (int, float)):
        case.query["wait"] = min(case.query["wait"], 1)


OPERATIONS = {op.label: op for op in (result.ok() for result in schema.get_all_operations())}


@pytest.mark.parametrize("label", list(OPERATIONS))
def test_no_input_gets_a_server_error_or_an_answer_the_document_does_not_describe(label, fuzz_client, api_key):
    operation = OPERATIONS[label]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(cases)
    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, database=None, deadline=None, phases=FUZZ_PHASES,
              suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        short_polls(case)
        case.call_and_validate(base_url="http://testserver", session=fuzz_client,
                               headers={"Authorization": f"Bearer {api_key}"}, checks=FUZZ_CHECKS)

    call()
