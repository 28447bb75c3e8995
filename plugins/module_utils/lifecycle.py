# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Bring one instance's KubeVirt objects to present or absent, and wait for the outcome.

Idempotent: objects already as desired are not written. Result dicts are the
same shape in both directions so playbooks never branch on a provider.
"""

from __future__ import annotations

import time

from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube import (
    AlreadyExists,
    Conflict,
    Forbidden,
    NotFound,
    Retry,
    WaitTimeout,
    wait_for,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import parse_time, rfc3339, utc_now
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import (
    DELETE_ORDER,
    FAILED_PRINTABLE_STATUSES,
    STORAGE_CLASS,
    VIRTUAL_MACHINE,
    VIRTUAL_MACHINE_INSTANCE,
    build_objects,
    default_storage_class,
    drift,
    update_patch,
    vm_state,
    vmi_ready,
)

# Writes here carry no precondition (merge patches, deletes, creates), so nothing they were decided from can be stale:
# a 409 Conflict is the API server's own update retries running out under contention (KubeVirt's controllers write the
# same objects). Sending the same write again is safe; failing the job would leave a delete blocked for nothing.
CONFLICT_RETRY = Retry(attempts=5, base_delay=0.1, max_delay=1.0)


def retry_conflicts(write, *args, **kwargs):
    """``write(*args, **kwargs)``, sent again (bounded, with jitter) when answered 409 Conflict; AlreadyExists is raised."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return write(*args, **kwargs)
        except AlreadyExists:
            raise
        except Conflict:
            if attempt >= CONFLICT_RETRY.attempts:
                raise
            CONFLICT_RETRY.sleep(CONFLICT_RETRY.delay(attempt))


def _ref(manifest_or_object):
    metadata = manifest_or_object["metadata"]
    return "%s %s/%s" % (manifest_or_object["kind"], metadata.get("namespace"), metadata["name"])


def restart_requested(instance):
    """spec.restartRequestedAt when it is later than status.lastRestartedAt, else None."""
    requested = instance.spec.get("restartRequestedAt")
    requested_at = parse_time(requested)
    if requested_at is None:
        return None
    last = parse_time(instance.status.get("lastRestartedAt"))
    return requested if last is None or requested_at > last else None


class Outcome(object):
    """What happened, in the shape computeinstance_vm returns."""

    def __init__(self, namespace, vm_name):
        self.state = "Succeeded"
        self.message = ""
        self.vm_reference = {"namespace": namespace, "name": vm_name} if namespace else None
        self.created = []
        self.updated = []
        self.deleted = []
        self.notes = []
        self.restarted_at = None
        self.waited_on = None

    @property
    def changed(self):
        return bool(self.created or self.updated or self.deleted or self.restarted_at)

    def as_dict(self):
        return {
            "state": self.state,
            "message": self.message,
            "vm_reference": self.vm_reference,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "notes": self.notes,
            "restarted_at": self.restarted_at,
            "waited_on": self.waited_on,
        }


def storage_class_for(client, explicit):
    """The explicit class, else the cluster default (upstream lost it to an env lookup returning '')."""
    if explicit:
        return explicit
    try:
        return default_storage_class(client.list(STORAGE_CLASS)["items"])
    except Forbidden:
        return None


def ensure_present(client, instance, params, namespace, storage_class=None, check_mode=False, wait=True, timeout=600,
                   restart_on_spec_change=True, tick=None):
    """Create or update the instance's objects, restart when asked, and wait for Ready."""
    labels = instance.names.instance_labels(instance.name, instance.uid)
    outcome = Outcome(namespace, instance.name)
    objects = build_objects(instance.name, namespace, labels, params, storage_class_for(client, storage_class))
    vm_existed = False
    template_changed = False
    vm = None  # the VirtualMachine as last written or read here: the wait starts from it
    # Never provisioned: the objects are most likely new, so create first and read only on AlreadyExists.
    create_first = instance.reconciled_config_version is None and not check_mode
    for resource, manifest in objects:
        live = None
        if create_first:
            try:
                live = retry_conflicts(client.create, resource, manifest, namespace)
            except AlreadyExists:
                pass
            else:
                outcome.created.append(_ref(manifest))
                vm = live if resource is VIRTUAL_MACHINE else vm
                continue
        live = client.get_or_none(resource, manifest["metadata"]["name"], namespace)
        if live is None:
            if not check_mode:
                live = retry_conflicts(client.create, resource, manifest, namespace)
            outcome.created.append(_ref(manifest))
            vm = live if resource is VIRTUAL_MACHINE else vm
            continue
        if resource is VIRTUAL_MACHINE:
            vm_existed = True
            vm = live
        mutable, immutable = drift(live, manifest)
        for field in immutable:
            outcome.notes.append("%s: %s differs but cannot change in place; left as is" % (_ref(manifest), field))
        if mutable:
            if resource is VIRTUAL_MACHINE and "spec" in mutable:
                template_changed = live.get("spec", {}).get("template") != manifest["spec"]["template"]
            if not check_mode:
                patched = retry_conflicts(client.patch, resource, manifest["metadata"]["name"], update_patch(manifest, mutable), namespace)
                vm = patched if resource is VIRTUAL_MACHINE else vm
            outcome.updated.append(_ref(manifest))

    running = params.get("run_strategy", "Always") != "Halted"
    restart_at = restart_requested(instance)
    old_vmi = client.get_or_none(VIRTUAL_MACHINE_INSTANCE, instance.name, namespace) if vm_existed and running else None
    if old_vmi is not None and (restart_at or (template_changed and restart_on_spec_change)):
        # Deleting the VMI is what a KubeVirt restart does; the VM controller starts a new one.
        if not check_mode:
            try:
                retry_conflicts(client.delete, VIRTUAL_MACHINE_INSTANCE, instance.name, namespace)
            except NotFound:
                pass
        outcome.restarted_at = restart_at or _utc_now()
        if template_changed and not restart_at:
            outcome.notes.append("VirtualMachine template changed: restarted to apply it")
    elif template_changed and running:
        outcome.notes.append("VirtualMachine template changed: it applies at the next restart")
    if restart_at and not outcome.restarted_at:
        # No running VMI to restart (the VM is new, its VMI is not up yet, or it is halted): its next start comes after
        # the request, which serves it. Reporting it served records lastRestartedAt, so no later run restarts for it.
        outcome.restarted_at = restart_at
        outcome.notes.append("restart requested at %s: served by the VM's next start (it was not running)" % restart_at)

    if check_mode or not wait:
        outcome.message = "objects %s" % ("would be applied" if check_mode else "applied; not waiting")
        return outcome
    old_uid = old_vmi["metadata"]["uid"] if old_vmi is not None and outcome.restarted_at else None
    return _wait_vm(client, instance.name, namespace, running, old_uid, timeout, tick, outcome, vm)


