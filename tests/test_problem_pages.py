"""Every problem `type` URI the server can answer with resolves to a page that describes it."""

from __future__ import annotations

import re
from pathlib import Path

import app.main  # noqa: F401 - imports every module, so every error class exists
from app.api.errors import _HTTP_SLUGS
from app.domain.errors import CRMError
from app.domain.problem_types import PROBLEM_TYPES
from tests.factories import signup

APP = Path(app.main.__file__).parent
# Literal slugs handed to the problem builders: problem_response(413, "payload-too-large", ...), DatabaseProblem(...)
_LITERAL = re.compile(r"(?:problem_response|DatabaseProblem)\(\s*(\d{3}),\s*\"([a-z-]+)\"")


def _classes(base: type) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        found += [sub, *_classes(sub)]
    return found


def emitted() -> dict[str, set[int]]:
    """slug -> the statuses it is sent with, from the error classes, the HTTP mapping and literal calls."""
    seen: dict[str, set[int]] = {}
    for cls in [CRMError, *_classes(CRMError)]:
        seen.setdefault(cls.slug, set()).add(cls.status)
    for status, (slug, _title) in _HTTP_SLUGS.items():
        seen.setdefault(slug, set()).add(status)
    for path in APP.rglob("*.py"):
        for status, slug in _LITERAL.findall(path.read_text()):
            seen.setdefault(slug, set()).add(int(status))
    return seen


def test_every_emitted_problem_type_is_described_and_nothing_stale():
    seen = emitted()
    assert len(seen) > 20
    assert sorted(set(seen) - set(PROBLEM_TYPES)) == []  # add it to app/domain/problem_types.py
    assert sorted(set(PROBLEM_TYPES) - set(seen)) == []  # described but never sent
    for slug, statuses in seen.items():
        assert PROBLEM_TYPES[slug].status in statuses, (slug, statuses)
        assert len(PROBLEM_TYPES[slug].description) > 60, slug


async def test_each_type_uri_resolves_to_a_page_and_to_json(client):
    for slug, problem in PROBLEM_TYPES.items():
        page = await client.get(problem.uri)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), slug
        assert f"<h1>{problem.title}</h1>" in page.text and f"HTTP {problem.status}" in page.text
        data = await client.get(problem.uri, headers={"Accept": "application/json"})
        assert data.json() == {"type": problem.uri, "title": problem.title, "status": problem.status,
                               "description": problem.description}
    listed = (await client.get("/problems")).json()
    assert [p["type"] for p in listed] == [p.uri for p in PROBLEM_TYPES.values()]


async def test_the_type_of_a_real_error_answer_is_a_link_that_works(client):
    acct = await signup(client)
    missing = await client.get("/v1/contacts/00000000-0000-0000-0000-000000000000", headers=acct.headers)
    assert missing.status_code == 404
    page = await client.get(missing.json()["type"])
    assert page.status_code == 200 and "Not found" in page.text
    unknown = await client.get("/problems/no-such-type")
    assert unknown.status_code == 404 and unknown.json()["type"] == "/problems/not-found"
    assert unknown.headers["content-type"].startswith("application/problem+json")
