"""API-key scopes: `*`, or `<area>:read` / `<area>:write` (write implies read)."""

from __future__ import annotations

AREAS = (
    "org", "users", "api_keys", "contacts", "companies", "leads", "pipelines", "deals", "activities",
    "custom_fields", "forms", "webhooks", "changes", "imports", "reports", "mail", "campaigns",
    "automations", "notifications", "files", "documents", "products", "calls", "audit", "tokens",
)
ALL = "*"
KNOWN_SCOPES = frozenset([ALL] + [f"{area}:{level}" for area in AREAS for level in ("read", "write")])


def grants(held: frozenset[str], wanted: str) -> bool:
    if ALL in held or wanted in held:
        return True
    area, _, level = wanted.partition(":")
    return level == "read" and f"{area}:write" in held
