"""Unit tests for the computeinstances event source: decisions, dedup, bounded memory, arguments, import paths (no network)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import kube_errors, kubeconfig
from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import ComputeInstance
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names

MODULE = "ansible_collections.cloudkit.provisioning.extensions.eda.plugins.event_source.computeinstances"
COLLECTION_ROOT = Path(__file__).resolve().parents[4]
SOURCE_PATH = COLLECTION_ROOT / "extensions" / "eda" / "plugins" / "event_source" / "computeinstances.py"


def _load_source():
    """The plugin as the collection loader sees it, else by path (as ansible-rulebook's runpy does)."""
    try:
        return importlib.import_module(MODULE)
    except ImportError:
        spec = importlib.util.spec_from_file_location("computeinstances_source", SOURCE_PATH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


source = _load_source()
NAMES = Names()
OSAC = Names("osac.openshift.io")


def instance(uid="u-1", rv="10", desired="v1", reconciled=None, deleting=None, finalizers=None, management=None, names=NAMES):
    annotations = {}
    if reconciled:
        annotations[names.reconciled_config_version_annotation] = reconciled
    if management:
        annotations[names.management_state_annotation] = management
    metadata = {"name": "vm-" + uid, "namespace": "tenants", "uid": uid, "resourceVersion": rv, "annotations": annotations,
                "finalizers": list(finalizers or [names.operator_finalizer])}
    if deleting:
        metadata["deletionTimestamp"] = deleting
    status = {"desiredConfigVersion": desired} if desired else {}
    return {"apiVersion": names.api_version, "kind": "ComputeInstance", "metadata": metadata,
            "spec": {"templateID": "cloudkit.templates.ocp_virt_vm"}, "status": status}


AAP = NAMES.finalizer
DELETED_AT = "2026-02-01T10:00:00Z"


@pytest.mark.parametrize("label, kwargs, action", [
    ("create", {}, "provision"),
    ("spec change", {"desired": "v2", "reconciled": "v1"}, "provision"),
    ("annotation caught up", {"reconciled": "v1"}, None),
    ("desired version missing", {"desired": None}, None),
    ("delete with our finalizer", {"deleting": DELETED_AT, "finalizers": [AAP, NAMES.operator_finalizer]}, "deprovision"),
    ("delete without our finalizer", {"deleting": DELETED_AT}, None),
    ("delete of a never-provisioned instance", {"deleting": DELETED_AT, "finalizers": [AAP], "desired": None}, "deprovision"),
    ("manual", {"management": "manual"}, None),
    ("unmanaged while deleting", {"management": "unmanaged", "deleting": DELETED_AT, "finalizers": [AAP]}, None),
    ("Manual in capitals", {"management": "Manual", "desired": "v9"}, None),
])
def test_action_table(label, kwargs, action):
    obj = instance(**kwargs)
    _instance, event, fresh = source.InstanceTracker(NAMES).observe(obj)
    assert fresh, label
    expected, reason = ComputeInstance(obj, NAMES).needed_action()
    assert (event["action"] if event else None) == action == (None if expected == "none" else expected), label
    if event:
        assert event["reason"] == reason


def test_event_shape():
    obj = instance(desired="v7", rv="42")
    _instance, event, _fresh = source.InstanceTracker(NAMES).observe(obj)
    assert set(event) == {"action", "reason", "instance", "identity", "payload"}
    assert event["instance"] is obj and event["payload"] is obj
    assert event["identity"] == {"namespace": "tenants", "name": "vm-u-1", "uid": "u-1", "resource_version": "42",
                                 "desired_config_version": "v7", "api_group": "cloudkit.openshift.io"}
    json.dumps(event)


def test_osac_group_names_decide():
    tracker = source.InstanceTracker(OSAC)
    # The cloudkit finalizer means nothing to the osac group, its own does.
    _i, event, _f = tracker.observe(instance(uid="a", deleting=DELETED_AT, finalizers=[NAMES.finalizer], names=OSAC))
    assert event is None
    _i, event, _f = tracker.observe(instance(uid="b", deleting=DELETED_AT, finalizers=[OSAC.finalizer], names=OSAC))
    assert event["action"] == "deprovision" and event["identity"]["api_group"] == "osac.openshift.io"
    _i, event, _f = tracker.observe(instance(uid="c", reconciled="v1", names=NAMES))
    assert event["action"] == "provision", "a cloudkit annotation does not reconcile an osac instance"


def test_same_desired_version_is_emitted_once_across_relists():
    tracker = source.InstanceTracker(NAMES)
    actions = []
    for rv in ("10", "10", "11", "12"):  # a relist replays rv 10, then unrelated updates arrive
        actions.append(tracker.observe(instance(rv=rv))[1])
    assert [a["action"] if a else None for a in actions] == ["provision", None, None, None]
    assert tracker.observe(instance(rv="13", desired="v2"))[1]["action"] == "provision"
    assert tracker.observe(instance(rv="14", desired="v2"))[1] is None


def test_catch_up_then_regression_is_a_new_need():
    tracker = source.InstanceTracker(NAMES)
    assert tracker.observe(instance(rv="10"))[1]["action"] == "provision"
    assert tracker.observe(instance(rv="11", reconciled="v1"))[1] is None
    # Someone removed the annotation: the instance needs v1 again.
    assert tracker.observe(instance(rv="12"))[1]["action"] == "provision"


def test_deletion_is_emitted_once_per_deletion_timestamp():
    tracker = source.InstanceTracker(NAMES)
    deleting = {"deleting": DELETED_AT, "finalizers": [AAP]}
    events = [tracker.observe(instance(rv=rv, **deleting))[1] for rv in ("20", "21", "20")]
    assert [e["action"] if e else None for e in events] == ["deprovision", None, None]
    assert tracker.observe(instance(rv="22", deleting=DELETED_AT))[1] is None  # finalizer removed: done


def test_older_state_replayed_after_newer_is_ignored():
    tracker = source.InstanceTracker(NAMES)
    assert tracker.observe(instance(rv="30", reconciled="v1"))[1] is None
    _i, event, fresh = tracker.observe(instance(rv="29"))
    assert event is None and not fresh


def test_opaque_resource_versions_still_dedup():
    tracker = source.InstanceTracker(NAMES)
    assert tracker.observe(instance(rv="abc"))[1]["action"] == "provision"
    assert tracker.observe(instance(rv="abd"))[1] is None


def test_memory_is_bounded_by_live_instances():
    tracker = source.InstanceTracker(NAMES)
    for number in range(5000):
        tracker.observe(instance(uid="u-%d" % number))
    assert len(tracker) == 5000
    for number in range(2500):
        tracker.forget("u-%d" % number)
    assert len(tracker) == 2500
    # A relist that finds only ten of them forgets the rest (their DELETED events were missed).
    keep = set("u-%d" % number for number in range(2500, 2510))
    gone = tracker.prune(None, keep)
    assert len(gone) == 2490 and len(tracker) == 10
    assert {"uid", "namespace", "name", "resource_version", "desired_config_version", "api_group"} == set(gone[0])
    # A forgotten uid that comes back is a new instance to the tracker.
    assert tracker.observe(instance(uid="u-1"))[1]["action"] == "provision"


def test_prune_only_touches_its_namespace():
    tracker = source.InstanceTracker(NAMES)
    obj = instance(uid="x")
    obj["metadata"]["namespace"] = "other"
    tracker.observe(obj)
    tracker.observe(instance(uid="y"))
    assert [g["uid"] for g in tracker.prune("tenants", set())] == ["y"]
    assert "x" in tracker


def test_watch_error_events_are_typed():
    gone = kube_errors.error_from_watch_event({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}})
    assert isinstance(gone, kube_errors.Gone) and gone.message == "too old"
    assert isinstance(kube_errors.error_from_watch_event({"type": "ERROR", "object": {}}), kube_errors.ServerError)


def test_settings_defaults(monkeypatch):
    for variable in kubeconfig.AUTH_ENV.values():
        monkeypatch.delenv(variable, raising=False)
    settings = source.Settings({})
    assert settings.namespaces == [None]
    assert settings.names == NAMES
    assert (settings.raw_events, settings.heartbeat, settings.label_selector) == (False, 0, None)
    assert settings.connection == dict((option, None) for option in kubeconfig.AUTH_ARG_SPEC)


def test_settings_from_rulebook_strings(monkeypatch):
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", "/env/kubeconfig")
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "no")
    settings = source.Settings({"namespace": "a, b,a", "raw_events": "yes", "heartbeat": "15", "api_group": "osac.openshift.io",
                                "context": "ctx", "label_selector": "", "eda_feedback_queue": object()})
    assert settings.namespaces == ["a", "b"]
    assert settings.raw_events is True and settings.heartbeat == 15 and settings.label_selector is None
    assert settings.names == OSAC
    assert settings.connection["kubeconfig"] == "/env/kubeconfig" and settings.connection["context"] == "ctx"
    assert settings.connection["validate_certs"] is False
    assert source.Settings({"namespaces": ["x"], "verify_ssl": "true"}).connection["validate_certs"] is True


