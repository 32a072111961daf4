// ragloom's web page: talks to the server's HTTP API only (see docs/server.md).
// Plain JavaScript, nothing fetched from other hosts; one library, fflate (fflate.min.js,
// MIT), served with the page and loaded only to zip a folder for upload.
"use strict";

const $ = (selector) => document.querySelector(selector);
const KEY_STORAGE = "ragloom-api-key";
// asking: the answer being written, if any; keyDismissed: the key dialog was closed unused
const state = { history: [], asking: null, keyDismissed: false };

// ---------------------------------------------------------------------------------
// HTTP: every call carries the API key when one is stored; a 401 asks for it.

function authHeaders() {
  const key = localStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return (body.error && body.error.message) || response.statusText;
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

async function api(path, options = {}) {
  for (;;) {
    let response;
    try {
      const { background, ...init } = options;  // background: see the 401 below
      response = await fetch(path, {
        ...init,
        headers: { ...(init.headers || {}), ...authHeaders() },
      });
    } catch (_) {  // the browser says only "Failed to fetch"
      throw new Error("cannot reach the server: is it running?");
    }
    if (response.status === 401) {
      const message = await errorMessage(response);
      // A refresh in the background does not ask again for a key the user dismissed: the
      // next question or upload does.
      if (options.background && state.keyDismissed) throw new Error(`${message}: ask a question, or reload the page, to enter it`);
      await askForKey(message);
      continue;
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    return response;
  }
}

// Resolves once a key is entered; rejects when the dialog is dismissed (Escape), so
// what waited for the key fails with a message instead of waiting forever.
let keyPrompt = null;
function askForKey(message) {
  if (keyPrompt) return keyPrompt;
  keyPrompt = new Promise((resolve, reject) => {
    const dialog = $("#key-dialog");
    const error = $("#key-error");
    error.hidden = !localStorage.getItem(KEY_STORAGE);
    error.textContent = message;
    $("#key-form").onsubmit = () => {
      localStorage.setItem(KEY_STORAGE, $("#key-input").value.trim());
      keyPrompt = null;
      state.keyDismissed = false;
      resolve();
      refresh();  // the status line may show a refusal from before the key
    };
    dialog.oncancel = () => {
      keyPrompt = null;
      state.keyDismissed = true;
      reject(new Error("this server needs its API key: ask again, or reload the page, to enter it"));
    };
    dialog.showModal();
  });
  return keyPrompt;
}

// ---------------------------------------------------------------------------------
// Small DOM helpers (text is always set as text, never parsed as HTML).

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function clip(text, length) {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > length ? `${flat.slice(0, length)}…` : flat;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// ---------------------------------------------------------------------------------
// Collection status and sources.

async function refresh(background = false) {
  try {
    const [status, sources] = await Promise.all([
      api("/v1/status", { background }).then((r) => r.json()),
      api("/v1/sources", { background }).then((r) => r.json()),
    ]);
    renderStatus(status);
    renderSources(sources.sources);
  } catch (error) {
    showStatus(error.message, true);
    const list = $("#sources");
    if (list.querySelector(".loading")) {  // never loaded: say why instead of "loading…"
      list.replaceChildren(el("li", { class: "muted" }, `not available: ${error.message}`));
    }
  }
}

function showStatus(text, problem) {
  const line = $("#status-line");
  line.textContent = text;
  line.classList.toggle("problem", problem);  // not cut short on a narrow screen
}

function renderStatus(status) {
  const llm = status.server.llm;
  const answers = llm.provider === "none" ? "extractive answers (no model)" : `answers by ${llm.provider} (${llm.model})`;
  showStatus(
    `${status.collection} · ${plural(status.documents, "document")} · ${plural(status.chunks, "chunk")} · ${answers}`,
    false,
  );
  const facts = [
    ["Store", status.uri],
    ["Collection", status.exists ? status.collection : `${status.collection} (not created yet)`],
    ["Documents", status.documents],
    ["Chunks", status.chunks],
    ["Embedder", status.embedder],
    ["Search", status.bm25 ? "dense + BM25" : "dense"],
    ["Answers", llm.provider === "none" ? "extractive (no model)" : `${llm.provider} · ${llm.model}`],
  ];
  $("#collection").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v ?? "–"))]));
}

