"""benchmarks/_docs.py: a benchmark rewrites only the text between its markers."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks._docs import replace_section, replace_text

DOC = """# Title

Prose before.

<!-- speed:begin -->
old table
<!-- speed:end -->

Prose after. <!-- other:begin -->keep<!-- other:end -->
"""


def test_only_the_named_section_changes() -> None:
    new = replace_text(DOC, "speed", "| a |\n|---|\n")
    assert "<!-- speed:begin -->\n| a |\n|---|\n<!-- speed:end -->" in new
    assert "old table" not in new
    assert new.replace("| a |\n|---|", "old table") == DOC
    assert replace_text(new, "speed", "| a |\n|---|") == new  # idempotent


def test_a_missing_or_repeated_marker_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no section 'nope'"):
        replace_text(DOC, "nope", "x")
    with pytest.raises(ValueError, match="more than once"):
        replace_text(DOC + DOC, "speed", "x")
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    with pytest.raises(SystemExit, match=r"doc\.md: no section 'nope'"):
        replace_section(doc, "nope", "x")
    assert doc.read_text() == DOC
    replace_section(doc, "other", "kept")
    assert "<!-- other:begin -->\nkept\n<!-- other:end -->" in doc.read_text()