@pytest.mark.parametrize("args, message", [
    ({"namespaces": "a", "namespace": "b"}, "same option"),
    ({"kubeconfig": "a", "kubeconfig_path": "b"}, "unknown argument"),
    ({"validate_certs": True, "verify_ssl": False}, "given twice"),
    ({"heartbeat": "soon"}, "heartbeat must be a number"),
    ({"heartbeat": -1}, "heartbeat must be a number >= 0"),
    ({"raw_events": "maybe"}, "raw_events must be a boolean"),
    ({"namespaces": [1]}, "namespaces must be"),
    ({"api_group": "not a group"}, "api_group"),
])
def test_settings_refuse_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        source.Settings(args)


def test_documentation_covers_every_argument():
    import yaml

    documented = yaml.safe_load(source.DOCUMENTATION)["options"]
    assert set(documented) == set(source._SOURCE_DEFAULTS) | set(kubeconfig.AUTH_ARG_SPEC)
    for option, default in source._SOURCE_DEFAULTS.items():
        if default not in (None, ""):
            assert documented[option].get("default") == default, option
    yaml.safe_load(source.EXAMPLES)


def _copy_collection(destination):
    """The files the source needs, in a fresh tree (no __pycache__)."""
    for relative in ("extensions/eda/plugins/event_source/computeinstances.py",):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(COLLECTION_ROOT / relative, target)
    shutil.copytree(COLLECTION_ROOT / "plugins" / "module_utils", destination / "plugins" / "module_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return destination / "extensions/eda/plugins/event_source/computeinstances.py"


@pytest.mark.parametrize("layout", ["ansible_collections/cloudkit/provisioning", "checkout"])
def test_runpy_imports_module_utils_beside_the_file(tmp_path, layout):
    """ansible-rulebook loads sources with runpy.run_path and no collections path on sys.path."""
    plugin = _copy_collection(tmp_path / layout)
    code = ("import runpy, sys; module = runpy.run_path(sys.argv[1]); "
            "print(module['computeinstance'].__file__); print(module['main'].__name__)")
    environment = dict((k, v) for k, v in os.environ.items() if k != "PYTHONPATH")
    result = subprocess.run([sys.executable, "-I", "-c", code, str(plugin)], capture_output=True, text=True, cwd=str(tmp_path),
                            env=environment, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    loaded, main = result.stdout.split()
    assert loaded == str(tmp_path / layout / "plugins" / "module_utils" / "computeinstance.py")
    assert main == "main"