function renderSources(sources) {
  $("#source-count").textContent = sources.length ? `(${sources.length})` : "";
  $("#toggle-count").textContent = $("#source-count").textContent;
  const list = $("#sources");
  if (!sources.length) {
    list.replaceChildren(el("li", { class: "muted" }, "No documents yet: add some above."));
    return;
  }
  list.replaceChildren(
    ...sources.map((source) =>
      el(
        "li",
        { class: "source", title: source.source },
        el("span", { class: "source-name" }, source.name),
        el("span", { class: "source-chunks" }, plural(source.chunks, "chunk")),
        el("button", {
          class: "icon",
          title: `Remove ${source.name}`,
          "aria-label": `Remove ${source.name}`,
          onclick: () => removeSource(source),
        }, "×"),
      ),
    ),
  );
}

async function removeSource(source) {
  if (!confirm(`Remove ${source.name} from the collection?`)) return;
  try {
    await api(`/v1/sources/${encodeURIComponent(source.id)}`, { method: "DELETE" });
  } catch (error) {
    alert(error.message);
  }
  refresh();
}

// "name: why", unless the reason already starts with the name ("a.md is empty").
function problem(p) {
  return p.error.startsWith(p.name) ? p.error : `${p.name}: ${p.error}`;
}

// ---------------------------------------------------------------------------------
// Uploads: the bytes (XMLHttpRequest reports upload progress), then the ingest job.

function upload(files) {
  if (!files.length) return;
  const names = Array.from(files, (f) => f.name).join(", ");
  const bar = el("progress", { max: "1", value: "0" });
  const label = el("span", { class: "upload-state" }, "uploading…");
  const item = el("li", { class: "upload" }, el("span", { class: "upload-name" }, names), bar, label);
  $("#uploads").prepend(item);

  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const send = () => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/ingest");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) {
        bar.value = (e.loaded / e.total) * 0.3;
        label.textContent = `uploading ${Math.round((100 * e.loaded) / e.total)}%`;
      }
    };
    xhr.onerror = () => fail("the upload failed: is the server running?");
    xhr.onload = async () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 401) {
        try {
          await askForKey((body.error && body.error.message) || "API key needed");
        } catch (error) {
          return fail(error.message);
        }
        send();
      } else if (xhr.status !== 202) {
        fail((body.error && body.error.message) || `upload refused (${xhr.status})`);
      } else {
        follow(body.job);
      }
    };
    xhr.send(form);
  };
  const fail = (message) => {
    item.classList.add("failed");
    bar.value = 1;
    label.textContent = message;
  };
  const follow = async (job) => {
    for (;;) {
      const p = job.progress;
      bar.value = 0.3 + 0.7 * p.fraction;
      label.textContent =
        job.status === "queued" ? "waiting for the previous upload…" :
        `ingesting: ${p.documents_done}/${p.documents_total} documents, ${plural(p.chunks_embedded, "chunk")} embedded`;
      if (job.status === "done" || job.status === "failed") break;
      await new Promise((resolve) => setTimeout(resolve, 400));
      try {
        job = (await (await api(`/v1/jobs/${job.id}`)).json()).job;
      } catch (error) {
        return fail(error.message);
      }
    }
    if (job.status === "failed") return fail(job.error);
    const r = job.result;
    const problems = [...r.errors, ...r.skipped];
    bar.value = 1;
    item.classList.add(problems.length ? "partial" : "done");
    label.textContent =
      `${plural(r.added, "document")} added, ${r.changed} changed, ${r.unchanged} unchanged · ${plural(r.chunks, "chunk")}` +
      (problems.length ? ` · ${problems.length} not read: ${problems.map(problem).join("; ")}` : "");
    refresh();
  };
  send();
}

// A folder (dropped, or chosen with "choose a folder") goes up as one .zip archive named
// after it: the server reads it like any archive, so uploading the same folder again
// updates it (unchanged documents cost nothing, removed ones go).  Hidden files and
// files ragloom does not read are left out of the archive.

function readableName(path) {
  const parts = path.split("/");
  const kinds = $("#file-input").accept.split(",").filter((kind) => kind !== ".zip");
  const name = parts[parts.length - 1].toLowerCase();
  return !parts.some((part) => part.startsWith(".")) && kinds.some((kind) => name.endsWith(kind));
}

