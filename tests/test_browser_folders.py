"""Folders on the web page, in a real browser: a folder dropped on the page (a real drag
of a folder on disk, through Chromium's own drag events) or chosen with "choose a folder"
goes up as one .zip archive named after it, so dropping it again after an edit updates the
collection: the changed document replaced, the removed one gone.

Before, a dropped folder was sent as a file named after the folder and refused ("not a
document ragloom reads"), and a folder could not be chosen at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_helpers import STORAGE_FAQ, running_server

pytestmark = pytest.mark.timeout(120)


def _drop(page: Any, *paths: Path) -> None:
    """Drag files or folders from disk onto the conversation, as a user does."""
    cdp = page.context.new_cdp_session(page)
    data = {"items": [], "files": [str(p) for p in paths], "dragOperationsMask": 1}
    for kind in ("dragEnter", "dragOver", "drop"):
        cdp.send("Input.dispatchDragEvent", {"type": kind, "x": 700, "y": 400, "data": data})
    cdp.detach()


def _sources(url: str) -> list[str]:
    return sorted(s["name"] for s in httpx.get(f"{url}/v1/sources").json()["sources"])


def test_folders_go_up_as_one_archive_and_dropping_again_updates_it(
    browser: Any, tmp_path: Path
) -> None:
    team = tmp_path / "team docs"
    (team / "guides").mkdir(parents=True)
    (team / "storage_faq.md").write_text(STORAGE_FAQ)
    (team / "guides" / "looms.txt").write_text("Looms hold warp threads under tension.\n")
    (team / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))  # not read: left out
    (team / ".git").mkdir()
    (team / ".git" / "notes.md").write_text("# Hidden\n\nNot to be uploaded.\n")
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    (pictures / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    single = tmp_path / "notes.md"
    single.write_text("# Notes\n\nShuttles carry the weft across.\n")
    with running_server(tmp_path / "ragloom.db") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/")
        page.wait_for_selector("#sources .muted:has-text('No documents yet')")

        # A folder with nothing ragloom reads says so, and sends nothing.
        _drop(page, pictures)
        failed = page.locator(".upload.failed")
        failed.wait_for()
        assert "pictures/" in failed.inner_text()
        assert "no documents ragloom reads in this folder" in failed.inner_text()

        # A folder and a file dropped together: one upload, the folder as "team docs.zip".
        _drop(page, team, single)
        page.wait_for_selector(".upload.done", timeout=30_000)
        assert "3 documents added" in page.inner_text(".upload.done")
        page.wait_for_selector("#sources .source-name:has-text('storage_faq.md')")
        names = _sources(url)
        assert len(names) == 3 and any(n.endswith("notes.md") for n in names), names
        assert any("team docs.zip::guides/looms.txt" in n for n in names), names
        assert not any("Hidden" in n or ".git" in n or "logo" in n for n in names), names

        # The same folder again, after an edit and a removal: updated, not added twice.
        (team / "guides" / "looms.txt").write_text("Looms hold warp threads; heddles lift them.\n")
        (team / "storage_faq.md").unlink()
        _drop(page, team)
        page.locator(".upload.done").nth(1).wait_for(timeout=30_000)
        assert "0 documents added, 1 changed" in page.locator(".upload.done").first.inner_text()
        names = _sources(url)
        assert len(names) == 2 and not any("storage_faq" in n for n in names), names

        # By keyboard: after "choose files", Tab reaches "choose a folder".
        more = tmp_path / "more"
        more.mkdir()
        (more / "weaving.md").write_text("# Weaving\n\nA weaver works the loom.\n")
        page.locator("#file-input").focus()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "folder-input"
        with page.expect_file_chooser() as chooser:
            page.keyboard.press("Space")
        chooser.value.set_files(str(more))
        page.locator(".upload.done").nth(2).wait_for(timeout=30_000)
        assert any("more.zip::weaving.md" in n for n in _sources(url))
        assert not errors, errors
