"""Unknown query parameters are refused (422 naming them and the allowed ones), on every API route, as unknown
body fields are: a typo (`/v1/deals?stage=...`) must never return unfiltered data.

One app-wide dependency: what a route allows is read once from the route itself (its query parameters and those
of every dependency it uses), so a parameter added later is allowed without anyone listing it. Two marks on a
dependency or endpoint widen it: `query_prefixes` (names starting so, e.g. `cf.` custom-field filters) and
`open_query = True` (a public form post keeps whatever the page URL carried: `utm_*`, click ids)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant

from app.domain.errors import ValidationFailed


class Allowed:
    __slots__ = ("names", "open", "prefixes")

    def __init__(self, dependant: Dependant) -> None:
        names: set[str] = set()
        self.prefixes: tuple[str, ...] = ()
        self.open = False
        stack = [dependant]
        while stack:
            d = stack.pop()
            names.update(p.alias for p in d.query_params)
            self.prefixes += tuple(getattr(d.call, "query_prefixes", ()))
            self.open = self.open or bool(getattr(d.call, "open_query", False))
            stack.extend(d.dependencies)
        self.names = frozenset(names)

    def unknown(self, names: Any) -> list[str]:
        if self.open:
            return []
        return sorted({n for n in names if n not in self.names and not n.startswith(self.prefixes)})


_ALLOWED: dict[int, Allowed] = {}


async def refuse_unknown_query(request: Request) -> None:
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _ALLOWED.get(id(route))
    if allowed is None:
        allowed = _ALLOWED[id(route)] = Allowed(dependant)
    unknown = allowed.unknown(request.query_params.keys())
    if unknown:
        known = sorted(allowed.names) + [f"{p}<key>" for p in allowed.prefixes]
        takes = f"this operation takes {', '.join(known) if known else 'no query parameters'}"
        error = ValidationFailed(f"unknown query parameter {unknown[0]}; {takes}", loc=("query", unknown[0]),
                                 type="extra_forbidden")
        error.errors = [{"loc": ["query", name], "msg": f"unknown query parameter; {takes}", "type": "extra_forbidden"}
                        for name in unknown]
        raise error
