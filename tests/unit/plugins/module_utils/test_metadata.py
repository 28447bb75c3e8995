"""Unit tests for plugins/module_utils/metadata.py and guarded.guarded_write: finalizers and annotations."""

from __future__ import annotations

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import guarded, kube_errors, retry
from ansible_collections.cloudkit.provisioning.plugins.module_utils.metadata import (
    BeingDeleted,
    annotation_patch,
    finalizer_patch,
    set_annotation,
    set_finalizer,
)

OURS = "cloudkit.openshift.io/computeinstance-aap"
THEIRS = "example.com/theirs"


def obj(finalizers=None, annotations=None, rv="7", deleting=False):
    metadata = {"name": "cm", "namespace": "ns", "resourceVersion": rv}
    if finalizers is not None:
        metadata["finalizers"] = finalizers
    if annotations is not None:
        metadata["annotations"] = annotations
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


def test_add_to_missing_list_is_guarded_by_resource_version():
    assert finalizer_patch(obj(), OURS, True) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/metadata/finalizers", "value": [OURS]},
    ]


def test_add_to_existing_list_tests_the_exact_list_and_appends():
    assert finalizer_patch(obj([THEIRS]), OURS, True) == [
        {"op": "test", "path": "/metadata/finalizers", "value": [THEIRS]},
        {"op": "add", "path": "/metadata/finalizers/-", "value": OURS},
    ]


def test_remove_tests_only_our_entry():
    assert finalizer_patch(obj([THEIRS, OURS, "x/y"]), OURS, False) == [
        {"op": "test", "path": "/metadata/finalizers/1", "value": OURS},
        {"op": "remove", "path": "/metadata/finalizers/1"},
    ]


@pytest.mark.parametrize("finalizers, present", [([OURS], True), ([THEIRS], False), (None, False), ([], False)])
def test_nothing_to_do_gives_no_patch(finalizers, present):
    assert finalizer_patch(obj(finalizers), OURS, present) is None


def test_set_finalizer_adds_then_is_idempotent(fake, configmap):
    fake.put(configmap, obj([THEIRS]))
    first = set_finalizer(fake, configmap, "cm", "ns", OURS, True)
    assert first["changed"] and first["finalizers"] == [THEIRS, OURS] and first["before"] == [THEIRS]
    second = set_finalizer(fake, configmap, "cm", "ns", OURS, True)
    assert not second["changed"] and second["finalizers"] == [THEIRS, OURS]
    assert len(fake.writes) == 1


def test_check_mode_predicts_without_writing(fake, configmap):
    fake.put(configmap, obj([THEIRS, OURS]))
    result = set_finalizer(fake, configmap, "cm", "ns", OURS, False, check_mode=True)
    assert result["changed"] and result["finalizers"] == [THEIRS]
    assert not fake.writes
    assert fake.get(configmap, "cm", "ns")["metadata"]["finalizers"] == [THEIRS, OURS]


def test_concurrent_add_by_someone_else_is_kept(fake, configmap):
    fake.put(configmap, obj([THEIRS]))

    def other_writer(client):
        live = client.objects[("configmaps", "ns", "cm")]
        client.put(configmap, dict(live, metadata=dict(live["metadata"], finalizers=[THEIRS, "late/arrival"])))

    fake.before_write.append(other_writer)
    result = set_finalizer(fake, configmap, "cm", "ns", OURS, True)
    assert result["changed"]
    assert fake.get(configmap, "cm", "ns")["metadata"]["finalizers"] == [THEIRS, "late/arrival", OURS]
    assert len(fake.writes) == 2, "the first, stale attempt was refused and retried"


def test_concurrent_removal_of_an_earlier_entry_does_not_remove_the_wrong_one(fake, configmap):
    fake.put(configmap, obj([THEIRS, OURS, "keep/me"]))

    def other_writer(client):
        live = client.objects[("configmaps", "ns", "cm")]
        client.put(configmap, dict(live, metadata=dict(live["metadata"], finalizers=[OURS, "keep/me"])))

    fake.before_write.append(other_writer)
    set_finalizer(fake, configmap, "cm", "ns", OURS, False)
    assert fake.get(configmap, "cm", "ns")["metadata"]["finalizers"] == ["keep/me"]


def test_someone_else_already_did_it_reports_unchanged(fake, configmap):
    fake.put(configmap, obj([THEIRS]))

    def other_writer(client):
        live = client.objects[("configmaps", "ns", "cm")]
        client.put(configmap, dict(live, metadata=dict(live["metadata"], finalizers=[THEIRS, OURS])))

    fake.before_write.append(other_writer)
    result = set_finalizer(fake, configmap, "cm", "ns", OURS, True)
    assert not result["changed"]
    assert fake.get(configmap, "cm", "ns")["metadata"]["finalizers"] == [THEIRS, OURS]


def test_missing_object_absent_is_fine_present_is_not_found(fake, configmap):
    result = set_finalizer(fake, configmap, "cm", "ns", OURS, False)
    assert result == {"changed": False, "exists": False, "before": [], "finalizers": [], "resource_version": None, "live": None}
    with pytest.raises(kube_errors.NotFound, match="cannot add finalizer"):
        set_finalizer(fake, configmap, "cm", "ns", OURS, True)


