"""RAG's answering half: ``ask`` and ``stream``, the checks that decline a question
before any model is asked (``coverage``), and which model answers (``get_llm``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ragloom.abstention import Coverage, absent_names, unknown_names
from ragloom.types import Answer, Hit

if TYPE_CHECKING:
    from ragloom.answer import Templates
    from ragloom.config import Settings
    from ragloom.embedders import Embedder
    from ragloom.llms import LLM, ProviderChoice, Reliability
    from ragloom.llms.extractive import Embed
    from ragloom.rag import Names
    from ragloom.store import MilvusStore, SearchMode

#: Passages retrieved for an answer, unless ``k`` is given.
ASK_K = 5


class Asking:
    """What ``RAG`` adds to searching to answer questions (a mixin of ``RAG``)."""

    settings: Settings
    store: MilvusStore

    if TYPE_CHECKING:

        def search(
            self,
            query: str,
            k: int = 3,
            *,
            mode: SearchMode | None = None,
            where: str | None = None,
            sources: Names = (),
            rerank: str | None = None,
        ) -> list[Hit]: ...

        def _query_embedder(self) -> Embedder: ...

    def ask(
        self,
        question: str,
        k: int = ASK_K,
        *,
        llm: str | LLM | None = None,
        model: str | None = None,
        mode: SearchMode | None = None,
        where: str | None = None,
        sources: Names = (),
    ) -> Answer:
        """Answer ``question`` from the ``k`` best passages, with checked citations.

        ``llm`` names a provider (``deepseek``, ``lepton``, ``gemini``, ``openai``,
        ``none``) or is any ``LLM``; by default the settings', else the first whose key
        is set, else ``none`` (an extractive answer).
        """
        from ragloom.answer import final_answer

        items = self.stream(
            question, k, llm=llm, model=model, mode=mode, where=where, sources=sources,
            stream=False,
        )  # fmt: skip
        return final_answer(items)

    def stream(
        self,
        question: str,
        k: int = ASK_K,
        *,
        llm: str | LLM | None = None,
        model: str | None = None,
        mode: SearchMode | None = None,
        where: str | None = None,
        sources: Names = (),
        stream: bool = True,
    ) -> Iterator[str | Answer]:
        """Like ``ask``, yielding the answer's text as it is written, then the ``Answer``.

        When no passage is relevant enough (see ``relevance``) the documents are said
        not to cover the question and the model is not called.
        """
        from ragloom.answer import abstain, fit_passages, stream_answer

        chosen = self.get_llm(llm, model)
        notes = [self._choice_note(llm, chosen)]
        hits = self.search(question, k, mode=mode, where=where, sources=sources)
        coverage = self.coverage(question, hits, mode=mode, where=where, sources=sources)
        relevance = coverage.relevance
        if coverage.abstain:
            if chosen.provider != "none":  # an extractive answer has no model to ask
                notes[0] = f"{chosen.provider} ({chosen.model}) was not asked"
            notes.append(coverage.note() or "")
            answer = abstain(question, hits, chosen, coverage, notes)
            yield answer.text
            yield answer
            return
        passages = fit_passages(hits, self.settings.context_tokens)
        yield from stream_answer(
            question, passages, chosen, self.templates(), stream=stream,
            relevance=relevance, notes=notes,
        )  # fmt: skip

    def relevance(
        self,
        question: str,
        hits: Sequence[Hit] = (),
        *,
        mode: SearchMode | None = None,
        where: str | None = None,
        sources: Names = (),
    ) -> float | None:
        """How well the collection covers ``question``: the best passage's dense score.

        Dense scores are cosine similarities whatever the search mode (fused hybrid
        scores say nothing about relevance on their own), so abstention compares this to
        one calibrated threshold.  ``hits`` that carry their dense scores (from a dense
        or a weighted hybrid search) are reused; otherwise a dense search asks.
        """
        scored = [h.dense_score for h in hits if h.dense_score is not None]
        if scored:
            return max(scored)
        best = self.search(question, 1, mode="dense", where=where, sources=sources)
        return best[0].score if best else None

    def coverage(
        self,
        question: str,
        hits: Sequence[Hit] = (),
        *,
        mode: SearchMode | None = None,
        where: str | None = None,
        sources: Names = (),
    ) -> Coverage:
        """Whether to answer ``question`` from ``hits`` or decline without asking a
        model: no passage relevant enough, or a name the documents (or the passages
        found) never use (see ``ragloom.abstention``)."""
        if not hits:
            return Coverage(
                relevance=None, threshold=self.abstain_threshold(), found=False,
                filtered=bool(where or sources),
            )  # fmt: skip
        relevance = self.relevance(question, hits, mode=mode, where=where, sources=sources)
        threshold = self.abstain_threshold()
        checked = Coverage(
            relevance=relevance, threshold=threshold,
            threshold_set_by=self.settings.set_by("abstain_score"),
        )  # fmt: skip
        if checked.too_weak or not self.settings.abstain_unknown_names:
            return checked
        unknown = unknown_names(question, self._mentions)
        passages = [f"{hit.heading}\n{hit.text}" for hit in hits]
        absent = absent_names(question, passages, skip=unknown)
        return replace(checked, unknown_names=unknown, absent_names=absent)

    def _mentions(self, word: str) -> bool:
        found = self.store.mentions(word)
        return True if found is None else found

    def abstain_threshold(self) -> float | None:
        """The dense score below which ragloom abstains: configured, else calibrated for
        the embedder, else None (abstain only when nothing is found)."""
        from ragloom.answer import CALIBRATED_ABSTAIN_SCORES

        if self.settings.abstain_score is not None:
            return self.settings.abstain_score
        return CALIBRATED_ABSTAIN_SCORES.get(self._query_embedder().name)

    def llm_choice(self, llm: str | None = None) -> ProviderChoice:
        """Which provider answers, and why: ``llm``, else the settings, else the first
        provider whose key is set, else ``none``."""
        from ragloom.llms import choose_provider

        if llm:
            return choose_provider(llm)
        if self.settings.llm:
            # Said as the user set it: RAGLOOM_LLM=x, llm = "x" in ragloom.toml, llm='x'.
            origin = self.settings.origin("llm")
            return choose_provider(self.settings.llm, origin.said("llm", self.settings.llm))
        return choose_provider(None)

    def _model_is_for(self, provider: str) -> bool:
        """Whether the configured model (``llm_model``) is meant for ``provider``: any
        provider when none is configured; else the configured one, unless the model was
        set where another provider was too, since overridden (a ragloom.toml naming
        deepseek and its model, and RAGLOOM_LLM=openai: DeepSeek's model is not OpenAI's)."""
        configured = self.settings.llm
        if not configured:
            return True
        if provider != configured:
            return False
        model_rank = self.settings.origin("llm_model").rank
        paired = self.settings.origin("llm").beneath_at(model_rank)
        return not paired or str(paired).strip().lower() == configured

    def get_llm(self, llm: str | LLM | None = None, model: str | None = None) -> LLM:
        """The model that answers (built once per provider and model)."""
        from ragloom.llms import make_llm
        from ragloom.llms.extractive import ExtractiveLLM

        if llm is not None and not isinstance(llm, str):
            return llm
        choice = self.llm_choice(llm)
        model = model or (self.settings.llm_model if self._model_is_for(choice.name) else None)
        cache: dict[tuple[str, str | None], LLM] = self.__dict__.setdefault("_llms", {})
        key = (choice.name, model)
        if key not in cache:
            built = make_llm(choice.name, model, self.reliability())
            if isinstance(built, ExtractiveLLM):
                built.embed = self._sentence_embed()
            cache[key] = built
        return cache[key]

    def _sentence_embed(self) -> Embed | None:
        """The collection's embedding model for choosing extractive sentences by meaning,
        when it runs in this process (a remote API would be paid, and waited for, on
        every answer)."""
        from ragloom.embedders import IN_PROCESS_EMBEDDERS

        embedder = self._query_embedder()
        return embedder.embed if embedder.name.startswith(IN_PROCESS_EMBEDDERS) else None

    def reliability(self) -> Reliability:
        """Timeouts, deadline and retries for model calls, from the settings."""
        from ragloom.llms import Reliability

        s = self.settings
        return Reliability(
            connect_timeout=s.llm_connect_timeout, read_timeout=s.llm_read_timeout,
            deadline=s.llm_deadline, retries=s.llm_retries, backoff=s.llm_retry_delay,
        )  # fmt: skip

    def templates(self) -> Templates:
        """The prompt templates: the defaults, or those the settings replace."""
        from ragloom.answer import DEFAULT_SYSTEM, DEFAULT_USER, Templates

        return Templates(
            system=self.settings.system_prompt or DEFAULT_SYSTEM,
            user=self.settings.user_prompt or DEFAULT_USER,
        )

    def _choice_note(self, llm: str | LLM | None, chosen: LLM) -> str:
        from ragloom.answer import no_llm_hint

        if llm is not None and not isinstance(llm, str):
            return f"answered by {chosen.provider} ({chosen.model})"
        choice = self.llm_choice(llm)
        if chosen.provider == "none":
            note = f"extractive answer, no language model ({choice.reason})"
            # Asked for by name (--llm none, llm = "none"): no need to say how to change it.
            return note if llm or self.settings.llm else f"{note}: {no_llm_hint()}"
        return f"answered by {chosen.provider} ({chosen.model}): {choice.reason}"
