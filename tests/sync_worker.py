"""A child process for crash tests: ingest a folder with the fake embedder, print the report.

    python -m tests.sync_worker URI COLLECTION FOLDER CACHE_DIR
"""

from __future__ import annotations

import json
import sys

from ragloom import RAG
from ragloom.testing import FakeEmbedder


def main() -> None:
    uri, collection, folder, cache_dir = sys.argv[1:5]
    embedder = FakeEmbedder(dim=32, max_tokens=256)
    with RAG(uri=uri, collection=collection, embedder=embedder, cache_dir=cache_dir) as rag:
        report = rag.ingest([folder])
    print(json.dumps(report.to_dict()), flush=True)


if __name__ == "__main__":
    main()
