"""Unit tests for plugins/module_utils/reconcile.py: the JSON patch that sets owned fields exactly, and its guard."""

from __future__ import annotations

import copy

import jsonpatch

from ansible_collections.cloudkit.provisioning.plugins.module_utils import reconcile
from ansible_collections.cloudkit.provisioning.plugins.module_utils.reconcile import ABSENT, OwnedField, diff, field_name

CONFIGMAP_LIKE = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns", "labels": {"theirs": "1"}}, "spec": {"a": 1, "list": [1, 2]},
                  "status": {"x": 1}}


def applied(live, fields):
    ops, changes = diff(live, fields)
    return jsonpatch.apply_patch(copy.deepcopy(live), ops), ops, changes


def test_nothing_to_do_sends_nothing():
    assert diff(CONFIGMAP_LIKE, [OwnedField(("spec", "a"), 1), OwnedField(("spec", "gone"), ABSENT)]) == ([], [])


def test_changes_removals_and_additions_touch_only_owned_paths():
    fields = [OwnedField(("spec", "a"), 2), OwnedField(("spec", "list"), ABSENT), OwnedField(("metadata", "labels", "ours/x"), "y"),
              OwnedField(("metadata", "annotations", "ours/one"), "1"), OwnedField(("metadata", "annotations", "ours/two"), "2")]
    after, ops, changes = applied(CONFIGMAP_LIKE, fields)
    assert after["spec"] == {"a": 2} and after["status"] == {"x": 1}
    assert after["metadata"]["labels"] == {"theirs": "1", "ours/x": "y"}
    assert after["metadata"]["annotations"] == {"ours/one": "1", "ours/two": "2"}, "a parent made for one field is not overwritten by the next"
    assert [c.action for c in changes] == ["changed", "removed", "added", "added", "added"]
    assert {"op": "test", "path": "/spec/list", "value": [1, 2]} in ops and {"op": "test", "path": "/spec/a", "value": 1} in ops
    assert {"op": "add", "path": "/metadata/labels/ours~1x", "value": "y"} in ops


def test_a_failed_guard_rejects_the_whole_patch():
    ops, _changes = diff(CONFIGMAP_LIKE, [OwnedField(("spec", "a"), 2)])
    moved = copy.deepcopy(CONFIGMAP_LIKE)
    moved["spec"]["a"] = 5
    try:
        jsonpatch.apply_patch(moved, ops)
    except jsonpatch.JsonPatchTestFailed:
        pass
    else:
        raise AssertionError("the test op must fail on a value changed since the read")


def test_ignored_keys_of_list_entries_are_compared_out_and_carried_over():
    live = {"spec": {"ports": [{"name": "tcp-22", "port": 22, "nodePort": 31000}]}}
    same = OwnedField(("spec", "ports"), [{"name": "tcp-22", "port": 22}], ignore=("nodePort",))
    assert diff(live, [same]) == ([], [])
    more = OwnedField(("spec", "ports"), [{"name": "tcp-22", "port": 22}, {"name": "tcp-80", "port": 80}], ignore=("nodePort",))
    after, _ops, _changes = applied(live, [more])
    assert after["spec"]["ports"] == [{"name": "tcp-22", "port": 22, "nodePort": 31000}, {"name": "tcp-80", "port": 80}]


def test_apply_decides_again_when_an_owned_field_moved(fake):
    """A concurrent writer changed the field between read and write: the guard fails (422), the object is read again."""
    from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube_resources
    resource = kube_resources.STATIC_RESOURCES[("v1", "ConfigMap")]
    live = fake.put(resource, {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "spec": {"a": 1}})

    def meddle(client):
        obj = client.objects[(resource.plural, "ns", "c")]
        obj["spec"]["a"] = 7
        client.put(resource, obj)
    fake.before_write.append(meddle)
    after, changes = reconcile.apply(fake, resource, "c", "ns", live, [OwnedField(("spec", "a"), 2)])
    assert after["spec"]["a"] == 2 and [(c.before, c.after) for c in changes] == [(7, 2)]
    assert [patch_type for patch_type, _sub, _patch in fake.writes] == ["json", "json"]


def test_field_names_and_redaction():
    assert field_name(("metadata", "labels", "a.io/b")) == 'metadata.labels["a.io/b"]'
    assert reconcile.redact(("data", "userData"), "c2VjcmV0").startswith("<8 bytes, sha256 ")
    change = reconcile.Change(("data",), {"key": "a"}, {"key": "b"})
    assert reconcile.describe(change) == "data changed"
    assert reconcile.describe(reconcile.Change(("spec", "a"), 1, 2)) == "spec.a 1 -> 2"
