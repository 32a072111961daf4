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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragloom.llms.openai_compat import OpenAICompatLLM
from ragloom.testing import DEFAULT_ANSWER, Cut, FakeOpenAIServer, Reply
from tests.server_helpers import STORAGE_FAQ, SlowLLM, running_server

CHROMIUM = Path(os.environ.get("RAGLOOM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ANSWER = (
    "Milvus keeps inserted data in object storage such as MinIO or S3 [1], metadata in etcd [1]."
)
FOLLOW_UP = "Its metadata is kept in etcd [1]."
#: Where to keep the screenshots too (they are always taken in the test's temp folder).
KEEP_SCREENSHOTS = os.environ.get("RAGLOOM_SCREENSHOT_DIR")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        if os.environ.get("RAGLOOM_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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

            page.set_input_files("#file-input", str(document))
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
            provider.enqueue(Reply("Where does Milvus keep its metadata?"), Reply(FOLLOW_UP))
            page.fill("#question", "And the metadata?")
            page.press("#question", "Enter")
            second = page.locator(".message.assistant").nth(1)
            second.locator(".source-card").wait_for(timeout=30_000)
            assert "searched for: Where does Milvus keep its metadata?" in second.inner_text()
            assert "etcd [1]" in second.inner_text()
            assert "Assistant: " + ANSWER in provider.chat_texts()[-2]

            assert not errors, errors
            # Offline: everything the page loaded came from the server itself.
            assert requested and all(u.startswith((url, "data:")) for u in requested), requested
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    if KEEP_SCREENSHOTS:
        Path(KEEP_SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        for name in ("answer.png", "passage.png"):
            (Path(KEEP_SCREENSHOTS) / name).write_bytes((tmp_path / name).read_bytes())
    assert provider.requests_to("chat")[0].body["stream"] is True


def test_the_page_asks_for_the_api_key_and_uses_it(browser: Any, tmp_path: Path) -> None:
    with running_server(tmp_path / "ragloom.db", api_key="page-key") as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.locator("#key-dialog[open]").wait_for()
        page.keyboard.press("Escape")  # dismissed: the page says so instead of waiting
        page.wait_for_selector("#status-line:has-text('this server needs its API key')")
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
        page.set_input_files("#file-input", str(_document(tmp_path)))
        page.wait_for_selector(".upload.done", timeout=30_000)
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
        assert page.is_enabled("#ask-button")  # not held until the old answer ends
        page.fill("#question", "Is Milvus free?")
        page.press("#question", "Enter")
        page.wait_for_function(STREAMING, timeout=5_000)
        # The new conversation does not carry the dropped answer, and the server stopped
        # writing it when the page went away.
        assert json.loads(asked[-1])["history"] == []
        assert llm.stopped
        assert [p.messages[-1].content.count("Is Milvus free?") for p in llm.prompts] == [0, 1]