def test_adding_to_an_object_being_deleted_is_refused_clearly(fake, configmap):
    fake.put(configmap, obj([THEIRS], deleting=True))
    with pytest.raises(BeingDeleted, match="being deleted"):
        set_finalizer(fake, configmap, "cm", "ns", OURS, True)
    assert not fake.writes
    assert set_finalizer(fake, configmap, "cm", "ns", THEIRS, False)["finalizers"] == []


def test_deletion_starting_mid_write_is_reported_as_being_deleted(fake, configmap):
    fake.put(configmap, obj([THEIRS]))

    def deleter(client):
        live = client.objects[("configmaps", "ns", "cm")]
        client.put(configmap, dict(live, metadata=dict(live["metadata"], deletionTimestamp="2026-01-01T00:00:00Z")))

    fake.before_write.append(deleter)
    with pytest.raises(BeingDeleted):
        set_finalizer(fake, configmap, "cm", "ns", OURS, True)


def test_set_finalizer_on_a_given_object_reads_nothing_and_returns_the_object_after(fake, configmap):
    fake.put(configmap, obj([THEIRS]))
    given = fake.get(configmap, "cm", "ns")
    fake.reads.clear()
    result = set_finalizer(fake, configmap, "cm", "ns", OURS, True, live=given)
    assert result["changed"] and not fake.reads
    assert result["live"]["metadata"]["finalizers"] == [THEIRS, OURS]
    assert result["live"]["metadata"]["resourceVersion"] != given["metadata"]["resourceVersion"]
    changed, after = set_annotation(fake, configmap, "cm", "ns", "a/b", "1", live=result["live"])
    assert changed and not fake.reads and after["metadata"]["annotations"] == {"a/b": "1"}


def test_a_stale_given_object_costs_one_conflict_then_a_read(fake, configmap):
    fake.put(configmap, obj([THEIRS]))
    stale = fake.get(configmap, "cm", "ns")
    fake.put(configmap, obj([THEIRS, "late/arrival"]))
    result = set_finalizer(fake, configmap, "cm", "ns", OURS, True, live=stale)
    assert result["changed"]
    assert fake.get(configmap, "cm", "ns")["metadata"]["finalizers"] == [THEIRS, "late/arrival", OURS]
    assert len(fake.writes) == 2, "the write on the stale object was refused, then redone on a fresh read"


def test_guarded_write_retries_are_bounded():
    sleeps = []
    calls = []

    def write(_live):
        calls.append(1)
        raise kube_errors.Conflict("modified", status=409)

    with pytest.raises(kube_errors.Conflict):
        guarded.guarded_write(lambda: obj(rv=str(len(calls))), write, retry.Retry(attempts=4, sleep=sleeps.append))
    assert len(calls) == 4 and len(sleeps) == 3


def test_guarded_write_raises_a_real_validation_error_at_once():
    calls = []

    def write(_live):
        calls.append(1)
        raise kube_errors.Invalid("spec.x: Invalid value", status=422)

    with pytest.raises(kube_errors.Invalid, match="spec.x"):
        guarded.guarded_write(lambda: obj(rv="same"), write, retry.Retry(attempts=5, sleep=lambda _s: None))
    assert len(calls) == 1


def test_guarded_write_never_retries_already_exists():
    def write(_live):
        raise kube_errors.AlreadyExists("exists", status=409, reason="AlreadyExists")

    with pytest.raises(kube_errors.AlreadyExists):
        guarded.guarded_write(lambda: None, write, retry.Retry(attempts=5, sleep=lambda _s: None))


def test_json_pointer_escapes_annotation_keys():
    assert guarded.json_pointer("metadata", "annotations", "a.io/x~y") == "/metadata/annotations/a.io~1x~0y"


KEY = "cloudkit.openshift.io/reconciled-config-version"


def test_annotation_patches():
    assert annotation_patch(obj(), KEY, "v1") == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/metadata/annotations", "value": {KEY: "v1"}},
    ]
    assert annotation_patch(obj(annotations={"other": "x"}), KEY, "v2")[1] == {
        "op": "add", "path": "/metadata/annotations/cloudkit.openshift.io~1reconciled-config-version", "value": "v2"}
    assert annotation_patch(obj(annotations={KEY: "v1"}), KEY, None)[1]["op"] == "remove"
    assert annotation_patch(obj(annotations={KEY: "v1"}), KEY, "v1") is None
    assert annotation_patch(obj(), KEY, None) is None


def test_set_annotation_keeps_concurrent_annotations(fake, configmap):
    fake.put(configmap, obj(annotations={"other": "x"}))

    def other_writer(client):
        live = client.objects[("configmaps", "ns", "cm")]
        client.put(configmap, dict(live, metadata=dict(live["metadata"], annotations={"other": "x", "new": "y"})))

    fake.before_write.append(other_writer)
    changed, live = set_annotation(fake, configmap, "cm", "ns", KEY, "abc")
    assert changed
    assert live["metadata"]["annotations"] == {"other": "x", "new": "y", KEY: "abc"}
    changed, _live = set_annotation(fake, configmap, "cm", "ns", KEY, "abc")
    assert not changed


def test_set_annotation_expect_can_refuse(fake, configmap):
    fake.put(configmap, obj())

    def refuse(_live):
        raise ValueError("desired version moved")

    with pytest.raises(ValueError, match="moved"):
        set_annotation(fake, configmap, "cm", "ns", KEY, "abc", expect=refuse)
    assert not fake.writes
