# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Guarded writes (read, decide, write on the state decided from) and watch-driven waits."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import (
    AlreadyExists,
    Conflict,
    Gone,
    Invalid,
    TransportError,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import Resource
from ansible_collections.cloudkit.provisioning.plugins.module_utils.retry import Retry

KubeObject = dict[str, Any]


def json_pointer(*tokens: object) -> str:
    """A JSON pointer from raw tokens (RFC 6901 escaping: annotation keys contain '/')."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def guarded_write(
    read: Callable[[], Optional[KubeObject]],
    write: Callable[[Optional[KubeObject]], Any],
    retry: Optional[Retry] = None,
    live: Optional[KubeObject] = None,
) -> Any:
    """Read-decide-write until the write lands on the state it was decided from.

    `read()` returns the live object (or None); `write(live)` sends a write
    guarded by that state (a JSON-patch `test` or the resourceVersion) and
    returns its result. A 409 Conflict, or a 422 while the object has moved
    on (the API's answer to a failed `test`), means someone else wrote in
    between: re-read and decide again, a bounded number of times with jitter.
    A 422 on an unchanged object is a real validation error and is raised.
    `live`, when given, is an object this job just got back from a write: the
    first attempt uses it instead of reading again (a stale one costs a 409).
    """
    retry = retry or Retry(attempts=10, base_delay=0.05, max_delay=1.0)
    state = {"live": read() if live is None else live}

    def reread(error):
        fresh = read()
        if isinstance(error, Invalid) and _resource_version(fresh) == _resource_version(state["live"]):
            raise error
        state["live"] = fresh

    return retry.run(
        lambda: write(state["live"]),
        (Conflict, Invalid),
        retryable=lambda error: not isinstance(error, AlreadyExists),
        before_retry=reread,
    )


def _resource_version(obj: Optional[KubeObject]) -> Optional[str]:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


class WaitTimeout(Exception):
    """A wait ran out of time; `last` is the object as last seen (None when absent)."""

    def __init__(self, message: str, last: Optional[KubeObject] = None):
        super().__init__(message)
        self.last = last


def wait_for(
    client: Any,
    resource: Resource,
    name: str,
    namespace: Optional[str],
    predicate: Callable[[Optional[KubeObject]], bool],
    timeout: float,
    tick: Optional[Callable[[], None]] = None,
    tick_interval: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    known: Optional[KubeObject] = None,
) -> Optional[KubeObject]:
    """Wait until predicate(object or None) is true, driven by a watch of that one object.

    Returns the object (None if the predicate accepted its absence). `tick` is
    called at least every `tick_interval` seconds (the lock's fence); it may raise
    to abort. A broken or expired watch is resumed from a fresh read. `known`
    is the object as this job just wrote or read it: the first watch starts
    from its resourceVersion instead of a read.
    """
    deadline = clock() + timeout
    selector = f"metadata.name={name}"
    while True:
        current = known if known is not None else client.get_or_none(resource, name, namespace)
        known = None  # a resumed watch starts from a fresh read
        if predicate(current):
            return current
        version = (current or {}).get("metadata", {}).get("resourceVersion")
        if version is None:
            version = client.list(resource, namespace, field_selector=selector, limit=1)["resource_version"]
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                raise WaitTimeout(
                    f"timed out after {int(timeout)}s waiting for {resource.kind} {namespace or ''}/{name}", current
                )
            if tick is not None:
                tick()
            window = max(1, int(min(remaining, tick_interval) + 0.999))
            try:
                events = client.watch(
                    resource, namespace, resource_version=version, field_selector=selector, timeout_seconds=window
                )
                for event in events:
                    obj = event.get("object") or {}
                    version = obj.get("metadata", {}).get("resourceVersion") or version
                    if event["type"] == "BOOKMARK":
                        continue
                    current = None if event["type"] == "DELETED" else obj
                    if predicate(current):
                        return current
            except (Gone, TransportError):
                break  # re-read, then watch again from there
            # A quiet window: ask again, for predicates that also look at other objects (a restarted VM's new VMI).
            if predicate(current):
                return current
