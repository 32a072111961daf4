"""The text BM25 sees (ragloom.lexical): stems, from any number of threads."""

from __future__ import annotations

import random
import string
import threading

import snowballstemmer  # type: ignore[import-untyped]

from ragloom import lexical


def test_words_stemmed_at_once_in_several_threads_get_their_own_stems() -> None:
    # QA: the server's threads (searches, answers, an upload's ingest) shared one Snowball
    # stemmer, which holds the word it works on: concurrent BM25 searches failed with
    # IndexError (500) and others got another word's stem, cached for the process.
    rng = random.Random(7)
    words = [
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(6, 14)))
        + rng.choice(["ing", "ed", "fully", "ness", "s", "ation"])
        for _ in range(40_000)
    ]
    alone = snowballstemmer.stemmer("english")
    expected = {w: alone.stemWord(w) for w in words}
    wrong: list[str] = []

    def stem_all(share: list[str]) -> None:
        try:
            wrong.extend(w for w in share if lexical.stem(w) != expected[w])
        except IndexError as exc:
            wrong.append(repr(exc))

    threads = [threading.Thread(target=stem_all, args=(words[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
