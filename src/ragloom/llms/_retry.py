"""One retry policy for every provider: backoff with jitter, Retry-After, a hard deadline.

The SDKs' own retries are turned off so that both SDKs behave alike, ``Retry-After``
is honoured for Gemini too, and the whole call (retries and waits included) ends by
the deadline: each attempt's timeout is cut to the time that is left.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ragloom.errors import ProviderError, RagloomError
from ragloom.llms.base import Reliability, StreamItem

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_retry_status(status: int) -> bool:
    """Statuses worth another attempt: request timeout, rate limit, any server error."""
    return status in (408, 429) or status >= 500


#: Below this many seconds left, another attempt cannot succeed.
_MIN_ATTEMPT = 0.05


@dataclass(frozen=True)
class Transient:
    """A failure worth retrying; ``retry_after`` is the server's requested wait."""

    retry_after: float | None = None
    timeout: bool = False


Classify = Callable[[Exception], Transient | None]
ToError = Callable[[Exception], RagloomError]


def parse_retry_after(headers: Mapping[str, str] | Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
    except (AttributeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Retrier:
    """Runs one model call under a ``Reliability`` policy.

    ``classify`` says whether an exception is transient (and how long the server asked
    to wait); ``to_error`` turns the final exception into a message a user can act on.
    ``who`` names the model and host in messages.
    """

    def __init__(
        self,
        policy: Reliability,
        who: str,
        classify: Classify,
        to_error: ToError,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.who = who
        self.classify = classify
        self.to_error = to_error
        self._sleep = sleep
        self._clock = clock

    def call(self, attempt: Callable[[float], T]) -> T:
        """``attempt(timeout)`` until it succeeds, the retries run out or the deadline passes."""
        end = self._clock() + self.policy.deadline
        tries = 0
        while True:
            timeout = self._attempt_timeout(end)
            try:
                return attempt(timeout)
            except RagloomError:
                raise
            except Exception as exc:
                self._wait_or_raise(exc, tries, end)
                tries += 1

    def stream(self, open_stream: Callable[[float], Iterator[StreamItem]]) -> Iterator[StreamItem]:
        """Yield from ``open_stream(timeout)``, retrying only until the first text arrives.

        Once text has been shown a dropped stream cannot be retried unnoticed, so it
        ends with an error saying the answer is incomplete.
        """
        end = self._clock() + self.policy.deadline
        tries = 0
        while True:
            timeout = self._attempt_timeout(end)
            shown = 0
            try:
                for item in open_stream(timeout):
                    if isinstance(item, str):
                        shown += len(item)
                    yield item
                    if self._clock() > end:
                        raise ProviderError(
                            f"{self.who} was still answering at the {self._deadline()}: "
                            "the answer above is incomplete (raise RAGLOOM_LLM_DEADLINE)"
                        )
                return
            except RagloomError:
                raise
            except Exception as exc:
                if shown:
                    raise self._cut(exc, shown) from exc
                self._wait_or_raise(exc, tries, end)
                tries += 1

    # -- internals ---------------------------------------------------------------------

    def _deadline(self) -> str:
        return f"{self.policy.deadline:g}s deadline"

    def _attempt_timeout(self, end: float) -> float:
        left = end - self._clock()
        if left < _MIN_ATTEMPT:
            raise ProviderError(
                f"{self.who} did not answer within the {self._deadline()}: "
                "retry later, or raise RAGLOOM_LLM_DEADLINE"
            )
        return min(self.policy.read_timeout, left)

    def _wait_or_raise(self, exc: Exception, tries: int, end: float) -> None:
        """Sleep before the next attempt, or raise the user-facing error."""
        transient = self.classify(exc)
        if transient is None:
            raise self.to_error(exc) from exc
        left = end - self._clock()
        if transient.timeout and left < _MIN_ATTEMPT:
            raise ProviderError(
                f"{self.who} did not answer within the {self._deadline()}: "
                "retry later, or raise RAGLOOM_LLM_DEADLINE"
            ) from exc
        if tries >= self.policy.retries:
            attempts = f"{tries + 1} attempt" + ("s" if tries else "")
            raise _suffixed(self.to_error(exc), f"after {attempts}") from exc
        delay = self._delay(transient, tries)
        if delay > left - _MIN_ATTEMPT:
            raise _suffixed(
                self.to_error(exc), f"no time left to retry within the {self._deadline()}"
            ) from exc
        log.info(
            "%s: %s; retrying in %.2fs (%d/%d)",
            self.who, type(exc).__name__, delay, tries + 1, self.policy.retries,
        )  # fmt: skip
        self._sleep(delay)

    def _delay(self, transient: Transient, tries: int) -> float:
        if transient.retry_after is not None:
            return float(transient.retry_after)
        base = min(self.policy.max_backoff, self.policy.backoff * 2.0**tries)
        return float(base * (0.5 + random.random() / 2))  # jitter: half to all of it

    def _cut(self, exc: Exception, shown: int) -> RagloomError:
        transient = self.classify(exc)
        if transient is None:  # a malformed event, not a dropped connection
            return _suffixed(self.to_error(exc), "the answer above is incomplete")
        if transient.timeout:  # a slow model (Ollama on a CPU): the fix is the setting
            return ProviderError(
                f"{self.who} went silent for the {self.policy.read_timeout:g}s read timeout"
                f" mid-answer, after {shown} characters: the answer above is incomplete; ask"
                " again, or raise RAGLOOM_LLM_READ_TIMEOUT for a slow model"
            )
        return ProviderError(
            f"{self.who} dropped the connection mid-answer, after {shown} characters: "
            "the answer above is incomplete; ask again"
        )


def _suffixed(error: RagloomError, suffix: str) -> RagloomError:
    """The same kind of error with ``(suffix)`` added to its message."""
    try:
        return type(error)(f"{error} ({suffix})")
    except TypeError:  # an error class with another constructor
        return ProviderError(f"{error} ({suffix})")
