"""What the demo and the end-to-end tests check after the fact: jobs per instance, overlaps, objects left behind.

Overlap: a provision job of an instance wrote to the API after a deprovision job of the same instance had begun to
write (leases excluded: waiting for and taking the lock is how they avoid overlapping). Every write in the API
stand-in's write log names its job (the collection's User-Agent carries ``job/<id>``), and the controller stand-in
knows which template each job ran and for which instance.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from kubernetes import client

KUBEVIRT_KINDS = (('VirtualMachine', 'kubevirt.io', 'v1', 'virtualmachines'),
                  ('VirtualMachineInstance', 'kubevirt.io', 'v1', 'virtualmachineinstances'),
                  ('DataVolume', 'cdi.kubevirt.io', 'v1beta1', 'datavolumes'))


@dataclass
class JobRecord:
    """One controller job as the audit needs it."""

    id: int
    action: str          # 'provision' or 'deprovision'
    uid: str | None      # the instance's metadata.uid, from the job's extra vars
    status: str
    started: str | None
    finished: str | None


def instance_in(extra_vars: dict) -> dict:
    """The ComputeInstance a job was launched with, from any of the operator's envelopes ({} when none)."""
    for path in (('ansible_eda', 'event', 'payload'), ('osac_job_vars', 'resource'), ('compute_instance',)):
        node = extra_vars
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get('metadata'):
            return node
    return {}


def job_records(controller, provision_template: str, deprovision_template: str) -> list[JobRecord]:
    """Every provision and deprovision job of the controller stand-in, oldest first."""
    actions = {provision_template: 'provision', deprovision_template: 'deprovision'}
    records = []
    for job in controller.jobs():
        action = actions.get(job['name'])
        if action is None:
            continue
        extra_vars = json.loads(job.get('extra_vars') or '{}')
        uid = (instance_in(extra_vars).get('metadata') or {}).get('uid')
        records.append(JobRecord(job['id'], action, uid, job['status'], job.get('started'), job.get('finished')))
    return records


def job_writes(write_log: list[dict], job_id: int) -> list[dict]:
    """The successful non-lease writes a job made."""
    marker = f'job/{job_id}'
    return [w for w in write_log if marker in (w.get('user_agent') or '').split() and w['status'] < 300 and w['kind'] != 'leases']


def overlaps(write_log: list[dict], jobs: list[JobRecord]) -> list[str]:
    """One line per (provision, deprovision) pair of the same instance whose writes interleaved."""
    found = []
    by_uid: dict = {}
    for job in jobs:
        by_uid.setdefault(job.uid, []).append(job)
    for uid, group in by_uid.items():
        provisions = [j for j in group if j.action == 'provision']
        for deprovision in (j for j in group if j.action == 'deprovision'):
            deprovision_writes = job_writes(write_log, deprovision.id)
            if not deprovision_writes:
                continue
            first = min(w['seq'] for w in deprovision_writes)
            for provision in provisions:
                late = [w for w in job_writes(write_log, provision.id) if w['seq'] > first]
                if late:
                    found.append(f'instance {uid}: provision job {provision.id} wrote {late[0]["method"]} {late[0]["kind"]}/{late[0]["name"]} '
                                 f'(#{late[0]["seq"]}) after deprovision job {deprovision.id} began writing (#{first})')
    return found


def labelled_objects(api_client: client.ApiClient, group: str, uid: str | None = None) -> list[tuple[str, str]]:
    """(``Kind/namespace/name``, instance uid) of every Secret, Service and KubeVirt object labelled for an instance,
    in all namespaces; only those of instance ``uid`` when given."""
    core = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    label = f'{group}/computeinstance-uuid'
    selector = f'{label}={uid}' if uid else label
    found = []
    for kind, lister in (('Secret', core.list_secret_for_all_namespaces), ('Service', core.list_service_for_all_namespaces)):
        found += [(f'{kind}/{o.metadata.namespace}/{o.metadata.name}', o.metadata.labels[label]) for o in lister(label_selector=selector).items]
    for kind, api_group, version, plural in KUBEVIRT_KINDS:
        items = custom.list_cluster_custom_object(api_group, version, plural, label_selector=selector)['items']
        found += [(f'{kind}/{o["metadata"]["namespace"]}/{o["metadata"]["name"]}', o['metadata']['labels'][label]) for o in items]
    return found


def objects_left(api_client: client.ApiClient, group: str, uid: str, namespace: str) -> list[str]:
    """Everything of one instance still there: the instance, its lock Lease, every object labelled for it (all namespaces)."""
    custom = client.CustomObjectsApi(api_client)
    coordination = client.CoordinationV1Api(api_client)
    left = [f'ComputeInstance/{i["metadata"]["namespace"]}/{i["metadata"]["name"]}'
            for i in custom.list_namespaced_custom_object(group, 'v1alpha1', namespace, 'computeinstances')['items']
            if i['metadata'].get('uid') == uid]
    try:
        coordination.read_namespaced_lease(f'computeinstance-{uid}', namespace)
        left.append(f'Lease/{namespace}/computeinstance-{uid}')
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    left += [ref for ref, _uid in labelled_objects(api_client, group, uid)]
    return sorted(left)
