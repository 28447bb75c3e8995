"""An in-memory stand-in for KubeClient, for unit tests of the write logic (no network)."""

from __future__ import annotations

import copy

import jsonpatch
import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube_errors, kube_resources


class FakeClient:
    """Objects keyed by (plural, namespace, name); JSON and merge patches with real guard semantics.

    `before_write` hooks run before the next write lands, to play a concurrent writer.
    """

    def __init__(self):
        self.objects = {}
        self.version = 100
        self.before_write = []
        self.writes = []
        self.created = []
        self.watches = []
        self.reads = []  # (verb, kind) of every get and list, in order

    def put(self, resource, obj):
        self.version += 1
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.objects[(resource.plural, obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def _key(self, resource, name, namespace):
        key = (resource.plural, namespace, name)
        if key not in self.objects:
            raise kube_errors.NotFound('%s "%s" not found' % (resource.plural, name), status=404, reason="NotFound")
        return key

    def get(self, resource, name, namespace=None, subresource=None):
        self.reads.append(("get", resource.kind))
        return copy.deepcopy(self.objects[self._key(resource, name, namespace)])

    def patch(self, resource, name, patch, namespace=None, patch_type="merge", subresource=None, field_manager=None, force=None):
        while self.before_write:
            self.before_write.pop(0)(self)
        key = self._key(resource, name, namespace)
        live = self.objects[key]
        self.writes.append((patch_type, subresource, copy.deepcopy(patch)))
        if patch_type == "json":
            try:
                updated = jsonpatch.apply_patch(live, patch)
            except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as exc:
                raise kube_errors.Invalid("the server rejected our request: %s" % exc, status=422, reason="Invalid") from exc
        else:
            expected = (patch.get("metadata") or {}).get("resourceVersion")
            if expected and expected != live["metadata"]["resourceVersion"]:
                raise kube_errors.Conflict("the object has been modified", status=409, reason="Conflict")
            updated = copy.deepcopy(live)
            for field, value in patch.get("status", {}).items():
                updated.setdefault("status", {})[field] = value
        if updated["metadata"].get("deletionTimestamp") and set(updated["metadata"].get("finalizers") or []) - set(live["metadata"].get("finalizers") or []):
            raise kube_errors.Invalid("metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
                                      status=422, reason="Invalid")
        return self.put(resource, updated)

    def get_or_none(self, resource, name, namespace=None):
        try:
            return self.get(resource, name, namespace)
        except kube_errors.NotFound:
            return None

    def create(self, resource, body, namespace=None, dry_run=False):
        self.created.append(copy.deepcopy(body))
        if resource.kind == "Event":
            return copy.deepcopy(body)
        key = (resource.plural, namespace or body["metadata"].get("namespace"), body["metadata"]["name"])
        if key in self.objects:
            raise kube_errors.AlreadyExists("already exists", status=409, reason="AlreadyExists")
        body = copy.deepcopy(body)
        body["metadata"]["namespace"] = key[1]
        body["metadata"].setdefault("uid", "uid-%d" % (self.version + 1))
        body.setdefault("kind", resource.kind)
        return self.put(resource, body)

    def replace(self, resource, body, namespace=None, subresource=None):
        while self.before_write:
            self.before_write.pop(0)(self)
        key = self._key(resource, body["metadata"]["name"], namespace or body["metadata"].get("namespace"))
        if body["metadata"].get("resourceVersion") not in (None, self.objects[key]["metadata"]["resourceVersion"]):
            raise kube_errors.Conflict("the object has been modified", status=409, reason="Conflict")
        self.writes.append(("replace", subresource, copy.deepcopy(body)))
        return self.put(resource, body)

    def delete(self, resource, name, namespace=None, propagation_policy="Background", preconditions=None):
        key = self._key(resource, name, namespace)
        expected = (preconditions or {}).get("resourceVersion")
        if expected and expected != self.objects[key]["metadata"]["resourceVersion"]:
            raise kube_errors.Conflict("precondition failed", status=409, reason="Conflict")
        uid = (preconditions or {}).get("uid")
        if uid and uid != self.objects[key]["metadata"].get("uid"):
            raise kube_errors.Conflict("Precondition failed: UID in precondition: %s" % uid, status=409, reason="Conflict")
        self.writes.append(("delete", None, name))
        return self.objects.pop(key)

    def list(self, resource, namespace=None, label_selector=None, field_selector=None, limit=None):
        self.reads.append(("list", resource.kind))
        items = [copy.deepcopy(o) for (plural, ns, _name), o in self.objects.items() if plural == resource.plural and namespace in (None, ns)]
        if label_selector and "=" in label_selector:
            key, value = label_selector.split("=", 1)
            items = [o for o in items if (o["metadata"].get("labels") or {}).get(key) == value]
        elif label_selector:  # an existence selector: the label is set
            items = [o for o in items if label_selector in (o["metadata"].get("labels") or {})]
        return {"items": items, "resource_version": str(self.version)}

    def watch(self, resource, namespace=None, **_kwargs):
        """No events: callers fall back to re-reading, which is what these tests exercise."""
        self.watches.append(resource.plural)
        return iter(())


@pytest.fixture
def fake():
    return FakeClient()


@pytest.fixture
def configmap():
    return kube_resources.STATIC_RESOURCES[("v1", "ConfigMap")]
