# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The one retry policy: bounded attempts, exponential backoff (with full jitter by default), Retry-After honoured.

Every retry loop of the collection is a `Retry.run`: the Kubernetes client's (429, 5xx, no answer), the guarded
writes' and the lifecycle's conflict retries, the controller client's; the event source's reconnect backoff uses
`Retry.delay`. Each caller says which errors are worth another attempt; the policy says how often and how long.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Optional, TypeVar, Union

T = TypeVar("T")
ErrorTypes = Union[type[BaseException], tuple[type[BaseException], ...]]


class Retry:
    """Bounded retries with exponential backoff, full jitter unless `jitter` is off.

    For the Kubernetes API (the defaults): a 429 or 503 with Retry-After waits at
    least that long (capped), as the API server's priority-and-fairness asks
    clients to. Eight attempts: a job sends some 30 requests, and a throttled or
    failing-over API server must not fail it where waiting ~15 s more would have done.
    """

    def __init__(self, attempts: int = 8, base_delay: float = 0.2, max_delay: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep, rng: Optional[random.Random] = None,
                 jitter: bool = True):
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.jitter = jitter

    def delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        wait = self.rng.uniform(0, ceiling) if self.jitter else ceiling
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait

    def run(self, call: Callable[[], T], retry_on: ErrorTypes,
            retryable: Optional[Callable[[BaseException], bool]] = None,
            before_retry: Optional[Callable[[BaseException], None]] = None) -> T:
        """``call()``, called again while it raises one of `retry_on` (and `retryable(error)` agrees).

        After the last attempt the error is raised. The wait honours an error's
        ``retry_after`` (seconds). `before_retry(error)` runs after the wait,
        before the next attempt (a re-read, say); it may raise to stop.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except retry_on as exc:
                if attempt >= self.attempts or (retryable is not None and not retryable(exc)):
                    raise
                error = exc
            self.sleep(self.delay(attempt, getattr(error, "retry_after", None)))
            if before_retry is not None:
                before_retry(error)


NO_RETRY = Retry(attempts=1)
