"""A router that knows its prefix: a request for another prefix is turned away at once.

FastAPI asks every included router whether a request is its own, and each one answers by trying all of
its routes; with a few hundred routes that scan was the largest cost of a cheap request."""

from __future__ import annotations

from fastapi import APIRouter
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope


class Router(APIRouter):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.prefix and scope.get("type") == "http":
            path = get_route_path(scope)
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                return Match.NONE, {}
        return super().matches(scope)