// [{path, file}] inside a dropped folder's entry, paths relative to it; hidden entries
// (.git and the like) are not walked.
async function entryFiles(entry, out = [], prefix = "") {
  if (entry.isFile) {
    out.push({ path: prefix + entry.name, file: await new Promise((ok, no) => entry.file(ok, no)) });
    return out;
  }
  const reader = entry.createReader();
  for (;;) {
    const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
    if (!batch.length) return out;
    for (const child of batch) {
      if (child.name.startsWith(".")) continue;
      await entryFiles(child, out, child.isDirectory ? `${prefix}${child.name}/` : prefix);
    }
  }
}

let zipLibrary = null;
function loadZipLibrary() {
  zipLibrary = zipLibrary || new Promise((resolve, reject) => {
    const script = el("script", { src: "/web/fflate.min.js" });
    script.onload = () => resolve(window.fflate);
    script.onerror = () => {
      zipLibrary = null;
      reject(new Error("could not load the page's zip library from the server"));
    };
    document.head.append(script);
  });
  return zipLibrary;
}

// The folder as a File "NAME.zip", or an Error saying why there is nothing to send.
async function zipFolder(name, files) {
  const kept = files.filter((f) => readableName(f.path));
  const archive = `${name.replace(/^\.+/, "") || "folder"}.zip`;
  if (!kept.length) {
    return new Error(`${name}/: no documents ragloom reads in this folder (${$("#dropzone-kinds").textContent})`);
  }
  const fflate = await loadZipLibrary();
  const data = {};
  for (const { path, file } of kept) data[path] = new Uint8Array(await file.arrayBuffer());
  const bytes = await new Promise((resolve, reject) => {
    fflate.zip(data, { level: 6 }, (error, out) => (error ? reject(error) : resolve(out)));
  });
  return new File([bytes], archive, { type: "application/zip" });
}

// Folders [{name, files: [{path, file}]}] and plain files, uploaded together.
async function uploadWithFolders(folders, files) {
  const made = [];
  for (const folder of folders) {
    let archive;
    try {
      if (folder.error) throw folder.error;
      archive = await zipFolder(folder.name, folder.files);
    } catch (error) {
      archive = new Error(`${folder.name}/: could not be read and zipped for upload (${error.message})`);
    }
    if (archive instanceof Error) {
      const label = el("span", { class: "upload-state" }, archive.message);
      $("#uploads").prepend(el("li", { class: "upload failed" }, el("span", { class: "upload-name" }, `${folder.name}/`), label));
    } else {
      made.push(archive);
    }
  }
  upload([...files, ...made]);
}

// ---------------------------------------------------------------------------------
// Questions: the answer streams in as server-sent events (question, token..., answer).

async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { name, data: JSON.parse(data.join("\n")) };
    }
  }
}

async function ask(question) {
  const asking = new AbortController();  // "New" aborts it: it belongs to the old conversation
  state.asking = asking;
  $("#ask-button").disabled = true;
  $("#empty")?.remove();
  const conversation = $("#conversation");
  conversation.append(el("div", { class: "message user" }, question));
  const text = el("div", { class: "answer-text streaming" });
  const note = el("div", { class: "searched-for" });
  const bubble = el("div", { class: "message assistant", "data-chunks": "0" }, note, text);
  const thinking = el("span", { class: "thinking" }, "searching your documents…");
  text.append(thinking);
  conversation.append(bubble);
  bubble.scrollIntoView({ block: "end" });

  const history = state.history.slice();
  let chunks = 0;
  try {
    const response = await api("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ question, history, stream: true }),
      signal: asking.signal,
    });
    for await (const { name, data } of readEvents(response)) {
      if (asking.signal.aborted) return;
      if (name === "question" && data.searched_for !== question) {
        note.textContent = `searched for: ${data.searched_for}`;
      } else if (name === "token") {
        if (!chunks) text.replaceChildren();
        text.append(data.text);
        bubble.dataset.chunks = String(++chunks);
        conversation.scrollTop = conversation.scrollHeight;
      } else if (name === "answer") {
        renderAnswer(bubble, text, data);
        state.history.push({ role: "user", content: question }, { role: "assistant", content: data.answer });
      } else if (name === "error") {
        throw new Error(data.error.message);
      }
    }
  } catch (error) {
    if (asking.signal.aborted) return;
    // The question stays part of the conversation (a follow-up may refer to it).
    const soFar = chunks ? `${text.textContent.trim()} …` : "(not answered)";
    state.history.push({ role: "user", content: question }, { role: "assistant", content: soFar });
    // Cut off mid-answer: what came stays, the message (which refers to it) goes below.
    const message = el("div", { class: "error" }, error.message);
    if (chunks) bubble.append(message);
    else text.replaceChildren(message);
    bubble.classList.add("failed");
  } finally {
    text.classList.remove("streaming");
    if (state.asking === asking) askDone();
    conversation.scrollTop = conversation.scrollHeight;
  }
}

