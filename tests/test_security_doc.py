"""docs/security.md names, for every threat, the tests that prove its defence: each must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_named_in_the_security_doc_exists():
    doc = (ROOT / "docs" / "security.md").read_text()
    named = re.findall(r"`(tests/[a-z_0-9]+\.py)(?:::([a-z_0-9]+))?`", doc)
    assert len(named) > 50
    missing = []
    for path, name in named:
        source = ROOT / path
        if not source.exists() or (name and not re.search(rf"def {name}\b", source.read_text())):
            missing.append(f"{path}::{name}" if name else path)
    assert missing == []
