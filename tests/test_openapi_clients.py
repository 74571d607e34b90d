"""The OpenAPI document is a product: it lints clean under Spectral's `spectral:oas` and Redocly's recommended
rulesets (0 errors, 0 warnings), and clients generated from it compile (TypeScript, `tsc --strict`) and work
against a running server (Python, openapi-python-client). The Node tools are pinned in tools/openapi and
installed by `make test`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_browser import api_server  # noqa: F401 - the app on a real port (a fixture)

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools" / "openapi"
BIN = TOOLS / "node_modules" / ".bin"
DOCUMENT = ROOT / "openapi" / "openapi.json"


def _tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{path} is missing: `make test` installs tools/openapi (npm ci)"
    return str(path)


def _run(*argv: str, cwd: Path = TOOLS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document as the server renders it now (the committed one is checked against it by `crm openapi`)."""
    from app.openapi_doc import render

    path = tmp_path_factory.mktemp("doc") / "openapi.json"
    path.write_text(render())
    return path


def test_spectral_oas_finds_nothing(document: Path):
    result = _run(_tool("spectral"), "lint", str(document), "--ruleset", str(TOOLS / ".spectral.yaml"),
                  "--format", "json", "--fail-severity", "hint", "--quiet")
    findings = json.loads(result.stdout or "[]")
    assert findings == [], [(f["code"], f["message"], ".".join(map(str, f["path"]))) for f in findings[:20]]
    assert result.returncode == 0, result.stderr


def test_redocly_recommended_finds_nothing(document: Path):
    result = _run(_tool("redocly"), "lint", str(document), "--config", str(TOOLS / "redocly.yaml"),
                  "--format", "json")
    report = json.loads(result.stdout[result.stdout.index("{"):])
    problems = [(p["ruleId"], p["severity"], p["message"]) for p in report["problems"]]
    assert problems == [] and result.returncode == 0, problems[:20]


def test_a_typescript_client_compiles_strictly(document: Path, tmp_path: Path):
    generated = _run(_tool("openapi-typescript"), str(document), "-o", str(tmp_path / "crm.d.ts"))
    assert generated.returncode == 0, generated.stderr
    shutil.copy(TOOLS / "client" / "board.ts", tmp_path / "board.ts")
    compiled = _run(_tool("tsc"), "--strict", "--noEmit", "--target", "es2022", "--lib", "es2022,dom",
                    "--module", "esnext", "--moduleResolution", "bundler", str(tmp_path / "board.ts"))
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    # and the program would not compile against a document missing what it uses
    broken = (tmp_path / "crm.d.ts").read_text().replace("expanded?:", "expandedd?:")
    (tmp_path / "crm.d.ts").write_text(broken)
    assert _run(_tool("tsc"), "--strict", "--noEmit", "--target", "es2022", "--lib", "es2022,dom", "--module",
                "esnext", "--moduleResolution", "bundler", str(tmp_path / "board.ts")).returncode != 0


def test_a_python_client_generated_from_the_document_works_against_a_live_server(document: Path, tmp_path: Path,
                                                                                   api_server: str):  # noqa: F811
    generator = Path(sys.executable).parent / "openapi-python-client"
    generated = _run(str(generator), "generate", "--path", str(document), "--meta", "none", "--output-path",
                     str(tmp_path / "crm_client"), cwd=tmp_path)
    assert generated.returncode == 0, generated.stdout[-2000:] + generated.stderr[-2000:]
    assert "will not be generated" not in generated.stdout, generated.stdout[-3000:]
    ran = subprocess.run([sys.executable, str(TOOLS / "client" / "board.py"), api_server], cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True,
                         timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr[-3000:]
    seen = json.loads(ran.stdout)
    assert seen["card"] == seen["deal"] and (seen["contact"], seen["owner"]) == ("Ana", "Olga Owner")
    assert seen["stages"] >= 3 and seen["deals"] == 1 and seen["value"] == "1200.00"
    assert seen["problem"] == [422, "/problems/validation"]
    assert seen["feed"] == [seen["deal"], "Acme: 50 seats", "user"]  # typed envelope: DealChange → DealRead
    assert seen["timeline"] == ["StageChangeEntry"]  # the deal entering its first stage, on Ana's timeline


def test_every_request_body_has_an_example_that_the_server_accepts():
    """Each operation's request body example (or its schema's) parses with the operation's own body model."""
    from pydantic import TypeAdapter

    from app.api.openapi_post import _api_routes
    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings(env="test", jwt_secret="x" * 40))
    doc = app.openapi()
    bodies = {r.operation_id: r.body_field for r in _api_routes(app.routes) if getattr(r, "body_field", None)}
    missing, invalid = [], []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                ref = content.get("schema", {}).get("$ref")
                target = doc["components"]["schemas"][ref.split("/")[-1]] if ref else content.get("schema", {})
                examples = ([content["example"]] if "example" in content else []) + target.get("examples", [])
                if not examples:
                    missing.append(f"{method} {path} {media}")
                field = bodies.get(op["operationId"])
                if media != "application/json" or field is None:
                    continue  # form posts: strings and files on the wire
                adapter = TypeAdapter(field.field_info.annotation)
                for example in examples:
                    try:
                        adapter.validate_python(example)
                    except ValueError as exc:
                        invalid.append(f"{method} {path}: {exc}")
    assert missing == [] and invalid == [], (missing, invalid)
