"""Everything that speaks to Milvus, and nothing else does.

One collection holds the chunks of every document, and records (in its description)
the embedder, dimension, metric and chunker it was built with.  Milvus Lite (a local
``*.db`` path), a Milvus server or cluster, and Zilliz Cloud are all reached through
pymilvus's ``MilvusClient``; what differs is detected, not configured (BM25 full-text
search needs Milvus >= 2.5 or Milvus Lite).

``milvus`` the ``MilvusStore`` itself; ``records`` what a collection records; ``schema``
its fields, indexes and rows; ``connect`` opening a client for a URI; ``search`` what a
search asks and how hits are read; ``lite_engine`` Milvus Lite's engine, reached directly.
"""

from ragloom.store.milvus import MilvusStore
from ragloom.store.records import CollectionInfo, StoredChunks, StoredDocument
from ragloom.store.schema import OUTPUT_FIELDS
from ragloom.store.search import SearchMode

__all__ = [
    "OUTPUT_FIELDS",
    "CollectionInfo",
    "MilvusStore",
    "SearchMode",
    "StoredChunks",
    "StoredDocument",
]
