"""The web page in a real browser: headless Chromium (Debian's package) driven by
Playwright opens the page, uploads a document, asks about it, and sees the answer
stream in with a source card that opens the passage.

The model behind ragloom is ``FakeOpenAIServer`` (the real ``openai`` SDK over loopback
HTTP, streaming word by word); the page talks to the server over HTTP only.  Without
Chromium the test is skipped, unless RAGLOOM_REQUIRE_BROWSER is set (``make test``).
Set RAGLOOM_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ragloom.llms.openai_compat import OpenAICompatLLM
from ragloom.testing import DEFAULT_ANSWER, Cut, FakeOpenAIServer, Reply
from tests.server_helpers import STORAGE_FAQ, SlowLLM, running_server

ANSWER = (
    "Milvus keeps inserted data in object storage such as MinIO or S3 [1], metadata in etcd [1]."
)
#: In markdown, as models write: the page shows what the marks mean.
FOLLOW_UP = (  # a fence indented in a list item, as models write them
    "Its **metadata** is kept in `etcd` [1].\n\n1. Point Milvus at it:\n   ```yaml\n"
    "   etcd:\n     endpoints: [localhost:2379]\n   ```\n2. Restart Milvus."
)
#: An unbroken word longer than the conversation is wide (a path, a URL).
LONG_WORD = "/srv/" + "very_long_directory_name_" * 14 + "milvus.yaml"
#: Where to keep the screenshots too (they are always taken in the test's temp folder).
KEEP_SCREENSHOTS = os.environ.get("RAGLOOM_SCREENSHOT_DIR")

pytestmark = pytest.mark.timeout(120)


def test_upload_ask_and_read_a_cited_passage(browser: Any, tmp_path: Path) -> None:
    document = tmp_path / "storage_faq.md"
    document.write_text(STORAGE_FAQ)
    with FakeOpenAIServer() as provider:
        provider.enqueue(Reply(ANSWER))
        llm = OpenAICompatLLM(
            "openai", "gpt-4o-mini", api_key="sk-fake", base_url=provider.base_url
        )
        with running_server(tmp_path / "ragloom.db", llm=llm) as url:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda request: errors.append(request.url))
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(url + "/")
            page.wait_for_selector("#sources .muted:has-text('No documents yet')")

            # By keyboard: Tab reaches "choose files" (first on the page), Space opens it.
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.id") == "file-input"
            # Space, or Enter (both open it; under load headless Chromium has once dropped
            # the first key press on the input, in CI).
            try:
                with page.expect_file_chooser(timeout=10_000) as chooser:
                    page.keyboard.press("Space")
            except Exception:  # playwright's TimeoutError
                assert page.evaluate("document.activeElement.id") == "file-input"
                with page.expect_file_chooser() as chooser:
                    page.keyboard.press("Enter")
            chooser.value.set_files(str(document))
            page.wait_for_selector(".upload.done", timeout=30_000)
            assert "1 document added" in page.inner_text(".upload.done")
            page.wait_for_selector("#sources .source-name:has-text('storage_faq.md')")
            assert "1 document" in page.inner_text("#status-line")

            page.fill("#question", "Where does Milvus store data?")
            page.press("#question", "Enter")
            page.wait_for_selector(".message.assistant .source-card", timeout=30_000)
            answer = page.locator(".message.assistant")
            # Streamed: the answer arrived as many token events, not one block.
            assert int(answer.get_attribute("data-chunks") or 0) > 5
            assert "object storage such as MinIO or S3 [1]" in answer.inner_text()
            card = page.locator(".source-card").first
            assert "storage_faq.md" in card.inner_text()
            assert "Storage FAQ > Where does Milvus store data?" in card.inner_text()
            screenshot = tmp_path / "answer.png"
            page.screenshot(path=str(screenshot))

            card.click()
            dialog = page.locator("#passage-dialog[open]")
            dialog.wait_for()
            assert "Azure Blob Storage" in dialog.inner_text()
            page.screenshot(path=str(tmp_path / "passage.png"))
            page.keyboard.press("Escape")

            # A follow-up: the page sends the conversation, the model rewrites the question.
            # On a laptop-sized window, with a long path in it (QA: the page scrolled
            # sideways at 821-1220 px, cutting off the top bar and the sidebar).
            page.set_viewport_size({"width": 900, "height": 800})
            rewritten = f"Where does Milvus keep its metadata ({LONG_WORD})?"
            provider.enqueue(Reply(rewritten), Reply(FOLLOW_UP))
            page.fill("#question", f"And the metadata in {LONG_WORD}?")
            page.press("#question", "Enter")
            second = page.locator(".message.assistant").nth(1)
            second.locator(".source-card").wait_for(timeout=30_000)
            assert "searched for: Where does Milvus keep its metadata" in second.inner_text()
            assert "Its metadata is kept in etcd [1]." in second.inner_text()
            assert second.locator(".answer-text > strong").inner_text() == "metadata"
            assert second.locator(".answer-text > code").inner_text() == "etcd"
            assert "endpoints:" in second.locator("pre.code").inner_text()
            assert "**" not in second.inner_text() and "```" not in second.inner_text()
            wide = "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
            assert page.evaluate(wide) <= 0
            page.screenshot(path=str(tmp_path / "narrow.png"))
            assert "Assistant: " + ANSWER in provider.chat_texts()[-2]

            assert not errors, errors
            # Offline: everything the page loaded came from the server itself.
            assert requested and all(u.startswith((url, "data:")) for u in requested), requested
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    if KEEP_SCREENSHOTS:
        Path(KEEP_SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        for name in ("answer.png", "passage.png", "narrow.png"):
            (Path(KEEP_SCREENSHOTS) / name).write_bytes((tmp_path / name).read_bytes())
    assert provider.requests_to("chat")[0].body["stream"] is True


def test_the_page_asks_for_the_api_key_and_uses_it(browser: Any, tmp_path: Path) -> None:
    with running_server(tmp_path / "ragloom.db", api_key="page-key") as url:
        page = browser.new_page()
        page.clock.install()  # the page's 15 s refresh, on a clock the test moves
        page.goto(url + "/")
        page.locator("#key-dialog[open]").wait_for()
        page.keyboard.press("Escape")  # dismissed: the page says so instead of waiting
        page.wait_for_selector("#status-line:has-text('this server needs its API key')")
        page.wait_for_selector("#sources li:has-text('not available')")  # not "loading…"
        # The refresh in the background does not open the dialog again (QA: every 15 s).
        page.clock.run_for(16_000)
        page.wait_for_timeout(500)
        assert page.locator("#key-dialog[open]").count() == 0
        page.set_input_files("#file-input", str(_document(tmp_path)))
        page.locator("#key-dialog[open]").wait_for()
        page.keyboard.press("Escape")
        page.wait_for_selector(".upload.failed:has-text('needs its API key')")
        page.fill("#question", "Where does Milvus store data?")
        page.press("#question", "Enter")  # asks for the key again
        page.locator("#key-dialog[open]").wait_for()
        page.keyboard.press("Escape")
        page.wait_for_selector(".message.assistant.failed:has-text('needs its API key')")
        assert page.is_enabled("#ask-button")
        page.fill("#question", "Where does Milvus store data?")
        page.press("#question", "Enter")
        page.locator("#key-dialog[open]").wait_for()
        page.fill("#key-input", "wrong")
        page.click("#key-form button")
        page.locator("#key-error:has-text('wrong API key')").wait_for()  # asked again
        page.fill("#key-input", "page-key")
        page.click("#key-form button")
        # The status line is read again with the key, not at the next 15-second refresh.
        page.wait_for_selector("#status-line:has-text('0 documents')", timeout=5_000)
        assert page.evaluate("localStorage.getItem('ragloom-api-key')") == "page-key"


def test_the_api_docs_render_without_the_internet(browser: Any, tmp_path: Path) -> None:
    with running_server(tmp_path / "ragloom.db") as url:
        page = browser.new_page()
        remote: list[str] = []

        def only_loopback(route: Any) -> None:
            if route.request.url.startswith(url):
                route.continue_()
            else:
                remote.append(route.request.url)
                route.abort()

        page.route("**/*", only_loopback)
        page.goto(url + "/docs")
        page.locator(".opblock-summary-path:has-text('/v1/search')").first.wait_for()
        assert page.locator(".opblock").count() >= 9  # every endpoint, from /openapi.json
        assert remote == []  # nothing asked of another host


def test_an_answer_cut_off_keeps_its_text_and_a_stopped_server_is_named(
    browser: Any, tmp_path: Path
) -> None:
    with FakeOpenAIServer() as provider:
        provider.enqueue(Cut(after=4))
        llm = OpenAICompatLLM(
            "openai", "gpt-4o-mini", api_key="sk-fake", base_url=provider.base_url
        )
        with running_server(tmp_path / "ragloom.db", llm=llm) as url:
            page = browser.new_page()
            page.goto(url + "/")
            page.set_input_files("#file-input", str(_document(tmp_path)))
            page.wait_for_selector(".upload.done", timeout=30_000)
            page.fill("#question", "Where does Milvus store data?")
            page.press("#question", "Enter")
            cut = page.locator(".message.assistant.failed")
            cut.wait_for(timeout=30_000)
            # The words that came stay on the page: the message says "the answer above".
            shown = cut.locator(".answer-text").inner_text()
            assert shown and DEFAULT_ANSWER.startswith(shown), shown
            assert "the answer above is incomplete" in cut.locator(".error").inner_text()
        page.fill("#question", "Is it still there?")
        page.press("#question", "Enter")
        down = page.locator(".message.assistant.failed").nth(1)
        down.wait_for(timeout=10_000)
        assert down.inner_text() == "cannot reach the server: is it running?"


def test_a_narrow_screen_shows_the_page_without_sideways_scrolling(
    browser: Any, tmp_path: Path
) -> None:
    with running_server(tmp_path / "ragloom.db") as url:
        page = browser.new_page(viewport={"width": 375, "height": 700}, is_mobile=True)
        page.goto(url + "/")
        page.click("#sidebar-toggle")  # the documents are behind it on a phone
        page.set_input_files("#file-input", str(_document(tmp_path)))
        page.wait_for_selector(".upload.done", timeout=30_000)
        page.click("#sidebar-toggle")
        page.fill("#question", "Where does Milvus store data?")
        page.press("#question", "Enter")
        page.wait_for_selector(".message.assistant .source-card", timeout=30_000)
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1] == 375, widths
        for selector in ("#question", "#ask-button", ".source-card"):
            box = page.locator(selector).first.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375


#: Phone screens: the sidebar is behind its toggle, the conversation has the screen.
PHONES = [{"width": 375, "height": 667}, {"width": 320, "height": 568}]


#: True once the sidebar has finished sliding in (or out).
SLID_IN = "document.getElementById('sidebar').getAnimations().length === 0"


def _inside(page: Any, selector: str) -> bool:
    """The element is shown whole within the viewport, without scrolling."""
    if not page.is_visible(selector):
        return False
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"]
        and box["y"] + box["height"] <= size["height"]
    )


@pytest.mark.parametrize("viewport", PHONES, ids=["375x667", "320x568"])
def test_a_phone_gives_the_screen_to_the_conversation(
    browser: Any, tmp_path: Path, viewport: dict[str, int]
) -> None:
    with running_server(tmp_path / "ragloom.db") as url:
        page = browser.new_page(viewport=viewport, is_mobile=True, has_touch=True)
        page.goto(url + "/")
        page.wait_for_selector("#status-line:has-text('0 documents')")
        for selector in ("#question", "#ask-button", "#new-chat"):
            assert _inside(page, selector), selector
        conversation = page.locator("#conversation").bounding_box()
        assert conversation is not None
        assert conversation["height"] > 0.5 * viewport["height"], conversation
        assert conversation["width"] == viewport["width"], conversation
        assert not page.is_visible(".sidebar")
        assert not page.is_visible("#dropzone")
        # The sidebar is there, closed behind its toggle, which says what it opens.
        assert _inside(page, "#sidebar-toggle")
        toggle = page.locator("#sidebar-toggle")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert toggle.get_attribute("aria-controls") == "sidebar"
        assert "Documents" in toggle.inner_text()
        assert page.locator("#sidebar.sidebar").count() == 1
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1] == viewport["width"], widths
        page.screenshot(path=str(tmp_path / "phone.png"))
        _keep(tmp_path / "phone.png", f"phone-{viewport['width']}.png")


def test_the_sidebar_toggle_opens_and_closes_the_sidebar_on_a_phone(
    browser: Any, tmp_path: Path
) -> None:
    with running_server(tmp_path / "ragloom.db") as url:
        page = browser.new_page(viewport=PHONES[0], is_mobile=True, has_touch=True)
        page.goto(url + "/")
        page.wait_for_selector("#status-line:has-text('0 documents')")
        sidebar = page.locator("#sidebar")
        toggle = page.locator("#sidebar-toggle")
        assert not sidebar.is_visible()

        toggle.click()
        sidebar.wait_for(state="visible")
        assert toggle.get_attribute("aria-expanded") == "true"
        page.wait_for_function(SLID_IN)
        for selector in ("#dropzone", "#sources", "#sidebar-toggle"):
            assert _inside(page, selector), selector
        # Usable: a document uploaded from it is listed in it.
        page.set_input_files("#file-input", str(_document(tmp_path)))
        page.wait_for_selector(".upload.done", timeout=30_000)
        page.wait_for_selector("#sources .source-name:has-text('storage_faq.md')")
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], widths
        page.screenshot(path=str(tmp_path / "phone-sidebar.png"))
        _keep(tmp_path / "phone-sidebar.png", "phone-sidebar.png")
        # While it is open, what it covers is out of reach (no Tab into the hidden chat).
        assert page.evaluate("document.querySelector('.chat').inert") is True

        toggle.click()
        sidebar.wait_for(state="hidden")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert page.evaluate("document.querySelector('.chat').inert") is False
        page.fill("#question", "Where does Milvus store data?")  # the chat is back
        assert "1 document" in toggle.inner_text() or "(1)" in toggle.inner_text()

        # The keyboard: Enter opens it, Escape closes it and gives the focus back.
        toggle.focus()
        page.keyboard.press("Enter")
        sidebar.wait_for(state="visible")
        page.keyboard.press("Tab")  # into the sidebar, which comes next
        assert page.evaluate("document.getElementById('sidebar').contains(document.activeElement)")
        page.keyboard.press("Escape")
        sidebar.wait_for(state="hidden")
        assert page.evaluate("document.activeElement.id") == "sidebar-toggle"
        assert toggle.get_attribute("aria-expanded") == "false"

        # A tap beside the open sidebar (on the dimmed conversation) closes it too.
        page.keyboard.press(" ")
        sidebar.wait_for(state="visible")
        page.mouse.click(PHONES[0]["width"] - 5, PHONES[0]["height"] // 2)
        sidebar.wait_for(state="hidden")
        assert toggle.get_attribute("aria-expanded") == "false"


def test_a_desktop_screen_shows_the_sidebar_without_a_toggle(browser: Any, tmp_path: Path) -> None:
    with running_server(tmp_path / "ragloom.db") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url + "/")
        page.wait_for_selector("#status-line:has-text('0 documents')")
        for selector in (".sidebar", "#dropzone", "#sources", "#collection"):
            assert page.is_visible(selector), selector
        assert page.locator("#sidebar-toggle").count() == 1  # there, for narrow screens
        assert not page.is_visible("#sidebar-toggle")
        sidebar = page.locator(".sidebar").bounding_box()
        chat = page.locator(".chat").bounding_box()
        assert sidebar is not None and chat is not None
        assert sidebar["x"] + sidebar["width"] <= chat["x"]  # side by side, as before
        assert sidebar["height"] > 0.8 * 800 - 80
        assert _inside(page, "#question") and _inside(page, "#ask-button")

        # Narrowed, the sidebar folds away; opened there and widened again, it is back in
        # place with the conversation usable (not left behind a backdrop).
        page.set_viewport_size(PHONES[0])
        page.locator("#sidebar").wait_for(state="hidden")
        page.click("#sidebar-toggle")
        page.locator("#sidebar").wait_for(state="visible")
        page.set_viewport_size({"width": 1280, "height": 800})
        assert not page.is_visible("#sidebar-toggle")
        assert page.is_visible("#sidebar")
        # (The page hears of the new width at its next frame.)
        page.wait_for_function("!document.querySelector('.chat').inert", timeout=5_000)
        assert page.get_attribute("#sidebar-toggle", "aria-expanded") == "false"
        page.click("#question")
        page.fill("#question", "Still usable?")
        assert page.input_value("#question") == "Still usable?"


def _keep(screenshot: Path, name: str) -> None:
    if KEEP_SCREENSHOTS:
        Path(KEEP_SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        (Path(KEEP_SCREENSHOTS) / name).write_bytes(screenshot.read_bytes())


def _document(folder: Path) -> Path:
    document = folder / "storage_faq.md"
    document.write_text(STORAGE_FAQ)
    return document


#: True once the page's (only) answer shows two streamed pieces.
STREAMING = "Number(document.querySelector('.message.assistant')?.dataset.chunks) >= 2"


def test_new_during_an_answer_stops_it_and_starts_afresh(browser: Any, tmp_path: Path) -> None:
    llm = SlowLLM()
    with running_server(tmp_path / "ragloom.db", llm=llm) as url:
        page = browser.new_page()
        asked: list[Any] = []
        page.on("request", lambda r: asked.append(r.post_data) if "/v1/ask" in r.url else None)
        page.goto(url + "/")
        page.set_input_files("#file-input", str(_document(tmp_path)))
        page.wait_for_selector(".upload.done", timeout=30_000)
        page.fill("#question", "Where does Milvus store data?")
        page.press("#question", "Enter")
        page.wait_for_function(STREAMING, timeout=30_000)
        page.click("#new-chat")
        assert page.locator(".message").count() == 0
        assert page.is_visible("#empty h1:has-text('Ask your documents')")  # not a blank pane
        assert page.is_enabled("#ask-button")  # not held until the old answer ends
        page.fill("#question", "Is Milvus free?")
        page.press("#question", "Enter")
        page.wait_for_function(STREAMING, timeout=5_000)
        # The new conversation does not carry the dropped answer, and the server stopped
        # writing it when the page went away.
        assert json.loads(asked[-1])["history"] == []
        assert llm.stopped
        assert [p.messages[-1].content.count("Is Milvus free?") for p in llm.prompts] == [0, 1]
