# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The one retry policy: bounded attempts, exponential backoff with full jitter, Retry-After honoured."""

from __future__ import annotations

import random
import time
from typing import Callable, Optional


class Retry:
    """Bounded retries with full jitter for 429, 5xx and connection errors.

    A 429 or 503 with Retry-After waits at least that long (capped), as the
    API server's priority-and-fairness asks clients to. Eight attempts: a job
    sends some 30 requests, and a throttled or failing-over API server must
    not fail it where waiting ~15 s more would have done.
    """

    def __init__(self, attempts: int = 8, base_delay: float = 0.2, max_delay: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep, rng: Optional[random.Random] = None):
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.rng = rng or random.Random()

    def delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        wait = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


NO_RETRY = Retry(attempts=1)
