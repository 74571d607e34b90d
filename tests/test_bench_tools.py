"""The harness's statistics and the profiles' split (no servers: pure functions of their input)."""

from bench.harness import _percentiles
from bench.profile import categorise, flamegraph, split

ROOT = ('process 1:"python crm serve";<module> (crm:10);serve (app/cli.py:128);run (uvicorn/server.py:86);'
        "asyncio_run (uvicorn/_compat.py:30);run (asyncio/runners.py:118)")
ASGI = (ROOT + ";run_asgi (uvicorn/protocols/http/httptools_impl.py:422);__call__ (starlette/applications.py:96)"
        ";__call__ (app/api/middleware.py:61);app (starlette/routing.py:74)")


def test_few_samples_state_no_percentiles():
    five = _percentiles([0.010, 0.020, 0.030, 0.040, 0.500])
    assert five == {"n": 5, "min_ms": 10.0, "median_ms": 30.0, "max_ms": 500.0}


def test_p95_from_20_samples_and_p99_from_100():
    twenty = _percentiles([i / 1000 for i in range(1, 21)])
    assert twenty["p95_ms"] == 20.0 and "p99_ms" not in twenty
    hundred = _percentiles([i / 1000 for i in range(1, 101)])
    assert hundred["p95_ms"] == 96.0 and hundred["p99_ms"] == 100.0 and hundred["n"] == 100


def test_categories():
    assert categorise(ROOT) == "event loop"
    assert categorise('process 1:"python crm serve"') == "event loop"
    assert categorise(ASGI) == "framework"
    assert categorise(ASGI + ";get_deal (app/api/v1/deals.py:40);execute (sqlalchemy/orm/session.py:2555)") == "SQL"
    auth = ASGI + ";solve_dependencies (fastapi/dependencies/utils.py:705);authenticate (app/api/deps.py:71)"
    assert categorise(auth + ";resolve_bearer (app/domain/auth/service.py:241)") == "auth"
    assert categorise(auth + ";claim (app/api/idempotency.py:60)") == "idempotency"
    assert categorise(auth + ";fetch (sqlalchemy/ext/asyncio/session.py:400)") == "SQL"
    assert categorise(ASGI + ";serialize_response (fastapi/routing.py:161);validate (fastapi/_compat.py:120)"
                      ) == "serialisation"
    assert categorise(ASGI + ";get_deal (app/api/v1/deals.py:40);dump (app/domain/records.py:99);"
                             "model_validate (pydantic/main.py:792)") == "serialisation"
    assert categorise(ASGI + ";request_body_to_args (fastapi/dependencies/utils.py:900)") == "validation"
    assert categorise(ASGI + ";__call__ (app/api/middleware.py:40);bind (structlog/contextvars.py:143)"
                      ) == "app middleware"
    assert categorise(ASGI + ";create (app/domain/contacts/service.py:80)") == "app (other)"


def test_split_and_flamegraph():
    collapsed = f"{ASGI} 3\n{ASGI};x (sqlalchemy/engine/base.py:1) 1\n"
    figures = split(collapsed)
    assert figures["samples"] == 4
    assert figures["percent"]["framework"] == 75.0 and figures["percent"]["SQL"] == 25.0
    svg = flamegraph(collapsed, "t")
    assert svg.startswith("<svg") and "4 samples" in svg
