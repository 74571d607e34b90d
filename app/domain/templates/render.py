"""Sandboxed Jinja2 for templates: placeholders read the documented objects only (`contact`, `company`, `deal`,
`user`, `org` and `unsubscribe_url`, each a mapping of the fields the API shows, `custom_fields` included).
Attribute access reaches mapping keys and nothing else (no methods, no dunders); filters work as in Jinja2.
HTML bodies escape what they insert."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from app.domain.errors import ValidationFailed

FIELDS = ("subject", "body_html", "body_text")


class _Env(SandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            return obj[attribute] if attribute in obj else self.undefined(obj=obj, name=attribute)
        return self.undefined(obj=obj, name=attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Mapping) and argument in obj:
            return obj[argument]
        if isinstance(obj, list | tuple) and isinstance(argument, int) and -len(obj) <= argument < len(obj):
            return obj[argument]
        return self.undefined(obj=obj, name=argument)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        raise SecurityError("templates cannot call anything")


_TEXT = _Env(autoescape=False, undefined=Undefined)
_HTML = _Env(autoescape=True, undefined=Undefined)


def _env(field: str) -> _Env:
    return _HTML if field == "body_html" else _TEXT


@lru_cache(maxsize=512)
def _compiled(html: bool, source: str) -> Template:
    """A template compiled once per source (a campaign renders the same one for every recipient: compiling it
    each time cost more than rendering it)."""
    return (_HTML if html else _TEXT).from_string(source)


def check(values: Mapping[str, str | None]) -> None:
    """422 naming the field and the line of the first template that does not parse."""
    for field in FIELDS:
        source = values.get(field)
        if not source:
            continue
        try:
            _env(field).parse(source)
        except TemplateSyntaxError as exc:
            raise ValidationFailed(f"line {exc.lineno}: {exc.message}", loc=("body", field),
                                   type="template_syntax") from None


def render(values: Mapping[str, str | None], context: Mapping[str, Any]) -> dict[str, str | None]:
    """-> {subject, html, text}; 422 naming the field when a placeholder cannot be rendered."""
    out: dict[str, str | None] = {}
    for field, key in zip(FIELDS, ("subject", "html", "text"), strict=True):
        source = values.get(field)
        if source is None:
            out[key] = None if field != "subject" else ""
            continue
        try:
            out[key] = _compiled(field == "body_html", source).render(**context)
        except (UndefinedError, SecurityError, TypeError, ValueError) as exc:
            raise ValidationFailed(f"cannot render: {exc}", loc=("body", field), type="template_render") from None
    if out["subject"]:
        out["subject"] = " ".join(out["subject"].split())  # one line
    return out


def check_one(field: str, source: str) -> None:
    """422 naming `field` and the line when `source` (a plain-text template of another area, such as an SMS
    gateway's request body) does not parse."""
    try:
        _TEXT.parse(source)
    except TemplateSyntaxError as exc:
        raise ValidationFailed(f"line {exc.lineno}: {exc.message}", loc=("body", field),
                               type="template_syntax") from None


def render_one(source: str, context: Mapping[str, Any]) -> str:
    """A plain-text template in the same sandbox; ValueError when a placeholder cannot be rendered."""
    try:
        return _compiled(False, source).render(**context)
    except (UndefinedError, SecurityError, TypeError) as exc:
        raise ValueError(f"cannot render: {exc}") from None
