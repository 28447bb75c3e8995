# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Typed Kubernetes API errors, from an HTTP answer or a watch ERROR event."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Optional, Union


class KubeError(Exception):
    """An API error, with the API server's own Status message.

    `retry_after` is the answer's Retry-After in seconds (429 and 503 carry it), for the retry policy.
    """

    def __init__(self, message: str, status: Optional[int] = None, reason: Optional[str] = None,
                 body: Any = None, retry_after: Optional[float] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.body = body
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        """For module results: what failed and why, as the API said it."""
        return {"status": self.status, "reason": self.reason, "message": self.message}


class Unauthorized(KubeError):
    """401: the credentials were refused."""


class Forbidden(KubeError):
    """403: authenticated, but not allowed."""


class NotFound(KubeError):
    """404: the object (or its namespace, or its kind) does not exist."""


class Conflict(KubeError):
    """409: stale resourceVersion, or another writer got there first."""


class AlreadyExists(Conflict):
    """409 AlreadyExists on create."""


class Gone(KubeError):
    """410: a watch or list resourceVersion is too old."""


class Invalid(KubeError):
    """422: validation refused the object or the patch."""


class ServerError(KubeError):
    """429, 5xx, or no answer at all: worth retrying."""


class TransportError(ServerError):
    """No HTTP answer: connection refused, reset or timed out."""


def _error_class(status: int, reason: Optional[str]) -> type[KubeError]:
    if status == 401:
        return Unauthorized
    if status == 403:
        return Forbidden
    if status == 404:
        return NotFound
    if status == 409:
        return AlreadyExists if reason == "AlreadyExists" else Conflict
    if status == 410:
        return Gone
    if status in (400, 422):
        return Invalid
    if status == 429 or status >= 500:
        return ServerError
    return KubeError


def error_from_response(status: int, data: Union[bytes, str, None], reason: Optional[str] = None,
                        headers: Optional[Mapping[str, str]] = None) -> KubeError:
    """The typed error for an HTTP error answer (a Status body when the API sent one)."""
    body = None
    message = None
    if data:
        try:
            body = json.loads(data)
        except (TypeError, ValueError):
            body = None
        if isinstance(body, dict):
            message = body.get("message")
            reason = body.get("reason") or reason
        else:
            message = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    message = message or reason or f"HTTP {status}"
    return _error_class(status, reason)(message, status=status, reason=reason, body=body,
                                        retry_after=_retry_after(headers))


def error_from_watch_event(event: Mapping[str, Any]) -> KubeError:
    """The typed error a watch ERROR event carries (410 Gone: relist)."""
    status = event.get("object") or {}
    return error_from_response(status.get("code") or 500, json.dumps(status).encode("utf-8"), status.get("reason"))


def _retry_after(headers: Optional[Mapping[str, str]]) -> Optional[float]:
    value = (headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