function askDone() {
  state.asking = null;
  $("#ask-button").disabled = false;
}

// Models answer in markdown: its common marks are shown as what they mean (code blocks,
// `code`, **bold**, # headings); everything else stays as written (lists read fine as
// text). Built as DOM nodes, never as HTML, like the rest of the page.
// A fence: ``` or ~~~ (three or more), indented or not (inside a list item); one left
// open (an answer cut off) runs to the end.
const FENCE = /^[ \t]*(`{3,}|~{3,})[^\n]*\n([\s\S]*?)(?:^[ \t]*\1[ \t]*$|(?![\s\S]))/m;

function markdown(source, inline) {
  const nodes = [];
  const parts = source.replace(/\r\n/g, "\n").split(new RegExp(FENCE.source, "m"));
  parts.forEach((part, i) => {
    if (i % 3 === 1) return;  // the fence's marks
    if (i % 3 === 2) {
      nodes.push(el("pre", { class: "code" }, el("code", {}, part.replace(/\n$/, ""))));
      return;
    }
    // The line breaks around a block are the block's own: no blank gap above or below.
    if (i > 0) part = part.replace(/^\s*\n/, "");
    if (i < parts.length - 1) part = part.replace(/\n\s*$/, "");
    part.split(/^(#{1,6} [^\n]*)$/m).forEach((piece, j) => {
      if (j % 2) nodes.push(el("strong", { class: "md-heading" }, ...inline(piece.replace(/^#+ /, ""))));
      else nodes.push(...inline(piece));
    });
  });
  return nodes;
}

function inlineMarks(text, cite) {
  return text.split(/(`[^`\n]+`|\*\*[^*\n]+\*\*)/).flatMap((part, i) => {
    if (!(i % 2)) return cite(part);
    if (part.startsWith("`")) return [el("code", {}, part.slice(1, -1))];
    return [el("strong", {}, ...inlineMarks(part.slice(2, -2), cite))];  // `code` in **bold**
  });
}

