"""Schemathesis' stateful phase: call sequences chained by the links it infers between operations (a create's
`id` feeds the get, update and delete of that record), each answer checked as in tests/test_fuzz.py."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

from tests.test_fuzz import FUZZ_CHECKS, api_key, fuzz_client, schema, short_polls  # noqa: F401 - fixtures

STEPS = 8


def test_chained_calls_get_no_server_error_and_answers_the_document_describes(fuzz_client, api_key):  # noqa: F811
    machine = schema.as_state_machine()
    assert len(machine.bundles) > 5, "no links inferred: the stateful phase would test nothing"

    calls: list[str] = []

    class Workflow(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case):  # noqa: ANN001, ANN201
            short_polls(case)
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {api_key}"}  # the case's own: sent as is
            return {"session": fuzz_client, "base_url": "http://testserver",
                    "headers": {"Authorization": f"Bearer {api_key}"}}

        def validate_response(self, response, case, additional_checks=(), **kwargs):  # noqa: ANN001, ANN003, ANN201
            calls.append(f"{case.method} {case.path} -> {response.status_code}")
            case.validate_response(response, checks=FUZZ_CHECKS)

    # No shrinking: a replay would meet the records the first run made (the data would differ, and hypothesis
    # reports that instead of the failure); a failure is reported as found.
    Workflow.run(settings=settings(max_examples=15, stateful_step_count=STEPS, derandomize=True, database=None,
                                   deadline=None, suppress_health_check=list(HealthCheck),
                                   phases=[Phase.generate]))
    chained = [c for c in calls if "{" in c and c.rsplit(" ", 1)[-1].startswith("2")]
    assert len(calls) > 20 and chained, calls  # sequences ran, and some reached real records