def _utc_now():
    return rfc3339(utc_now())


def _wait_vm(client, name, namespace, running, old_vmi_uid, timeout, tick, outcome, known=None):
    """Wait (on a watch) for Ready, or for stopped when Halted; fail fast on terminal errors."""
    seen = {}

    def settled(vm):
        if vm is None:
            return False
        ready, printable, detail = vm_state(vm)
        seen.update(printable=printable, detail=detail)
        if printable in FAILED_PRINTABLE_STATUSES:
            return True
        if not running:
            return printable == "Stopped" or not ready
        if not ready:
            return False
        if old_vmi_uid is None:
            return True
        # After a restart the VM's Ready condition may still be the old VMI's: the new VMI itself must be up.
        vmi = client.get_or_none(VIRTUAL_MACHINE_INSTANCE, name, namespace)
        return vmi is not None and vmi["metadata"]["uid"] != old_vmi_uid and vmi_ready(vmi)

    outcome.waited_on = "VirtualMachine %s/%s to become %s" % (namespace, name, "Ready" if running else "Stopped")
    try:
        vm = wait_for(client, VIRTUAL_MACHINE, name, namespace, settled, timeout, tick=tick, known=known)
    except WaitTimeout:
        outcome.state = "Failed"
        outcome.message = "VirtualMachine %s/%s not %s after %ds (status %s%s)" % (
            namespace, name, "Ready" if running else "Stopped", timeout, seen.get("printable", "unknown"),
            ": " + seen["detail"] if seen.get("detail") else "")
        return outcome
    ready, printable, detail = vm_state(vm)
    if printable in FAILED_PRINTABLE_STATUSES:
        outcome.state = "Failed"
        outcome.message = "VirtualMachine %s/%s failed: %s%s" % (namespace, name, printable, ": " + detail if detail else "")
    else:
        outcome.message = "VirtualMachine %s/%s is %s" % (namespace, name, "Ready" if ready else printable)
    return outcome


def ensure_absent(client, instance_name, uid, names, namespace, check_mode=False, wait=True, timeout=600, tick=None):
    """Stop the VM, wait for its VMI to go, delete VM, Services, DataVolumes, Secrets; wait until gone."""
    outcome = Outcome(namespace, instance_name)
    if namespace is None:
        outcome.message = "no namespace known for this instance: nothing to delete"
        return outcome
    vm = client.get_or_none(VIRTUAL_MACHINE, instance_name, namespace)
    if vm is not None and (vm.get("spec") or {}).get("runStrategy") != "Halted":
        if not check_mode:
            retry_conflicts(client.patch, VIRTUAL_MACHINE, instance_name, {"spec": {"runStrategy": "Halted"}}, namespace)
        outcome.updated.append(_ref(vm) + " (stopped)")
        if wait and not check_mode:
            outcome.waited_on = "VirtualMachineInstance %s/%s to stop" % (namespace, instance_name)
            try:
                wait_for(client, VIRTUAL_MACHINE_INSTANCE, instance_name, namespace, lambda vmi: vmi is None, timeout, tick=tick)
            except WaitTimeout:
                outcome.state = "Failed"
                outcome.message = "VirtualMachineInstance %s/%s still running after %ds" % (namespace, instance_name, timeout)
                return outcome
    selector = names.instance_label_selector(uid) if uid else None
    targets = []
    for resource in DELETE_ORDER:
        found = client.list(resource, namespace, label_selector=selector)["items"] if selector else []
        if resource is VIRTUAL_MACHINE and vm is not None and all(o["metadata"]["name"] != instance_name for o in found):
            found.append(vm)
        for obj in found:
            targets.append((resource, obj))
            if not check_mode:
                try:
                    retry_conflicts(client.delete, resource, obj["metadata"]["name"], namespace)
                except NotFound:
                    continue
            outcome.deleted.append(_ref(dict(obj, kind=resource.kind)))
    if wait and not check_mode:
        deadline = time.monotonic() + timeout
        for resource, obj in targets:
            outcome.waited_on = "%s %s/%s to be gone" % (resource.kind, namespace, obj["metadata"]["name"])
            try:
                wait_for(client, resource, obj["metadata"]["name"], namespace, lambda o: o is None, max(1, deadline - time.monotonic()), tick=tick)
            except WaitTimeout:
                outcome.state = "Failed"
                outcome.message = "%s %s/%s still exists after %ds (a finalizer may hold it)" % (resource.kind, namespace, obj["metadata"]["name"], timeout)
                return outcome
    outcome.message = "deleted %d object(s)" % len(outcome.deleted) if outcome.deleted else "nothing left to delete"
    return outcome
