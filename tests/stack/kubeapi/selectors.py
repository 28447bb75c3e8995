"""Label and field selectors, parsed once per request into plain predicates."""
from __future__ import annotations

import re
from typing import Callable

from .errors import bad_request

Predicate = Callable[[dict], bool]

# One requirement: key, then an operator or nothing (exists); `!key` is does-not-exist.
_SET_RE = re.compile(r'^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(notin|in)\s*\(([^)]*)\)|(==|!=|=)\s*([A-Za-z0-9._-]*))?\s*$')


def _split_requirements(text: str) -> list[str]:
    # Commas inside "in (a,b)" do not separate requirements.
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == '(':
            depth += 1
        elif ch == ')':
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(''.join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append(''.join(cur))
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> Predicate | None:
    """A predicate on an object's labels; None when the selector selects everything."""
    if not text or not text.strip():
        return None
    reqs = []
    for part in _split_requirements(text):
        m = _SET_RE.match(part)
        if not m:
            raise bad_request(f'unable to parse requirement: {part!r}: invalid label selector')
        neg, key, set_op, set_vals, op, val = m.groups()
        if neg and (set_op or op):
            raise bad_request(f'unable to parse requirement: {part!r}: invalid label selector')
        if set_op:
            vals = frozenset(v.strip() for v in set_vals.split(',') if v.strip())
            reqs.append((key, set_op, vals))
        elif op:
            reqs.append((key, '!=' if op == '!=' else '=', val))
        else:
            reqs.append((key, '!exists' if neg else 'exists', None))

    def match(obj: dict) -> bool:
        labels = obj.get('metadata', {}).get('labels') or {}
        for key, op, val in reqs:
            have = labels.get(key)
            if op == '=' and have != val:
                return False
            if op == '!=' and have == val:
                return False
            if op == 'in' and have not in val:
                return False
            if op == 'notin' and have in val:
                return False
            if op == 'exists' and key not in labels:
                return False
            if op == '!exists' and key in labels:
                return False
        return True
    return match


def _get_path(obj: dict, dotted: str):
    cur = obj
    for part in dotted.split('.'):
        if not isinstance(cur, dict):
            return ''
        cur = cur.get(part)
    return '' if cur is None else str(cur)


def parse_field_selector(text: str | None, supported: frozenset[str], metadata_only: bool = False) -> Predicate | None:
    """A predicate over the fields the resource type supports; 400 for any other field.

    ``metadata_only``: the type has no field selectors of its own (a built-in kind that kube-apiserver serves with
    ``DefaultMetaV1FieldSelectorConversion``: ConfigMap, Lease, StorageClass, CRD), which words the 400 differently.
    """
    if not text or not text.strip():
        return None
    reqs = []
    for part in text.split(','):
        part = part.strip()
        if not part:
            continue
        m = re.match(r'^([A-Za-z0-9._-]+)\s*(==|!=|=)\s*(.*)$', part)
        if not m:
            raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{part}\'')
        field, op, val = m.groups()
        if field not in supported:
            if metadata_only:
                raise bad_request(f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"')
            raise bad_request(f'field label not supported: {field}')
        reqs.append((field, op == '!=', val))

    def match(obj: dict) -> bool:
        for field, negate, val in reqs:
            if (_get_path(obj, field) == val) == negate:
                return False
        return True
    return match


def combine(*preds: Predicate | None) -> Predicate | None:
    """AND of the given predicates, ignoring None."""
    real = [p for p in preds if p is not None]
    if not real:
        return None
    if len(real) == 1:
        return real[0]
    return lambda obj: all(p(obj) for p in real)
