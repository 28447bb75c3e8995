# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Declarative apply of the fields this collection owns on an object: desired against live, as one guarded JSON patch.

Each object this collection makes has an explicit list of owned fields (OwnedField: a path and its desired value, or
ABSENT when the spec no longer wants it). ``diff`` compares them with the live object and returns the JSON patch that
makes every owned field exactly the desired value: ``replace`` or ``add`` where it differs or is missing, ``remove``
where the spec dropped it, each replace and remove guarded by a ``test`` of the value it was decided from. Everything
else on the object (status, other controllers' fields and labels, server defaults) is never in the patch. ``apply``
sends it through the client (and so through the lock's fence), re-reading and deciding again when someone else changed
one of those fields in between (the failed ``test`` answers 422).

Pure functions apart from ``apply``; no Ansible imports.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable
from typing import Any, Optional

from ansible_collections.cloudkit.provisioning.plugins.module_utils.guarded import guarded_write, json_pointer
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import Resource


class _Absent:
    """The value of a field that is not there (or must not be)."""

    def __repr__(self):
        return "ABSENT"

    def __bool__(self):
        return False


ABSENT = _Absent()


class OwnedField:
    """A field this collection owns on an object: its path, its desired value (ABSENT: must not exist).

    ``ignore`` names keys that other writers own inside the entries of an owned list (a Service port's ``nodePort``):
    they are left out of the comparison and carried over, by the entry's ``name``, from the live entries.
    """

    __slots__ = ("path", "value", "ignore")

    def __init__(self, path, value, ignore=()):
        self.path = tuple(path)
        self.value = value
        self.ignore = tuple(ignore)

    def __repr__(self):
        return f"OwnedField({field_name(self.path)}={self.value!r})"


def get_path(obj: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` (a tuple of keys), or ABSENT."""
    node = obj
    for token in path:
        if not isinstance(node, dict) or token not in node:
            return ABSENT
        node = node[token]
    return node


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def field_name(path: tuple[str, ...]) -> str:
    """spec.template.spec.domain.cpu.cores; keys that are not plain words in brackets: metadata.labels["a.io/b"]."""
    text = ""
    for token in path:
        token = str(token)
        if _PLAIN_KEY.match(token):
            text += ("." if text else "") + token
        else:
            text += f'["{token}"]'
    return text


def _comparable(value, ignore):
    if ignore and isinstance(value, list):
        return [
            dict((k, v) for k, v in entry.items() if k not in ignore) if isinstance(entry, dict) else entry
            for entry in value
        ]
    return value


def same(live: Any, desired: Any, ignore: Iterable[str] = ()) -> bool:
    """Whether a live value equals the desired one (ABSENT equals only ABSENT; ignored list entry keys left out)."""
    if live is ABSENT or desired is ABSENT:
        return live is desired
    return _comparable(live, ignore) == _comparable(desired, ignore)


def _carry_over(desired, live, ignore):
    """The desired list, each entry completed with the ignored keys of the live entry of the same name."""
    if not ignore or not isinstance(desired, list) or not isinstance(live, list):
        return copy.deepcopy(desired)
    by_name = dict(
        (entry.get("name"), entry) for entry in live if isinstance(entry, dict) and entry.get("name") is not None
    )
    merged = []
    for entry in desired:
        entry = copy.deepcopy(entry)
        old = by_name.get(entry.get("name")) if isinstance(entry, dict) else None
        if old is not None:
            for key in ignore:
                if key in old and key not in entry:
                    entry[key] = copy.deepcopy(old[key])
        merged.append(entry)
    return merged


def _nest(path, value):
    for token in reversed(path):
        value = {token: value}
    return value


def _set(obj, path, value):
    node = obj
    for token in path[:-1]:
        if not isinstance(node.get(token), dict):
            node[token] = {}
        node = node[token]
    node[path[-1]] = value


def _remove(obj, path):
    node = get_path(obj, path[:-1]) if len(path) > 1 else obj
    if isinstance(node, dict):
        node.pop(path[-1], None)


class Change:
    """One owned field that differs: its path, the live value and the desired one (ABSENT for either side)."""

    __slots__ = ("path", "before", "after")

    def __init__(self, path, before, after):
        self.path = path
        self.before = before
        self.after = after

    @property
    def name(self):
        return field_name(self.path)

    @property
    def action(self):
        if self.after is ABSENT:
            return "removed"
        if self.before is ABSENT:
            return "added"
        return "changed"

    def __repr__(self):
        return f"Change({self.name} {self.action})"


def diff(live: dict[str, Any], fields: list[OwnedField]) -> tuple[list[dict[str, Any]], list[Change]]:
    """(JSON patch operations, [Change]) that set every owned field of `live` to its desired value.

    ``replace`` and ``remove`` are guarded by a ``test`` of the live value; a missing field is added with whatever
    parent objects it lacks. No operation touches a path outside the owned fields.
    """
    scratch = copy.deepcopy(live)
    ops = []
    changes = []
    for field in fields:
        before = get_path(scratch, field.path)
        after = field.value
        if same(before, after, field.ignore):
            continue
        pointer = json_pointer(*field.path)
        if after is ABSENT:
            ops.append({"op": "test", "path": pointer, "value": copy.deepcopy(before)})
            ops.append({"op": "remove", "path": pointer})
            _remove(scratch, field.path)
        elif before is ABSENT:
            # The deepest existing parent gets the missing part; a non-object in the way is replaced by `add`.
            depth = 0
            node = scratch
            while (
                depth < len(field.path) - 1 and isinstance(node, dict) and isinstance(node.get(field.path[depth]), dict)
            ):
                node = node[field.path[depth]]
                depth += 1
            value = _nest(field.path[depth + 1 :], copy.deepcopy(after))
            ops.append({"op": "add", "path": json_pointer(*field.path[: depth + 1]), "value": value})
            _set(scratch, field.path, copy.deepcopy(after))
        else:
            value = _carry_over(after, before, field.ignore)
            ops.append({"op": "test", "path": pointer, "value": copy.deepcopy(before)})
            ops.append({"op": "replace", "path": pointer, "value": value})
            _set(scratch, field.path, copy.deepcopy(value))
        changes.append(Change(field.path, before, after))
    return ops, changes


def apply(client: Any, resource: Resource, name: str, namespace: Optional[str], live: dict[str, Any],
          fields: list[OwnedField], check_mode: bool = False) -> tuple[dict[str, Any], list[Change]]:
    """Make the owned `fields` of the live object exactly as desired; returns (object after, [Change]).

    One JSON patch, sent only when something differs. A failed guard (someone changed an owned field since the read)
    re-reads and decides again (bounded, guarded.guarded_write); the changes returned are those of the patch that
    landed.
    """
    landed = {"changes": []}

    def read():
        return client.get(resource, name, namespace)

    def write(current):
        ops, changes = diff(current, fields)
        landed["changes"] = changes
        if not ops or check_mode:
            return current
        return client.patch(resource, name, ops, namespace, patch_type="json")

    if check_mode:
        return write(live), landed["changes"]
    result = guarded_write(read, write, live=live)
    return result, landed["changes"]


# Top-level fields whose values never appear in job output (Secret data: user data may carry credentials).
SECRET_FIELDS = ("data", "stringData")


def redact(path: tuple[str, ...], value: Any) -> Any:
    """A value as it may appear in job output: Secret data only as its size and a hash prefix."""
    if value is ABSENT:
        return None
    if path and path[0] in SECRET_FIELDS:
        if isinstance(value, dict):
            return dict((key, redact(path + (key,), item)) for key, item in value.items())
        text = value if isinstance(value, str) else repr(value)
        return f"<{len(text)} bytes, sha256 {hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}>"
    return copy.deepcopy(value)


def describe(change: Change) -> str:
    """One change for a summary line: 'spec.template.spec.domain.cpu.cores 2 -> 1', '... removed', '... added'."""
    if change.action == "removed":
        return f"{change.name} removed"
    if change.action == "added":
        return f"{change.name} added"
    before, after = redact(change.path, change.before), redact(change.path, change.after)
    if isinstance(before, (dict, list)) or isinstance(after, (dict, list)):
        return f"{change.name} changed"
    return f"{change.name} {before} -> {after}"
