"""`GET /problems/{slug}`: the page behind every problem `type` URI (app/domain/problem_types.py)."""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from app.api.problems import VALIDATION, problem_doc
from app.domain.errors import NotFound
from app.domain.problem_types import PROBLEM_TYPES, ProblemType

router = APIRouter(tags=["operations"])


class ProblemTypeRead(BaseModel):
    type: str = Field(examples=["/problems/precondition-failed"], description="the URI problems carry in `type`")
    title: str = Field(examples=["Precondition failed"])
    status: int = Field(examples=[412], description="the HTTP status answered with this type")
    description: str = Field(description="what it means, when it happens and what to do")


def _read(problem: ProblemType) -> ProblemTypeRead:
    return ProblemTypeRead(type=problem.uri, title=problem.title, status=problem.status,
                           description=problem.description)


def _page(problem: ProblemType) -> str:
    title = html.escape(problem.title)
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title} ({problem.status})</title>"
        "<meta name=\"viewport\" content=\"width=device-width\"></head>"
        "<body style=\"font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;line-height:1.5\">"
        f"<h1>{title}</h1><p><code>type: {html.escape(problem.uri)}</code> &middot; HTTP {problem.status}</p>"
        f"<p>{html.escape(problem.description)}</p>"
        "<p>Every error of this API is an RFC 9457 <code>application/problem+json</code> document; its "
        "<code>detail</code> says what happened in your request, <code>instance</code> which request it was."
        "</p></body></html>"
    )


@router.get(
    "/problems/{slug}", operation_id="getProblemType", response_model=ProblemTypeRead,
    summary="Describe a problem type",
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                     "description": "The problem type: a short HTML page, or JSON with `Accept: application/json`"},
               **problem_doc(404, "No such problem type"), **VALIDATION},
    openapi_extra={"security": []},
)
async def get_problem_type(slug: str, request: Request) -> Response:
    """What a problem `type` URI means: its title, HTTP status, when it happens and what to do. Public: the
    `type` of every error answer links here."""
    problem = PROBLEM_TYPES.get(slug)
    if problem is None:
        raise NotFound(f"No problem type {slug!r}; GET /problems lists them")
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(_read(problem).model_dump())
    return HTMLResponse(_page(problem))


@router.get("/problems", operation_id="listProblemTypes", response_model=list[ProblemTypeRead],
            summary="List problem types", openapi_extra={"security": []})
async def list_problem_types() -> list[ProblemTypeRead]:
    """Every problem type the API answers with."""
    return [_read(p) for p in PROBLEM_TYPES.values()]