function renderAnswer(bubble, text, answer) {
  // The text again, with each [n] a button that opens passage n.
  // A citation keeps the punctuation after it on its line.
  const cite = (chunk) =>
    chunk.split(/(\[\d+\][.,;:!?)]?)/).map((part) => {
      const match = /^\[(\d+)\](.?)$/.exec(part);
      const hit = match && answer.hits[Number(match[1]) - 1];
      if (!hit) return part;
      const n = Number(match[1]);
      const button = el("button", { class: "cite", title: hit.name, onclick: () => openPassage(n, hit) }, `[${n}]`);
      return el("span", { class: "nowrap" }, button, match[2]);
    });
  text.replaceChildren(...markdown(answer.answer, (t) => inlineMarks(t, cite)));
  if (answer.abstained) bubble.classList.add("abstained");
  if (answer.provider === "none" && !answer.abstained) {
    bubble.prepend(el("div", { class: "badge" }, "Extractive answer: sentences quoted from your documents"));
  }
  const cited = answer.citations.map((c) => c.n);
  const shown = cited.length ? cited : answer.abstained ? [] : answer.hits.map((_, i) => i + 1);
  if (shown.length) {
    const cards = el("div", { class: "cards" });
    for (const n of shown) {
      const hit = answer.hits[n - 1];
      cards.append(
        el(
          "button",
          { class: "source-card", onclick: () => openPassage(n, hit), title: "Read the passage" },
          el("span", { class: "card-n" }, String(n)),
          el("span", { class: "card-body" },
            el("span", { class: "card-file" }, hit.name),
            hit.heading ? el("span", { class: "card-heading" }, hit.heading) : null,
            el("span", { class: "card-passage" }, clip(hit.text.replace(/^#+ .*$/gm, ""), 180)),
          ),
        ),
      );
    }
    bubble.append(el("div", { class: "cards-title" }, cited.length ? "Sources" : "Passages consulted (none cited)"), cards);
  }
}

function openPassage(n, hit) {
  $("#passage-title").textContent = `[${n}] ${hit.name}`;
  $("#passage-heading").textContent = hit.heading || "";
  $("#passage-text").textContent = hit.text;
  $("#passage-meta").textContent = `${hit.source} · score ${hit.score.toFixed(3)}`;
  $("#passage-dialog").showModal();
}

// ---------------------------------------------------------------------------------
// Narrow screens: the sidebar is a drawer behind the toggle in the top bar, closed at
// first. On wide screens it is always shown and the toggle is hidden (style.css).

const NARROW = window.matchMedia("(max-width: 820px)");  // style.css's breakpoint

function sidebarOpen() {
  return $("#sidebar-toggle").getAttribute("aria-expanded") === "true";
}

function setSidebar(open) {
  $("#sidebar-toggle").setAttribute("aria-expanded", String(open));
  $("#layout").classList.toggle("sidebar-open", open);
  // What the open drawer covers is out of reach: no Tab or screen reader behind it.
  $(".chat").inert = open && NARROW.matches;
}

function startSidebar() {
  const toggle = $("#sidebar-toggle");
  toggle.addEventListener("click", () => setSidebar(!sidebarOpen()));
  $("#layout").addEventListener("click", (e) => {
    if (e.target === e.currentTarget && sidebarOpen()) setSidebar(false);  // the dimmed part
  });
  document.addEventListener("keydown", (e) => {
    // Escape in an open dialog is the dialog's: the drawer under it stays.
    if (e.key !== "Escape" || !sidebarOpen() || !NARROW.matches || $("dialog[open]")) return;
    setSidebar(false);
    toggle.focus();
  });
  // Widened, the sidebar is in place; narrowed again, it starts closed.
  NARROW.addEventListener("change", () => setSidebar(false));
  setSidebar(false);
}

// ---------------------------------------------------------------------------------

function start() {
  startSidebar();
  const input = $("#file-input");
  input.addEventListener("change", () => {
    upload(Array.from(input.files));
    input.value = "";
  });
  const folderInput = $("#folder-input");
  folderInput.addEventListener("change", () => {
    // Each file's webkitRelativePath starts with the chosen folder's name.
    const byName = new Map();
    for (const file of Array.from(folderInput.files)) {
      const [name, ...rest] = file.webkitRelativePath.split("/");
      if (!byName.has(name)) byName.set(name, { name, files: [] });
      byName.get(name).files.push({ path: rest.join("/"), file });
    }
    folderInput.value = "";
    uploadWithFolders([...byName.values()], []);
  });
  const drop = $("#dropzone");
  drop.addEventListener("dragover", () => drop.classList.add("over"));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  // Files dropped anywhere on the page are uploaded (the browser would otherwise open
  // the file in this tab, and the conversation would be gone).
  let dragEnd = null;
  const carriesFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types).includes("Files");
  document.addEventListener("dragover", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    document.body.classList.add("dragging");
    clearTimeout(dragEnd);  // no event says the drag left the window: it stops coming
    dragEnd = setTimeout(() => document.body.classList.remove("dragging"), 200);
  });
  document.addEventListener("drop", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    drop.classList.remove("over");
    document.body.classList.remove("dragging");
    // Entries are read now: the drop's items are gone once this handler returns.
    const files = [];
    const folders = [];
    for (const item of Array.from(e.dataTransfer.items)) {
      if (item.kind !== "file") continue;
      const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
      if (entry && entry.isDirectory) folders.push(entry);
      else files.push(item.getAsFile());
    }
    if (!folders.length) return upload(files);
    Promise.all(folders.map(async (entry) => {
      try {
        return { name: entry.name, files: await entryFiles(entry) };
      } catch (error) {
        return { name: entry.name, files: [], error };
      }
    })).then((read) => uploadWithFolders(read, files));
  });

  const questionBox = $("#question");
  const intro = $("#empty").cloneNode(true);  // shown again by "New"
  $("#ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const question = questionBox.value.trim();
    if (!question || state.asking) return;
    questionBox.value = "";
    ask(question);
  });
  questionBox.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("#ask-form").requestSubmit();
    }
  });
  $("#new-chat").addEventListener("click", () => {
    if (state.asking) {  // stop the answer being written (the server stops the model too)
      state.asking.abort();
      askDone();
    }
    state.history = [];
    $("#conversation").replaceChildren(intro.cloneNode(true));
    questionBox.focus();
  });
  $("#passage-dialog").addEventListener("click", (e) => {
    if (e.target === e.currentTarget) e.currentTarget.close();  // a click outside the box
  });
  refresh();
  setInterval(() => { if (!document.hidden) refresh(true); }, 15000);
}

document.addEventListener("DOMContentLoaded", start);
