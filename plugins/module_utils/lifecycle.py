# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Bring one instance's KubeVirt objects to present or absent, and wait for the outcome.

Present is a declarative apply of the whole desired state: the set of objects, and on each the fields this collection
owns (kubevirt.OWNED_PATHS), set exactly (removals included) with guarded JSON patches; objects the spec no longer wants
are deleted; changes that cannot be made in place are refused before any write. Idempotent: objects already as desired
are not written. Result dicts are the same shape in both directions so playbooks never branch on a provider.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, TypeVar

from ansible_collections.cloudkit.provisioning.plugins.module_utils.guarded import WaitTimeout, wait_for
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    NotFound,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.retry import Retry
from ansible_collections.cloudkit.provisioning.plugins.module_utils import reconcile
from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import (
    ComputeInstance,
    parameter_fields,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube_resources import Resource
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names
from ansible_collections.cloudkit.provisioning.plugins.module_utils.times import (
    micro_time,
    parse_time,
    rfc3339,
    utc_now,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import (
    DATA_VOLUME,
    DELETE_ORDER,
    FAILED_PRINTABLE_STATUSES,
    PERSISTENT_VOLUME_CLAIM,
    SECRET,
    SERVICE,
    STORAGE_CLASS,
    VIRTUAL_MACHINE,
    VIRTUAL_MACHINE_INSTANCE,
    build_objects,
    check_disk,
    default_storage_class,
    needs_claim,
    owned_fields,
    template_changed,
    vm_state,
    vmi_outdated,
    vmi_ready,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.reconcile import ABSENT, OwnedField

T = TypeVar("T")

# Creates, the stop patch and the deletes of ensure_absent carry no precondition, so nothing they were decided from can
# be stale: a 409 Conflict is the API server's own update retries running out under contention (KubeVirt's controllers
# write the same objects). Sending the same write again is safe; failing the job would leave a delete blocked for
# nothing.
CONFLICT_RETRY = Retry(attempts=5, base_delay=0.1, max_delay=1.0)


def retry_conflicts(write: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``write(*args, **kwargs)``, sent again (bounded, with jitter) when answered 409 Conflict; AlreadyExists is
    raised."""
    return CONFLICT_RETRY.run(
        lambda: write(*args, **kwargs), Conflict, retryable=lambda error: not isinstance(error, AlreadyExists)
    )


def _ref(manifest_or_object):
    metadata = manifest_or_object["metadata"]
    return "{} {}/{}".format(manifest_or_object["kind"], metadata.get("namespace"), metadata["name"])


def restart_requested(instance):
    """spec.restartRequestedAt when it is later than status.lastRestartedAt, else None."""
    requested = instance.spec.get("restartRequestedAt")
    requested_at = parse_time(requested)
    if requested_at is None:
        return None
    last = parse_time(instance.status.get("lastRestartedAt"))
    return requested if last is None or requested_at > last else None


class Outcome:
    """What happened, in the shape computeinstance_vm returns.

    ``changes`` has one entry per object looked at: kind, namespace, name, action (created, updated, deleted,
    unchanged) and, for updates, the owned fields that changed; ``summary`` says the same in lines for a job log;
    ``diff`` is the before/after of those fields for Ansible's --diff; ``refused`` lists the changes that cannot be
    made in place, each with the spec field and why (nothing was written then).
    """

    def __init__(self, namespace, vm_name):
        self.state = "Succeeded"
        self.message = ""
        self.vm_reference = {"namespace": namespace, "name": vm_name} if namespace else None
        self.created = []
        self.updated = []
        self.deleted = []
        self.notes = []
        self.changes = []
        self.diff = []
        self.refused = []
        self.blocked = False
        self.restarted_at = None
        self.waited_on = None
        self.timings = {}  # phase mark -> MicroTime, for the job's phase Events (module_utils/latency.py)

    def mark(self, phase):
        """Note when a phase ended (the first time only): observed on the way, never with an extra request."""
        self.timings.setdefault(phase, micro_time(utc_now()))

    @property
    def changed(self):
        return bool(self.created or self.updated or self.deleted or self.restarted_at)

    def record(self, obj, action, changes=(), note=None):
        """Note what happened to one object (a manifest or a live object); `changes` are reconcile.Change for
        updates."""
        ref = _ref(obj)
        metadata = obj["metadata"]
        entry = {
            "kind": obj["kind"],
            "namespace": metadata.get("namespace"),
            "name": metadata["name"],
            "action": action,
            "fields": [reconcile.describe(change) for change in changes],
        }
        if note:
            entry["note"] = note
        self.changes.append(entry)
        if action == "created":
            self.created.append(ref)
        elif action == "updated":
            self.updated.append(ref + (f" ({note})" if note else ""))
        elif action == "deleted":
            self.deleted.append(ref)
        if action == "updated" and changes:
            self.diff.append(
                {
                    "before_header": ref,
                    "after_header": ref,
                    "before": dict(
                        (c.name, reconcile.redact(c.path, c.before))
                        for c in changes
                        if c.before is not reconcile.ABSENT
                    ),
                    "after": dict(
                        (c.name, reconcile.redact(c.path, c.after)) for c in changes if c.after is not reconcile.ABSENT
                    ),
                }
            )
        elif action in ("created", "deleted"):
            state = {"object": ref}
            self.diff.append(
                {
                    "before_header": ref,
                    "after_header": ref,
                    "before": state if action == "deleted" else {},
                    "after": state if action == "created" else {},
                }
            )

    @property
    def summary(self):
        """One line per object, then the restart notes: what an operator reads in the job log."""
        lines = []
        for entry in self.changes:
            line = "{} {} {}/{}".format(entry["action"], entry["kind"], entry["namespace"], entry["name"])
            details = entry["fields"] + ([entry["note"]] if entry.get("note") else [])
            if details:
                line += ": " + "; ".join(details)
            lines.append(line)
        lines += ["refused {}: {} ({})".format(r["field"], r["reason"], r["object"]) for r in self.refused]
        return lines + list(self.notes)

    def as_dict(self):
        return {
            "state": self.state,
            "message": self.message,
            "vm_reference": self.vm_reference,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "changes": self.changes,
            "summary": self.summary,
            "refused": self.refused,
            "notes": self.notes,
            "restarted_at": self.restarted_at,
            "waited_on": self.waited_on,
            "timings": self.timings,
        }


def storage_classes_of(client: Any) -> Optional[list[dict[str, Any]]]:
    """The cluster's StorageClasses, None when this job may not list them (the disks then name no class, CDI picks
    one)."""
    try:
        return client.list(STORAGE_CLASS)["items"]
    except Forbidden:
        return None


def storage_class_for(client: Any, explicit: Optional[str]) -> Optional[str]:
    """The explicit class, else the cluster default (upstream lost it to an env lookup returning '')."""
    if explicit:
        return explicit
    classes = storage_classes_of(client)
    return default_storage_class(classes) if classes is not None else None


# The kinds of an instance's objects, listed by its uid label before anything is written; and the order in which the
# ones
# the spec no longer wants are deleted (after the VM stopped referring to them). A VirtualMachine is never pruned here.
APPLY_KINDS = (SECRET, DATA_VOLUME, VIRTUAL_MACHINE, SERVICE)
PRUNE_ORDER = (SERVICE, DATA_VOLUME, SECRET)


def delete_exactly(client: Any, resource: Resource, obj: dict[str, Any]) -> bool:
    """Delete this very object (uid precondition: a namesake made since is not ours to delete); False when it was
    gone."""
    metadata = obj["metadata"]

    def attempt():
        try:
            client.delete(resource, metadata["name"], metadata.get("namespace"), preconditions={"uid": metadata["uid"]})
            return True
        except NotFound:
            return False
        except Conflict:
            current = client.get_or_none(resource, metadata["name"], metadata.get("namespace"))
            if current is None or current["metadata"].get("uid") != metadata["uid"]:
                return False
            raise

    return CONFLICT_RETRY.run(attempt, Conflict)


def _disk_fields(instance, objects):
    """{DataVolume name: {"source", "size"}}: the spec fields a refusal about each disk names."""
    fields = parameter_fields(instance.spec)
    disks = [manifest["metadata"]["name"] for resource, manifest in objects if resource is DATA_VOLUME]
    named = {}
    for index, name in enumerate(disks):
        if index == 0:
            named[name] = {"source": fields["image"], "size": fields["disk_size"]}
        else:
            extra = (
                fields["additional_disks"][index - 1]
                if index - 1 < len(fields["additional_disks"])
                else "spec.additionalDisks"
            )
            named[name] = {"source": extra, "size": extra + ".sizeGiB"}
    return named


def _refusal_message(outcome, problems):
    parts = ["{}: {}".format(r["field"], r["reason"]) for r in outcome.refused] + list(problems)
    if outcome.refused:
        return "these changes cannot be made in place, so nothing was changed: " + "; ".join(parts)
    return "nothing was changed: " + "; ".join(parts)


def ensure_present(
    client: Any,
    instance: ComputeInstance,
    params: dict[str, Any],
    namespace: str,
    storage_class: Optional[str] = None,
    check_mode: bool = False,
    wait: bool = True,
    timeout: float = 600,
    restart_on_spec_change: bool = True,
    tick: Optional[Callable[[], None]] = None,
) -> Outcome:
    """Make the instance's objects exactly what its spec asks for, restart when needed, and wait for Ready.

    Reads first: the instance's objects by its uid label, and the StorageClasses. Changes that cannot be made in place
    (a disk's image, a smaller disk, a disk that must grow on a class without volume expansion, another StorageClass)
    are refused before anything is written (RV refused). Then each object is created, or its owned fields are set
    exactly (reconcile.apply: one guarded JSON patch, removals included), a grown disk's claim is expanded, and the
    objects the spec no longer wants (found by the uid label) are deleted, each with a uid precondition.
    """
    names = instance.names
    labels = names.instance_labels(instance.name, instance.uid)
    outcome = Outcome(namespace, instance.name)
    selector = names.instance_label_selector(instance.uid)
    live = {}
    for resource in APPLY_KINDS:
        live[resource.kind] = dict(
            (obj["metadata"]["name"], obj) for obj in client.list(resource, namespace, label_selector=selector)["items"]
        )
    classes = storage_classes_of(client)
    default_class = storage_class or (default_storage_class(classes) if classes is not None else None)
    boot_key = names.boot_inputs_annotation
    objects = build_objects(instance.name, namespace, labels, params, default_class, boot_inputs_annotation=boot_key)
    vm_manifest = next(manifest for resource, manifest in objects if resource is VIRTUAL_MACHINE)
    disk_fields = _disk_fields(instance, objects)
    annotation = names.requested_storage_annotation

    def plan_disk(manifest, current):
        claim = None
        if needs_claim(manifest, current, annotation):
            claim = client.get_or_none(PERSISTENT_VOLUME_CLAIM, current["metadata"]["name"], namespace)
        return claim, check_disk(
            manifest, current, claim, storage_class, classes, disk_fields[manifest["metadata"]["name"]], annotation
        )

    plans = {}
    problems = []
    for resource, manifest in objects:
        current = live[resource.kind].get(manifest["metadata"]["name"]) if resource is DATA_VOLUME else None
        if current is not None:
            plans[manifest["metadata"]["name"]] = plan = plan_disk(manifest, current)
            outcome.refused += plan[1].refused
            problems += plan[1].problems
    if outcome.refused or problems:
        outcome.state, outcome.blocked = "Failed", True
        outcome.message = _refusal_message(outcome, problems)
        return outcome

    vm_existed = False
    template_was_changed = False
    # The cloud-init and SSH key Secrets are read when a VMI boots: new content reaches a running VM by a restart only.
    boot_secrets_changed = False
    vm = None  # the VirtualMachine as last written or read here: the wait starts from it
    for resource, manifest in objects:
        name = manifest["metadata"]["name"]
        current = live[resource.kind].get(name)
        if current is None:
            if check_mode:
                outcome.record(manifest, "created")
                continue
            try:
                created = retry_conflicts(client.create, resource, manifest, namespace)
            except AlreadyExists:
                # An object of that name without the instance's uid label: it is adopted (labelled) and set like ours.
                current = client.get(resource, name, namespace)
                if resource is DATA_VOLUME:
                    plans[name] = plan_disk(manifest, current)
                    if plans[name][1].refused or plans[name][1].problems:
                        outcome.refused += plans[name][1].refused
                        outcome.state, outcome.blocked = "Failed", True
                        outcome.message = _refusal_message(outcome, plans[name][1].problems)
                        return outcome
            else:
                outcome.record(manifest, "created")
                vm = created if resource is VIRTUAL_MACHINE else vm
                continue
        keys, template_keys = (), ()
        if resource is VIRTUAL_MACHINE:
            template_keys = (boot_key,)
        if resource is DATA_VOLUME:
            keys = (annotation,)
            claim, plan = plans[name]
            if plan.requested is not ABSENT:
                manifest["metadata"].setdefault("annotations", {})[annotation] = plan.requested
            if plan.claim_size is not None:
                # The claim grows first: a run that stops in between finds the annotation still short and grows it
                # again.
                claim_fields = [OwnedField(("spec", "resources", "requests", "storage"), plan.claim_size)]
                _grown, changes = reconcile.apply(
                    client, PERSISTENT_VOLUME_CLAIM, name, namespace, claim, claim_fields, check_mode
                )
                outcome.record(
                    dict(claim, kind=PERSISTENT_VOLUME_CLAIM.kind), "updated" if changes else "unchanged", changes
                )
        after, changes = reconcile.apply(
            client, resource, name, namespace, current, owned_fields(manifest, keys, template_keys), check_mode
        )
        outcome.record(
            dict(manifest, metadata=dict(manifest["metadata"], namespace=namespace)),
            "updated" if changes else "unchanged",
            changes,
        )
        if resource is VIRTUAL_MACHINE:
            vm_existed = True
            vm = after
            template_was_changed = template_changed(changes)
        elif resource is SECRET and changes:
            boot_secrets_changed = True

    wanted = set((resource.kind, manifest["metadata"]["name"]) for resource, manifest in objects)
    for resource in PRUNE_ORDER:
        for name, obj in sorted(live[resource.kind].items()):
            if (resource.kind, name) in wanted:
                continue
            obj = dict(obj, kind=resource.kind)
            if check_mode or delete_exactly(client, resource, obj):
                outcome.record(obj, "deleted", note="no longer in the spec")

    running = params.get("run_strategy", "Always") != "Halted"
    restart_at = restart_requested(instance)
    old_vmi = client.get_or_none(VIRTUAL_MACHINE_INSTANCE, instance.name, namespace) if vm_existed and running else None
    # Whether the running VMI carries the desired template is read off the VMI itself, not from what this run changed:
    # a run that stopped between the VM's patch and the restart leaves a VMI that the next run still restarts.
    stale = vmi_outdated(old_vmi, vm_manifest, (boot_key,)) if old_vmi is not None else []
    if old_vmi is not None and boot_secrets_changed and not stale:
        stale = ["its cloud-init/SSH key Secret"]
    if old_vmi is not None and (restart_at or (stale and restart_on_spec_change)):
        # Deleting the VMI is what a KubeVirt restart does; the VM controller starts a new one.
        if not check_mode:
            try:
                retry_conflicts(client.delete, VIRTUAL_MACHINE_INSTANCE, instance.name, namespace)
            except NotFound:
                pass
        outcome.restarted_at = restart_at or _utc_now()
        if stale and not restart_at:
            outcome.notes.append(
                "VirtualMachineInstance {}/{} ran an older template ({}): restarted to apply it".format(
                    namespace, instance.name, ", ".join(stale)
                )
            )
    elif stale:
        outcome.notes.append(
            "VirtualMachineInstance {}/{} runs an older template ({}): it applies at the next restart".format(
                namespace, instance.name, ", ".join(stale)
            )
        )
    elif template_was_changed and running and old_vmi is None and vm_existed:
        outcome.notes.append("VirtualMachine template changed: it applies when its VirtualMachineInstance starts")
    if restart_at and not outcome.restarted_at:
        # No running VMI to restart (the VM is new, its VMI is not up yet, or it is halted): its next start comes after
        # the request, which serves it. Reporting it served records lastRestartedAt, so no later run restarts for it.
        outcome.restarted_at = restart_at
        outcome.notes.append(f"restart requested at {restart_at}: served by the VM's next start (it was not running)")

    if not check_mode:
        outcome.mark("vm_applied")
    if check_mode or not wait:
        outcome.message = "objects %s" % ("would be applied" if check_mode else "applied; not waiting")
        return outcome
    old_uid = old_vmi["metadata"]["uid"] if old_vmi is not None and outcome.restarted_at else None
    check = (lambda vmi: vmi_outdated(vmi, vm_manifest, (boot_key,))) if restart_on_spec_change else None
    return _wait_vm(client, instance.name, namespace, running, old_uid, timeout, tick, outcome, vm, check)


def _utc_now():
    return rfc3339(utc_now())


# The VM's printableStatus while its DataVolumes are still being made (KubeVirt's VirtualMachinePrintableStatus), and
# vm_state's Unknown before KubeVirt wrote any status.
IMPORTING_PRINTABLE_STATUSES = ("Unknown", "Provisioning", "WaitingForVolumeBinding")

# Restarts of a VMI that came up from an older template (a KubeVirt controller whose cache lagged behind the VM's
# patch) before the job gives up.
STALE_RESTARTS = 3


def _wait_vm(client, name, namespace, running, old_vmi_uid, timeout, tick, outcome, known=None, outdated=None):
    """Wait (on a watch) for Ready, or for stopped when Halted; fail fast on terminal errors.

    `outdated(vmi)` lists the desired template fields a running VMI lacks: one that came up without them is restarted
    again (up to STALE_RESTARTS times), so Ready means the VMI runs the desired template.
    """
    seen = {"stale_restarts": 0, "old_uid": old_vmi_uid}

    def settled(vm):
        if vm is None:
            return False
        ready, printable, detail = vm_state(vm)
        seen.update(printable=printable, detail=detail)
        if printable in FAILED_PRINTABLE_STATUSES:
            return True
        if running and printable not in IMPORTING_PRINTABLE_STATUSES:
            # KubeVirt says Provisioning until every DataVolume is imported: the first other status ends the import.
            outcome.mark("datavolume_imported")
        if not running:
            return printable == "Stopped" or not ready
        if not ready:
            return False
        if seen["old_uid"] is None and outdated is None:
            return True
        # After a restart the VM's Ready condition may still be the old VMI's: the new VMI itself must be up.
        vmi = client.get_or_none(VIRTUAL_MACHINE_INSTANCE, name, namespace)
        if vmi is None or vmi["metadata"]["uid"] == seen["old_uid"] or not vmi_ready(vmi):
            return False
        stale = outdated(vmi) if outdated is not None else []
        if not stale:
            return True
        if seen["stale_restarts"] >= STALE_RESTARTS:
            seen["stale"] = stale
            return True
        seen["stale_restarts"] += 1
        seen["old_uid"] = vmi["metadata"]["uid"]
        outcome.notes.append(
            "VirtualMachineInstance {}/{} came up without {}: restarted again".format(namespace, name, ", ".join(stale))
        )
        try:
            client.delete(VIRTUAL_MACHINE_INSTANCE, name, namespace, preconditions={"uid": vmi["metadata"]["uid"]})
        except (NotFound, Conflict):
            pass  # gone already, or replaced meanwhile: the next look decides
        return False

    outcome.waited_on = "VirtualMachine {}/{} to become {}".format(namespace, name, "Ready" if running else "Stopped")
    try:
        vm = wait_for(client, VIRTUAL_MACHINE, name, namespace, settled, timeout, tick=tick, known=known)
    except WaitTimeout:
        outcome.state = "Failed"
        wanted = "Ready" if running else "Stopped"
        detail = ": " + seen["detail"] if seen.get("detail") else ""
        outcome.message = (f"VirtualMachine {namespace}/{name} not {wanted} after {int(timeout)}s "
                           f"(status {seen.get('printable', 'unknown')}{detail})")
        return outcome
    ready, printable, detail = vm_state(vm)
    if printable in FAILED_PRINTABLE_STATUSES:
        outcome.state = "Failed"
        outcome.message = f"VirtualMachine {namespace}/{name} failed: {printable}{': ' + detail if detail else ''}"
    elif seen.get("stale"):
        outcome.state = "Failed"
        outcome.message = (f"VirtualMachineInstance {namespace}/{name} keeps starting without "
                           f"{', '.join(seen['stale'])} after {STALE_RESTARTS} restarts")
    else:
        if running:  # a halted VM has no boot phase; the report says it is missing
            outcome.mark("vm_ready")
        outcome.message = "VirtualMachine {}/{} is {}".format(namespace, name, "Ready" if ready else printable)
    return outcome


def ensure_absent(client: Any, instance_name: str, uid: Optional[str], names: Names, namespace: str,
                  check_mode: bool = False, wait: bool = True, timeout: float = 600,
                  tick: Optional[Callable[[], None]] = None) -> Outcome:
    """Stop the VM, wait for its VMI to go, delete VM, Services, DataVolumes, Secrets; wait until gone."""
    outcome = Outcome(namespace, instance_name)
    if namespace is None:
        outcome.message = "no namespace known for this instance: nothing to delete"
        return outcome
    vm = client.get_or_none(VIRTUAL_MACHINE, instance_name, namespace)
    if vm is not None and (vm.get("spec") or {}).get("runStrategy") != "Halted":
        if not check_mode:
            retry_conflicts(
                client.patch, VIRTUAL_MACHINE, instance_name, {"spec": {"runStrategy": "Halted"}}, namespace
            )
        outcome.record(
            vm,
            "updated",
            [reconcile.Change(("spec", "runStrategy"), (vm.get("spec") or {}).get("runStrategy", ABSENT), "Halted")],
            note="stopped",
        )
        if wait and not check_mode:
            outcome.waited_on = f"VirtualMachineInstance {namespace}/{instance_name} to stop"
            try:
                wait_for(
                    client,
                    VIRTUAL_MACHINE_INSTANCE,
                    instance_name,
                    namespace,
                    lambda vmi: vmi is None,
                    timeout,
                    tick=tick,
                )
            except WaitTimeout:
                outcome.state = "Failed"
                outcome.message = (
                    f"VirtualMachineInstance {namespace}/{instance_name} still running after {int(timeout)}s"
                )
                return outcome
    selector = names.instance_label_selector(uid) if uid else None
    targets = []
    for resource in DELETE_ORDER:
        found = client.list(resource, namespace, label_selector=selector)["items"] if selector else []
        if (
            resource is VIRTUAL_MACHINE
            and vm is not None
            and all(o["metadata"]["name"] != instance_name for o in found)
        ):
            found.append(vm)
        for obj in found:
            targets.append((resource, obj))
            if not check_mode:
                try:
                    retry_conflicts(client.delete, resource, obj["metadata"]["name"], namespace)
                except NotFound:
                    continue
            outcome.record(dict(obj, kind=resource.kind), "deleted")
    if wait and not check_mode:
        deadline = time.monotonic() + timeout
        for resource, obj in targets:
            outcome.waited_on = "{} {}/{} to be gone".format(resource.kind, namespace, obj["metadata"]["name"])
            try:
                wait_for(
                    client,
                    resource,
                    obj["metadata"]["name"],
                    namespace,
                    lambda o: o is None,
                    max(1, deadline - time.monotonic()),
                    tick=tick,
                )
            except WaitTimeout:
                outcome.state = "Failed"
                outcome.message = (f"{resource.kind} {namespace}/{obj['metadata']['name']} still exists after "
                                   f"{int(timeout)}s (a finalizer may hold it)")
                return outcome
    if not check_mode:
        outcome.mark("vm_deleted")
    outcome.message = f"deleted {len(outcome.deleted)} object(s)" if outcome.deleted else "nothing left to delete"
    return outcome
