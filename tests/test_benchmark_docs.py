"""benchmarks/_docs.py: a benchmark rewrites only the text between its markers."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
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


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_readme_names_every_script_with_options_it_has() -> None:
    readme = (BENCHMARKS / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+\.py)` \| `([^`]+)` \|", readme, re.MULTILINE))
    scripts = {p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_")}
    assert set(rows) == scripts
    for name, command in rows.items():
        assert command.startswith(f".venv/bin/python benchmarks/{name}"), name
        source = (BENCHMARKS / name).read_text()
        options = set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", source))
        assert set(re.findall(r"--[\w-]+", command)) <= options, name


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("abstention.py", [], "milvus_docs_2.4.x_en.zip: not found (pass --archive PATH)"),
        ("abstention.py", ["--archive", "README.md"], "dev.jsonl: not found (the archive"),
        ("retrieval_ablation.py", [], "milvus_docs_2.4.x_en.zip: not found (the archive"),
        ("retrieval.py", ["--archive", "README.md"], "dev.jsonl: not found (the archive"),
        ("cold_start.py", [], "milvus_docs_2.4.x_en.zip: not found (the archive"),
        ("extractive.py", [], "milvus_docs_2.4.x_en.zip: not found (the archive"),
        ("cold_start.py", ["--db", "nowhere.db"], "nowhere.db: not found (pass --db FILE)"),
        ("load.py", ["--corpus", "README.md", "--modes", "hybrid,fast"], "--modes: unknown fast"),
        ("scale.py", ["--n", "0"], "--n must be at least 10"),
    ],
)
def test_a_benchmark_without_its_inputs_says_so_before_starting(
    tmp_path: Path, script: str, args: list[str], message: str
) -> None:
    # A checkout with no ../shared beside it.
    shutil.copytree(BENCHMARKS, tmp_path / "checkout" / "benchmarks")
    (tmp_path / "checkout" / "README.md").write_text("not an archive\n")
    proc = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        cwd=tmp_path / "checkout", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
