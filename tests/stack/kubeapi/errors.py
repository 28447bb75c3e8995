"""Kubernetes ``Status`` error bodies, shaped like the ones kube-apiserver sends."""
from __future__ import annotations

REASONS = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    405: 'MethodNotAllowed',
    406: 'NotAcceptable',
    409: 'Conflict',
    410: 'Expired',
    415: 'UnsupportedMediaType',
    422: 'Invalid',
    429: 'TooManyRequests',
    500: 'InternalError',
}


class APIError(Exception):
    """An error answer; ``body`` is the full Status object."""

    def __init__(self, code: int, message: str, reason: str | None = None, details: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.headers = headers or {}
        self.body = status_body(code, message, reason or REASONS.get(code, 'Unknown'), details)


def status_body(code: int, message: str, reason: str, details: dict | None = None) -> dict:
    """A ``Status`` with the key order the real server uses."""
    body = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure', 'message': message, 'reason': reason}
    if details is not None:
        body['details'] = details
    body['code'] = code
    return body


def qualified(plural: str, group: str) -> str:
    """``secrets`` for the core group, ``computeinstances.cloudkit.openshift.io`` otherwise."""
    return f'{plural}.{group}' if group else plural


def _details(name: str, plural: str, group: str) -> dict:
    details = {'name': name}
    if group:
        details['group'] = group
    details['kind'] = plural
    return details


def not_found(plural: str, group: str, name: str) -> APIError:
    """404 for a named object."""
    return APIError(404, f'{qualified(plural, group)} "{name}" not found', details=_details(name, plural, group))


def already_exists(plural: str, group: str, name: str) -> APIError:
    """409 AlreadyExists on create."""
    return APIError(409, f'{qualified(plural, group)} "{name}" already exists', 'AlreadyExists', _details(name, plural, group))


def conflict(plural: str, group: str, name: str, why: str | None = None) -> APIError:
    """409 Conflict; the default text is the stale resourceVersion one."""
    why = why or 'the object has been modified; please apply your changes to the latest version and try again'
    return APIError(409, f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}', 'Conflict', _details(name, plural, group))


def invalid(kind: str, group: str, name: str, causes: list[dict]) -> APIError:
    """422 Invalid; ``causes`` are ``{reason, message, field}`` with message WITHOUT the field prefix."""
    parts = [f'{c["field"]}: {c["message"]}' for c in causes]
    text = parts[0] if len(parts) == 1 else '[' + ', '.join(parts) + ']'
    gk = f'{kind}.{group}' if group else kind
    details = {'name': name}
    if group:
        details['group'] = group
    details['kind'] = kind
    details['causes'] = causes
    return APIError(422, f'{gk} "{name}" is invalid: {text}', 'Invalid', details)


def bad_request(message: str) -> APIError:
    """400 BadRequest."""
    return APIError(400, message, 'BadRequest')


def server_not_found() -> APIError:
    """404 for a path that names no resource."""
    return APIError(404, 'the server could not find the requested resource', 'NotFound', {})


def go_string_slice(values) -> str:
    """Go's ``%#v`` of a []string, as used in some kube-apiserver messages."""
    return '[]string{' + ', '.join(f'"{v}"' for v in values) + '}'
