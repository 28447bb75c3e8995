# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Conflict-safe writes of one finalizer or one annotation.

Each write is a JSON patch on the one metadata path it changes, guarded by a
`test` of exactly what the decision was based on, so concurrent writers never
lose each other's changes (the upstream role wrote back a whole list read
earlier). JSON patch also avoids the 422 some CRD versions gave for
metadata-only merge patches.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ansible_collections.cloudkit.provisioning.plugins.module_utils.guarded import guarded_write, json_pointer
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import NotFound
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import Resource
from ansible_collections.cloudkit.provisioning.plugins.module_utils.lock import InstanceGone


class BeingDeleted(Exception):
    """A finalizer cannot be added: the object already has a deletionTimestamp."""


def _metadata(obj):
    return (obj or {}).get("metadata") or {}


def check_uid(obj: Optional[dict[str, Any]], uid: Optional[str]) -> None:
    """Refuse to act on a namesake: `obj` must be the object (uid) the job was launched for."""
    if uid and obj is not None and _metadata(obj).get("uid") != uid:
        raise InstanceGone(
            "{} {}/{} was deleted and re-created (uid {}, the job is for {}): not touched".format(
                obj.get("kind", "object"),
                _metadata(obj).get("namespace") or "",
                _metadata(obj).get("name"),
                _metadata(obj).get("uid"),
                uid,
            )
        )


def finalizer_patch(obj: dict[str, Any], finalizer: str, present: bool,
                    uid: Optional[str] = None) -> Optional[list[dict[str, Any]]]:
    """The guarded JSON patch that adds or removes `finalizer`, or None when nothing is to do.

    With `uid` the patch also tests metadata.uid, so it never lands on a namesake.
    """
    patch = _finalizer_patch(obj, finalizer, present)
    if patch is not None and uid:
        patch.insert(0, {"op": "test", "path": "/metadata/uid", "value": uid})
    return patch


def _finalizer_patch(obj, finalizer, present):
    metadata = _metadata(obj)
    finalizers = metadata.get("finalizers")
    if present:
        if finalizer in (finalizers or []):
            return None
        if finalizers is None:
            # No list to test against: guard on the whole object's version.
            return [
                {"op": "test", "path": "/metadata/resourceVersion", "value": metadata.get("resourceVersion")},
                {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]},
            ]
        # The exact list we saw: a concurrent add of the same finalizer cannot duplicate it.
        return [
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer},
        ]
    if finalizer not in (finalizers or []):
        return None
    index = finalizers.index(finalizer)
    # Only the one entry must still be where we saw it; others may come and go.
    return [
        {"op": "test", "path": f"/metadata/finalizers/{index}", "value": finalizer},
        {"op": "remove", "path": f"/metadata/finalizers/{index}"},
    ]


def set_finalizer(client: Any, resource: Resource, name: str, namespace: Optional[str], finalizer: str, present: bool,
                  check_mode: bool = False, live: Optional[dict[str, Any]] = None,
                  uid: Optional[str] = None) -> dict[str, Any]:
    """Ensure `finalizer` is present or absent on an object; returns a result dict (with the object after, as `live`).

    A missing object is fine for absent (unchanged) and a NotFound for present.
    `live` is an object just read or written by this job, saving the first read. `uid` refuses a namesake.
    """
    result = {"changed": False, "exists": True}

    def read():
        try:
            return client.get(resource, name, namespace)
        except NotFound:
            return None

    def write(live):
        result["changed"] = False  # a failed earlier attempt changed nothing
        if live is None:
            if present:
                raise NotFound(
                    "{} {}/{} not found: cannot add finalizer {}".format(
                        resource.kind, namespace or "", name, finalizer
                    ),
                    status=404,
                    reason="NotFound",
                )
            result["exists"] = False
            return None
        check_uid(live, uid)
        before = list(_metadata(live).get("finalizers") or [])
        result["before"] = before
        patch = finalizer_patch(live, finalizer, present, uid)
        if patch is None:
            result.update(finalizers=before, resource_version=_metadata(live).get("resourceVersion"))
            return live
        if present and _metadata(live).get("deletionTimestamp"):
            raise BeingDeleted(
                "{} {}/{} is being deleted (deletionTimestamp {}): the API refuses new finalizers such as {}".format(
                    resource.kind, namespace or "", name, _metadata(live)["deletionTimestamp"], finalizer
                )
            )
        result["changed"] = True
        after = before + [finalizer] if present else [f for f in before if f != finalizer]
        if check_mode:
            result.update(finalizers=after, resource_version=_metadata(live).get("resourceVersion"))
            return live
        updated = client.patch(resource, name, patch, namespace, patch_type="json")
        result.update(
            finalizers=list(_metadata(updated).get("finalizers") or []),
            resource_version=_metadata(updated).get("resourceVersion"),
        )
        return updated

    result["live"] = guarded_write(read, write, live=live)
    result.setdefault("before", [])
    result.setdefault("finalizers", [])
    result.setdefault("resource_version", None)
    return result


def annotation_patch(obj: dict[str, Any], key: str, value: Optional[str]) -> Optional[list[dict[str, Any]]]:
    """The guarded JSON patch that sets (or with value None removes) one annotation; None when already so."""
    metadata = _metadata(obj)
    annotations = metadata.get("annotations")
    current = (annotations or {}).get(key)
    if current == value:
        return None
    guard = {"op": "test", "path": "/metadata/resourceVersion", "value": metadata.get("resourceVersion")}
    if value is None:
        return [guard, {"op": "remove", "path": json_pointer("metadata", "annotations", key)}]
    if annotations is None:
        return [guard, {"op": "add", "path": "/metadata/annotations", "value": {key: value}}]
    return [guard, {"op": "add", "path": json_pointer("metadata", "annotations", key), "value": value}]


def set_annotation(client: Any, resource: Resource, name: str, namespace: Optional[str], key: str, value: Optional[str],
                   check_mode: bool = False, expect: Optional[Callable[[dict[str, Any]], None]] = None,
                   live: Optional[dict[str, Any]] = None,
                   uid: Optional[str] = None) -> tuple[bool, Optional[dict[str, Any]]]:
    """Ensure one annotation has `value` (None removes it); returns (changed, live object after).

    `expect` is a callable run on the freshly read object before every
    attempt; it raises to refuse the write (for example when a version moved).
    `live` is an object just read or written by this job, saving the first read.
    """
    state = {"changed": False}

    def read():
        return client.get(resource, name, namespace)

    def write(live):
        state["changed"] = False
        check_uid(live, uid)  # the patch tests resourceVersion, which no namesake shares
        if expect is not None:
            expect(live)
        patch = annotation_patch(live, key, value)
        if patch is None:
            return live
        state["changed"] = True
        if check_mode:
            return live
        return client.patch(resource, name, patch, namespace, patch_type="json")

    obj = guarded_write(read, write, live=live)
    return state["changed"], obj
