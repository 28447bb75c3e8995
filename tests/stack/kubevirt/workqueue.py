"""A work queue like client-go's: a key is queued at most once and never handed to two workers at the same time; delayed adds use a heap."""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque


class WorkQueue:
    """Keys to reconcile; ``get`` blocks (on a condition, with the next delayed key's due time as timeout) until one is ready."""

    def __init__(self):
        self._cond = threading.Condition()
        self._queue: deque = deque()
        self._dirty: set = set()
        self._processing: set = set()
        self._delayed: list = []
        self._order = itertools.count()
        self._shutdown = False

    def _add_locked(self, key) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        # A key being worked on is queued again only when its worker is done (see done()).
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add(self, key) -> None:
        """Queue ``key`` now."""
        with self._cond:
            if not self._shutdown:
                self._add_locked(key)

    def add_after(self, key, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutdown:
                return
            heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._order), key))
            # Wake one waiter so that it recomputes how long to sleep.
            self._cond.notify()

    def get(self):
        """The next key (now owned by the caller until done()), or None once shut down."""
        with self._cond:
            while True:
                if self._shutdown:
                    return None
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    self._add_locked(heapq.heappop(self._delayed)[2])
                if self._queue:
                    key = self._queue.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                self._cond.wait(self._delayed[0][0] - now if self._delayed else None)

    def done(self, key) -> None:
        """The caller finished ``key``; requeue it when it was added meanwhile."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def shut_down(self) -> None:
        """Make every get() return None."""
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._delayed)
