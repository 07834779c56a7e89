"""Schemathesis against /api/v1/openapi.json on a real server: no 500s, answers match the spec.

Bounded: a few positive and negative examples per operation. Two checks are relaxed where
the schema cannot say everything: a schema-valid YAML string is not necessarily a valid
flow (422), nor a schema-valid inputs object valid inputs; and validation answers 200 with
the problems listed, whatever YAML it is sent.
"""

from __future__ import annotations

import pytest

SAMPLE = """\
id: sample
namespace: demo
inputs:
  - {id: n, type: INT, defaults: 1}
tasks:
  - {id: log, type: core.Log, message: "{{ inputs.n }}"}
triggers:
  - {id: hook, type: core.Webhook, key: sample-key-1234}
  - {id: nightly, type: core.Schedule, cron: "0 2 * * *"}
"""
SEMANTIC_422 = {("POST", "/api/v1/flows"), ("PUT", "/api/v1/flows/{namespace}/{id}"),
                ("POST", "/api/v1/executions/{namespace}/{flowId}"),
                ("POST", "/api/v1/triggers/{namespace}/{flowId}/{triggerId}/backfill"),
                ("POST", "/api/v1/executions/{executionId}/replay"),
                ("PUT", "/api/v1/namespaces/{namespace}/kv/{key}"),
                # a `path` the schema allows may still be refused (`..`, absolute): a 400 that says why
                ("GET", "/api/v1/namespaces/{namespace}/files"), ("POST", "/api/v1/namespaces/{namespace}/files"),
                ("DELETE", "/api/v1/namespaces/{namespace}/files")}


@pytest.fixture
def request_finalizer(request):
    return lambda proc: request.addfinalizer(proc.stop)


@pytest.mark.slow
def test_api_conforms_to_its_openapi_spec(tmp_path, h, request_finalizer):
    """With authentication on and an admin token: every answer documented, no 5xx (and schemathesis checks
    that each secured operation refuses a request without credentials or with wrong ones; the throttle of
    wrong passwords is raised, or its 429s would answer those)."""
    server = h.ServerProcess(tmp_path / "home", args=["--auth"], env={
        "TIERCEL_PASSWORD_HASH": "cheapest", "TIERCEL_AUTH_FAILURE_RATE": "100000/minute"}).start()
    request_finalizer(server)
    auth = {"Authorization": f"Bearer {h.make_token(server.home, 'admin')}"}
    api = server.client()
    api.headers.update(auth)
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import negative_data_rejection, positive_data_acceptance

    h.deploy(api, SAMPLE)
    api.post("/api/v1/executions/demo/sample", params={"wait": True})
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    failures: dict[str, str] = {}
    count = 0
    for result in schema.get_all_operations():
        op = result.ok()
        key = (op.method.upper(), op.path)
        excluded = []
        if key in SEMANTIC_422:
            excluded.append(positive_data_acceptance)
        if key in (("POST", "/api/v1/flows/validate"), ("POST", "/api/v1/flows/graph")):  # answer any text, errors inside
            excluded.append(negative_data_rejection)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate],
                      database=None)
            @given(case=op.as_strategy(generation_mode=mode))
            def check(case):  # called at once, within this iteration: the loop variable is the right one
                case.call_and_validate(base_url=server.url, excluded_checks=excluded, timeout=30,  # noqa: B023
                                       headers=auth)

            count += 1
            try:
                check()
            except Unsatisfiable:
                pass  # nothing about this operation can be made invalid (string path parameters only)
            except BaseException as exc:  # schemathesis groups its findings
                failures[f"{key[0]} {key[1]} ({mode.value})"] = "\n".join(
                    str(e)[:800] for e in getattr(exc, "exceptions", [exc]))
    assert count > 50
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert "internal error" not in server.log.read_text()
