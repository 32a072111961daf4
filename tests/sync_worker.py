"""A child process for crash tests: ingest a folder with the fake embedder, print the report
(with the wall-clock times the ingest began and ended and each batch was written, so kills
can be aimed inside it).

    python -m tests.sync_worker URI COLLECTION FOLDER CACHE_DIR
"""

from __future__ import annotations

import json
import sys
import time

from ragloom import RAG
from ragloom.testing import FakeEmbedder


def main() -> None:
    uri, collection, folder, cache_dir = sys.argv[1:5]
    writes: list[float] = []

    def wrote(*_: object) -> None:
        writes.append(time.time())
        print("WROTE", flush=True)
        time.sleep(0.05)

    embedder = FakeEmbedder(dim=32, max_tokens=256)
    with RAG(uri=uri, collection=collection, embedder=embedder, cache_dir=cache_dir) as rag:
        began = time.time()
        # One line a written batch, so a test can kill the process right after a write; the
        # pause keeps the next write from following at once (with the fake embedder, a
        # first ingest into an empty collection writes its batches back to back).
        report = rag.ingest([folder], progress=wrote)
        ended = time.time()
    print(
        "REPORT "
        + json.dumps({**report.to_dict(), "began": began, "ended": ended, "writes": writes}),
        flush=True,
    )


if __name__ == "__main__":
    main()
