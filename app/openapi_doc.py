"""The OpenAPI document as committed in openapi/openapi.json (stable formatting)."""

from __future__ import annotations

import json

from app.settings import Settings


def render() -> str:
    from app.main import create_app

    settings = Settings(env="test", jwt_secret="x" * 32, log_json=True)
    app = create_app(settings, db=_Unused(), redis=None)  # the document needs no connections
    return json.dumps(app.openapi(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


class _Unused:
    class engine:  # noqa: N801
        class sync_engine:  # noqa: N801
            pool = None
