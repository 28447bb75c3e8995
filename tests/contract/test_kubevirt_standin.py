"""The KubeVirt + CDI stand-in (tests/stack/kubevirt) against the kubeapi stand-in: phases, run strategies, garbage collection,
failure injection, faults and scale. Skipped on a real cluster, which has real KubeVirt."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from kubernetes import client, config, watch

from tests.conftest import ROOT
from tests.stack.kubevirt import ANNOTATION_FAIL, ANNOTATION_READY_DELAY, KubeVirtController

READY_DELAY = 0.5
IMPORT_DELAY = 0.3
KV = ('kubevirt.io', 'v1')
CDI = ('cdi.kubevirt.io', 'v1beta1')
IMAGE = 'docker://quay.io/containerdisks/fedora:40'


@pytest.fixture(scope='module')
def controller(kube):
    """One controller for the module, on every namespace of the stand-in."""
    if kube.real:
        pytest.skip('a real cluster runs real KubeVirt')
    with KubeVirtController(kube.kubeconfig, ready_delay=READY_DELAY, import_delay=IMPORT_DELAY) as ctl:
        yield ctl


class Objects:
    """CustomObjectsApi calls for VMs, VMIs and DataVolumes in one namespace; reads return None on 404 or on an injected error."""

    def __init__(self, api_client, namespace):
        self.co = client.CustomObjectsApi(api_client)
        self.ns = namespace

    @staticmethod
    def api_of(plural):
        """(group, version) of a plural."""
        return CDI if plural == 'datavolumes' else KV

    def create(self, plural, body, retries=0):
        """POST, retried on injected errors when ``retries`` > 0 (409 AlreadyExists after a retried create counts as done)."""
        for attempt in range(retries + 1):
            try:
                return self.co.create_namespaced_custom_object(*self.api_of(plural), self.ns, plural, body)
            except client.ApiException as exc:
                if attempt == retries:
                    raise
                if exc.status == 409 and b'already exists' in str(exc.body).encode():
                    return None
                time.sleep(0.05)
        return None

    def get(self, plural, name):
        """GET, None when missing or failed."""
        try:
            return self.co.get_namespaced_custom_object(*self.api_of(plural), self.ns, plural, name)
        except client.ApiException:
            return None

    def exists(self, plural, name):
        """True/False, or None when the read failed (an injected fault)."""
        try:
            self.co.get_namespaced_custom_object(*self.api_of(plural), self.ns, plural, name)
            return True
        except client.ApiException as exc:
            return False if exc.status == 404 else None

    def patch(self, plural, name, body):
        """Merge patch."""
        return self.co.patch_namespaced_custom_object(*self.api_of(plural), self.ns, plural, name, body,
                                                      _content_type='application/merge-patch+json')

    def delete(self, plural, name):
        """DELETE."""
        return self.co.delete_namespaced_custom_object(*self.api_of(plural), self.ns, plural, name)

    def status(self, plural, name):
        """The status (empty dict when missing)."""
        return (self.get(plural, name) or {}).get('status') or {}


@pytest.fixture
def objs(controller, api_client, namespace):
    """Objects in a fresh namespace, with the controller running."""
    assert controller is not None
    return Objects(api_client, namespace)


# The timeouts below are what the stand-in needs on an idle machine; a busy CI machine gets three times as long (a wait
# that succeeds ends as soon as it does, so the slack costs nothing).
SLACK = 3


def wait_for(predicate, timeout, what, interval=0.02):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` x SLACK seconds."""
    deadline = time.monotonic() + timeout * SLACK
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f'timed out after {timeout * SLACK}s waiting for {what}')
        time.sleep(interval)


def dv_body(name, image=IMAGE, blank=False, owner=None):
    """A DataVolume importing ``image`` (or blank)."""
    source = {'blank': {}} if blank else {'registry': {'url': image}}
    body = {'apiVersion': 'cdi.kubevirt.io/v1beta1', 'kind': 'DataVolume', 'metadata': {'name': name},
            'spec': {'source': source, 'storage': {'resources': {'requests': {'storage': '1Gi'}}}}}
    if owner:
        body['metadata']['ownerReferences'] = [owner]
    return body


def vm_body(name, datavolumes=(), run_strategy='Always', annotations=None, templates=(), container_disk=None, running=None):
    """A VM whose disks are the named DataVolumes, dataVolumeTemplates entries ``(name, image)`` and/or a containerDisk."""
    volumes = [{'name': f'd{pos}', 'dataVolume': {'name': dv}} for pos, dv in enumerate(list(datavolumes) + [t[0] for t in templates])]
    if container_disk:
        volumes.append({'name': 'cd', 'containerDisk': {'image': container_disk}})
    spec = {'template': {'metadata': {'labels': {'kubevirt.io/domain': name, 'app': 'x'}},
                         'spec': {'domain': {'cpu': {'cores': 1}, 'memory': {'guest': '1Gi'}}, 'volumes': volumes}}}
    if running is None:
        spec['runStrategy'] = run_strategy
    else:
        spec['running'] = running
    if templates:
        spec['dataVolumeTemplates'] = [{'metadata': {'name': n}, 'spec': dv_body(n, image)['spec']} for n, image in templates]
    body = {'apiVersion': 'kubevirt.io/v1', 'kind': 'VirtualMachine', 'metadata': {'name': name}, 'spec': spec}
    if annotations:
        body['metadata']['annotations'] = annotations
    return body


def ready_condition(status):
    """The status of the Ready condition, or None."""
    return next((c.get('status') for c in status.get('conditions') or [] if c.get('type') == 'Ready'), None)


def vm_ready(objs, name):
    """The VM's status once it reports Ready, else None."""
    status = objs.status('virtualmachines', name)
    return status if ready_condition(status) == 'True' else None


def record(objs, plural, name, field, stop, seen):
    """Append every distinct value of status[field] seen on a watch of ``name`` (in a thread) until ``stop`` is set."""
    stream = watch.Watch()
    for event in stream.stream(objs.co.list_namespaced_custom_object, *objs.api_of(plural), objs.ns, plural,
                               field_selector=f'metadata.name={name}', timeout_seconds=10):
        value = (event['object'].get('status') or {}).get(field)
        if not seen or seen[-1] != value:
            seen.append(value)
        if stop.is_set():
            stream.stop()


# ------------------------------------------------------------------ DataVolumes
def test_datavolume_phases(objs):
    seen, stop = [], threading.Event()
    recorder = threading.Thread(target=record, args=(objs, 'datavolumes', 'root', 'phase', stop, seen))
    recorder.start()
    time.sleep(0.1)
    began = time.monotonic()
    objs.create('datavolumes', dv_body('root'))
    status = wait_for(lambda: (s := objs.status('datavolumes', 'root')).get('phase') == 'Succeeded' and s, 5, 'DataVolume Succeeded')
    took = time.monotonic() - began
    stop.set()
    objs.patch('datavolumes', 'root', {'metadata': {'labels': {'done': 'yes'}}})  # one more event, so the recorder notices stop
    recorder.join(10)
    assert took >= IMPORT_DELAY * 0.9
    assert status['progress'] == '100.0%' and status['claimName'] == 'root'
    assert {c['type']: c['status'] for c in status['conditions']} == {'Bound': 'True', 'Ready': 'True', 'Running': 'False'}
    phases = [p for p in seen if p is not None]
    order = ['Pending', 'ImportScheduled', 'ImportInProgress', 'Succeeded']
    assert phases == sorted(phases, key=order.index) and phases[-1] == 'Succeeded'
    assert 'ImportInProgress' in phases


def test_blank_datavolume_goes_straight_to_succeeded(objs):
    objs.create('datavolumes', dv_body('scratch', blank=True))
    status = wait_for(lambda: objs.status('datavolumes', 'scratch').get('phase'), 2, 'a phase')
    assert status == 'Succeeded'


def _claim(api_client, namespace, name):
    try:
        return client.CoreV1Api(api_client).read_namespaced_persistent_volume_claim(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_datavolume_gets_a_bound_claim_that_follows_an_expansion(objs, api_client):
    """CDI's PersistentVolumeClaim: same name, owned by the DataVolume, its size and class (else the default class), Bound;
    a larger request on a class that allows expansion ends with that capacity; the claim goes with its DataVolume."""
    storage = client.StorageV1Api(api_client)
    class_name = f'expand-{objs.ns}'
    storage.create_storage_class({'metadata': {'name': class_name}, 'provisioner': 'example.com/test', 'allowVolumeExpansion': True})
    try:
        body = dv_body('grow')
        body['spec']['storage']['storageClassName'] = class_name
        dv = objs.create('datavolumes', body)
        objs.create('datavolumes', dv_body('plain'))
        claim = wait_for(lambda: (c := _claim(api_client, objs.ns, 'grow')) is not None and c.status.phase == 'Bound' and c, 2, 'a Bound claim')
        assert claim.spec.resources.requests['storage'] == '1Gi' and claim.status.capacity['storage'] == '1Gi'
        assert claim.spec.storage_class_name == class_name
        assert [(r.kind, r.uid) for r in claim.metadata.owner_references] == [('DataVolume', dv['metadata']['uid'])]
        plain = wait_for(lambda: _claim(api_client, objs.ns, 'plain'), 2, 'the second claim')
        assert plain.spec.storage_class_name == 'standard', "the cluster's default StorageClass"
        client.CoreV1Api(api_client).patch_namespaced_persistent_volume_claim('grow', objs.ns, {'spec': {'resources': {'requests': {'storage': '3Gi'}}}})
        wait_for(lambda: (_claim(api_client, objs.ns, 'grow').status.capacity or {}).get('storage') == '3Gi', 2, 'the expanded capacity')
        objs.delete('datavolumes', 'grow')
        wait_for(lambda: _claim(api_client, objs.ns, 'grow') is None, 2, 'the claim gone with its DataVolume')
    finally:
        storage.delete_storage_class(class_name, _preload_content=False)


# ----------------------------------------------------------- run strategies
def test_vm_always_runs(objs):
    objs.create('datavolumes', dv_body('vm1-root-disk'))
    vm = objs.create('virtualmachines', vm_body('vm1', ['vm1-root-disk']))
    first = wait_for(lambda: objs.status('virtualmachines', 'vm1').get('printableStatus'), 2, 'a printableStatus')
    assert first in ('Provisioning', 'Starting')
    assert not objs.exists('virtualmachineinstances', 'vm1') or objs.status('datavolumes', 'vm1-root-disk').get('phase') == 'Succeeded'
    status = wait_for(lambda: vm_ready(objs, 'vm1'), IMPORT_DELAY + READY_DELAY + 2, 'VM Ready')
    assert status['printableStatus'] == 'Running' and status['ready'] is True and status['created'] is True
    vmi = objs.get('virtualmachineinstances', 'vm1')
    assert vmi['metadata']['labels'] == {'kubevirt.io/domain': 'vm1', 'app': 'x'}
    (owner,) = vmi['metadata']['ownerReferences']
    assert (owner['kind'], owner['name'], owner['uid'], owner['controller']) == ('VirtualMachine', 'vm1', vm['metadata']['uid'], True)
    assert vmi['spec'] == vm['spec']['template']['spec']
    vstatus = vmi['status']
    assert vstatus['phase'] == 'Running' and ready_condition(vstatus) == 'True' and vstatus['nodeName']
    (iface,) = vstatus['interfaces']
    assert iface['name'] == 'default' and iface['ipAddress'].startswith('10.0.')


def test_vm_running_true_with_datavolume_template(objs):
    objs.create('virtualmachines', vm_body('legacy', running=True, templates=[('legacy-root', IMAGE)]))
    wait_for(lambda: vm_ready(objs, 'legacy'), IMPORT_DELAY + READY_DELAY + 2, 'VM Ready')
    dv = objs.get('datavolumes', 'legacy-root')
    assert dv['status']['phase'] == 'Succeeded'
    assert dv['metadata']['ownerReferences'][0]['name'] == 'legacy'


def test_ready_takes_the_ready_delay(objs):
    objs.create('virtualmachines', vm_body('quick', container_disk='quay.io/containerdisks/fedora:40'))
    wait_for(lambda: objs.exists('virtualmachineinstances', 'quick'), 2, 'the VMI')
    began = time.monotonic()
    assert objs.status('virtualmachines', 'quick').get('printableStatus') in (None, 'Starting')
    wait_for(lambda: vm_ready(objs, 'quick'), READY_DELAY + 1.5, 'VM Ready')
    assert time.monotonic() - began >= READY_DELAY * 0.7


def test_halted_stops_and_always_starts_again(objs):
    objs.create('virtualmachines', vm_body('hal', container_disk='quay.io/containerdisks/fedora:40'))
    wait_for(lambda: vm_ready(objs, 'hal'), READY_DELAY + 2, 'VM Ready')
    objs.patch('virtualmachines', 'hal', {'spec': {'runStrategy': 'Halted'}})
    wait_for(lambda: objs.exists('virtualmachineinstances', 'hal') is False, 2, 'VMI gone')
    status = wait_for(lambda: (s := objs.status('virtualmachines', 'hal')).get('printableStatus') == 'Stopped' and s, 2, 'Stopped')
    assert status['ready'] is False and status['created'] is False
    (cond,) = [c for c in status['conditions'] if c['type'] == 'Ready']
    assert cond['status'] == 'False' and cond['reason'] == 'VMINotExists'
    objs.patch('virtualmachines', 'hal', {'spec': {'runStrategy': 'Always'}})
    wait_for(lambda: vm_ready(objs, 'hal'), READY_DELAY + 2, 'VM Ready again')


def test_halted_vm_never_starts(objs):
    objs.create('virtualmachines', vm_body('off', run_strategy='Halted', container_disk='quay.io/containerdisks/fedora:40'))
    wait_for(lambda: objs.status('virtualmachines', 'off'), 2, 'a status')
    time.sleep(READY_DELAY)
    status = objs.status('virtualmachines', 'off')
    assert status['printableStatus'] == 'Stopped' and objs.exists('virtualmachineinstances', 'off') is False


def test_restart_by_deleting_the_vmi(objs):
    objs.create('virtualmachines', vm_body('rs', container_disk='quay.io/containerdisks/fedora:40'))
    wait_for(lambda: vm_ready(objs, 'rs'), READY_DELAY + 2, 'VM Ready')
    old_uid = objs.get('virtualmachineinstances', 'rs')['metadata']['uid']
    objs.delete('virtualmachineinstances', 'rs')
    wait_for(lambda: ready_condition(objs.status('virtualmachines', 'rs')) == 'False', 2, 'VM not Ready after the VMI went')
    new = wait_for(lambda: (v := objs.get('virtualmachineinstances', 'rs')) and v['metadata']['uid'] != old_uid and v, 2, 'a new VMI')
    assert new['metadata']['uid'] != old_uid
    status = wait_for(lambda: vm_ready(objs, 'rs'), READY_DELAY + 2, 'VM Ready after the restart')
    assert status['printableStatus'] == 'Running'


def test_vm_delete_collects_vmi_and_owned_datavolumes(objs):
    objs.create('datavolumes', dv_body('shared'))
    objs.create('virtualmachines', vm_body('gone', ['shared'], templates=[('gone-root', IMAGE)]))
    wait_for(lambda: vm_ready(objs, 'gone'), IMPORT_DELAY + READY_DELAY + 2, 'VM Ready')
    objs.delete('virtualmachines', 'gone')
    wait_for(lambda: objs.exists('virtualmachineinstances', 'gone') is False, 2, 'VMI gone')
    wait_for(lambda: objs.exists('datavolumes', 'gone-root') is False, 2, 'owned DataVolume gone')
    time.sleep(0.2)
    assert objs.exists('datavolumes', 'shared') is True


VM_FINALIZER = 'kubevirt.io/virtualMachineControllerFinalize'
VMI_FINALIZER = 'foregroundDeleteVirtualMachine'


def test_kubevirt_finalizers_are_set(objs):
    """As KubeVirt does: the VM controller finalizes its VMs and the VMIs it creates; the VMI controller holds a VMI until its
    guest stopped (virtv1.VirtualMachineControllerFinalizer, virtv1.VirtualMachineInstanceFinalizer)."""
    objs.create('virtualmachines', vm_body('fin', templates=[('fin-root', IMAGE)]))
    wait_for(lambda: vm_ready(objs, 'fin'), IMPORT_DELAY + READY_DELAY + 2, 'VM Ready')
    assert VM_FINALIZER in objs.get('virtualmachines', 'fin')['metadata']['finalizers']
    assert set(objs.get('virtualmachineinstances', 'fin')['metadata']['finalizers']) == {VM_FINALIZER, VMI_FINALIZER}


def test_deleting_a_vm_completes_only_after_its_vmi_stopped(objs):
    objs.create('virtualmachines', vm_body('slowgo', templates=[('slowgo-root', IMAGE)]))
    wait_for(lambda: vm_ready(objs, 'slowgo'), IMPORT_DELAY + READY_DELAY + 2, 'VM Ready')
    vmi_uid = objs.get('virtualmachineinstances', 'slowgo')['metadata']['uid']
    gone = {}

    def watch_gone(plural):
        stream = watch.Watch()
        for event in stream.stream(objs.co.list_namespaced_custom_object, *objs.api_of(plural), objs.ns, plural,
                                   field_selector='metadata.name=slowgo', timeout_seconds=20):
            if event['type'] == 'DELETED':
                gone[plural] = time.monotonic()
                stream.stop()

    watchers = [threading.Thread(target=watch_gone, args=(plural,)) for plural in ('virtualmachines', 'virtualmachineinstances')]
    for thread in watchers:
        thread.start()
    time.sleep(0.2)
    objs.delete('virtualmachines', 'slowgo')
    # Not instant: right after the DELETE the VM is still there, terminating, and its VMI is stopping.
    vm = objs.get('virtualmachines', 'slowgo')
    assert vm is not None and vm['metadata'].get('deletionTimestamp'), 'a VM with KubeVirt finalizers is not deleted at once'
    stopping = wait_for(lambda: (v := objs.get('virtualmachineinstances', 'slowgo')) and v['metadata'].get('deletionTimestamp') and v,
                        2, 'the VMI terminating')
    assert stopping['metadata']['uid'] == vmi_uid
    for thread in watchers:
        thread.join(20 * SLACK)
    assert set(gone) == {'virtualmachines', 'virtualmachineinstances'}, gone
    assert gone['virtualmachineinstances'] <= gone['virtualmachines'], 'the VM went before its VMI had stopped'
    wait_for(lambda: objs.exists('datavolumes', 'slowgo-root') is False, 2, 'owned DataVolume gone')


def test_a_datavolume_of_a_missing_storage_class_stays_pending(objs, api_client):
    """CDI cannot make the PVC: the DataVolume stays Pending, saying why, and goes on once the class exists (CDI #1802, PR #2861)."""
    body = dv_body('nosc')
    body['spec']['storage']['storageClassName'] = 'missing-' + objs.ns
    objs.create('datavolumes', body)
    status = wait_for(lambda: (s := objs.status('datavolumes', 'nosc')).get('conditions') and s, 2, 'DataVolume conditions')
    time.sleep(IMPORT_DELAY * 3)
    status = objs.status('datavolumes', 'nosc')
    bound = next(c for c in status['conditions'] if c['type'] == 'Bound')
    assert status['phase'] == 'Pending' and bound['status'] == 'False'
    assert 'storageclass.storage.k8s.io "missing-%s" not found' % objs.ns in bound['message']
    storage = client.StorageV1Api(api_client)
    storage.create_storage_class({'apiVersion': 'storage.k8s.io/v1', 'kind': 'StorageClass',
                                  'metadata': {'name': 'missing-' + objs.ns}, 'provisioner': 'example.com/x'})
    try:
        wait_for(lambda: objs.status('datavolumes', 'nosc').get('phase') == 'Succeeded', IMPORT_DELAY + 3, 'DataVolume Succeeded')
    finally:
        # The stand-in answers this DELETE with a Status where kube-apiserver returns the StorageClass: do not decode it.
        storage.delete_storage_class('missing-' + objs.ns, _preload_content=False)


def test_no_default_storage_class_means_pending(kube, api_client, namespace):
    """Without a default StorageClass a DataVolume that names none stays Pending (ErrClaimNotValid), as with CDI."""
    if kube.real:
        pytest.skip('a real cluster runs real KubeVirt')
    from tests.stack.kubevirt import model

    classes = client.StorageV1Api(api_client).list_storage_class().items
    plain = [api_client.sanitize_for_serialization(c) for c in classes]
    undefaulted = [dict(c, metadata=dict(c['metadata'], annotations={})) for c in plain]
    problem = model.storage_class_problem(dv_body('x'), undefaulted)
    assert problem is not None and problem[0] == 'ErrClaimNotValid' and 'no storageClass' in problem[1]
    assert model.storage_class_problem(dv_body('x'), plain) is None, 'the stand-in made a default class at start'


def test_orphans_of_a_missing_vm_are_collected(objs):
    # Owned by a VM uid that never existed (the VM was deleted while nobody watched): the garbage collector removes them.
    owner = {'apiVersion': 'kubevirt.io/v1', 'kind': 'VirtualMachine', 'name': 'ghost', 'uid': '00000000-0000-0000-0000-000000000000',
             'controller': True}
    objs.create('datavolumes', dv_body('ghost-root', owner=owner))
    vmi = {'apiVersion': 'kubevirt.io/v1', 'kind': 'VirtualMachineInstance', 'metadata': {'name': 'ghost', 'ownerReferences': [owner]},
           'spec': {'domain': {}}}
    objs.create('virtualmachineinstances', vmi)
    wait_for(lambda: objs.exists('virtualmachineinstances', 'ghost') is False, 2, 'orphan VMI gone')
    wait_for(lambda: objs.exists('datavolumes', 'ghost-root') is False, 2, 'orphan DataVolume gone')


# -------------------------------------------------------- failure injection
def test_error_pull_image(objs):
    image = 'docker://quay.io/test/error-pull:1'
    objs.create('datavolumes', dv_body('bad-root', image))
    objs.create('virtualmachines', vm_body('bad', ['bad-root']))
    wait_for(lambda: objs.status('virtualmachines', 'bad').get('printableStatus') == 'ErrImagePull', IMPORT_DELAY + 2, 'ErrImagePull')
    time.sleep(IMPORT_DELAY + READY_DELAY + 0.3)
    status = objs.status('virtualmachines', 'bad')
    assert status['printableStatus'] == 'ErrImagePull' and status['ready'] is False and ready_condition(status) == 'False'
    dv = objs.status('datavolumes', 'bad-root')
    assert dv['phase'] == 'ImportInProgress'
    (running,) = [c for c in dv['conditions'] if c['type'] == 'Running']
    assert running['status'] == 'False' and 'pull' in running['message'] and image in running['message']
    assert objs.exists('virtualmachineinstances', 'bad') is False


def test_tag_named_error_pull_is_fine(objs):
    # Only the repository path counts, not the tag.
    objs.create('virtualmachines', vm_body('tagged', templates=[('tagged-root', 'docker://quay.io/x/fedora:error-pull')]))
    wait_for(lambda: vm_ready(objs, 'tagged'), IMPORT_DELAY + READY_DELAY + 2, 'VM Ready')


def test_never_ready_image(objs):
    objs.create('virtualmachines', vm_body('nr', templates=[('nr-root', 'docker://quay.io/x/never-ready:1')]))
    wait_for(lambda: objs.status('virtualmachineinstances', 'nr').get('phase') == 'Scheduled', IMPORT_DELAY + READY_DELAY + 2, 'Scheduled')
    time.sleep(READY_DELAY + 0.3)
    assert objs.status('virtualmachineinstances', 'nr')['phase'] == 'Scheduled'
    status = objs.status('virtualmachines', 'nr')
    assert status['printableStatus'] == 'Starting' and status['ready'] is False and status['created'] is True


def test_ready_delay_annotation(objs):
    objs.create('virtualmachines', vm_body('slow', container_disk='quay.io/containerdisks/fedora:40', annotations={ANNOTATION_READY_DELAY: '1.5'}))
    wait_for(lambda: objs.exists('virtualmachineinstances', 'slow'), 2, 'the VMI')
    began = time.monotonic()
    time.sleep(1.0)
    assert vm_ready(objs, 'slow') is None
    wait_for(lambda: vm_ready(objs, 'slow'), 2, 'VM Ready')
    assert time.monotonic() - began >= 1.3


@pytest.mark.parametrize('mode,printable,vmi_phase', [('ErrImagePull', 'ErrImagePull', 'Scheduling'),
                                                      ('CrashLoopBackOff', 'CrashLoopBackOff', 'Failed'),
                                                      ('never-ready', 'Starting', 'Scheduled')])
def test_fail_annotation(objs, mode, printable, vmi_phase):
    objs.create('virtualmachines', vm_body('f', container_disk='quay.io/containerdisks/fedora:40', annotations={ANNOTATION_FAIL: mode}))
    wait_for(lambda: objs.status('virtualmachines', 'f').get('printableStatus') == printable
             and objs.status('virtualmachineinstances', 'f').get('phase') == vmi_phase, READY_DELAY + 2, f'{printable} / {vmi_phase}')
    time.sleep(READY_DELAY + 0.2)
    status = objs.status('virtualmachines', 'f')
    assert status['printableStatus'] == printable and status['ready'] is False and ready_condition(status) == 'False'
    assert objs.status('virtualmachineinstances', 'f')['phase'] == vmi_phase


# ------------------------------------------------------------ faults, scale
def test_converges_under_faults(objs, instrumented_api):
    instrumented_api.faults.set(error_rate=0.2, error_codes=(500, 429, 409), cut_watches_after=1.0, seed=11)
    names = [f'fv{pos}' for pos in range(10)]
    for name in names:
        objs.create('virtualmachines', vm_body(name, templates=[(f'{name}-root', IMAGE)]), retries=20)
    ready = set()

    def all_ready():
        # Ready stays Ready here; remembering it keeps the test's own failed reads (20%) from hiding convergence.
        ready.update(n for n in names if n not in ready and vm_ready(objs, n))
        return len(ready) == len(names)

    try:
        wait_for(all_ready, 60, 'all 10 VMs Ready under faults', interval=0.2)
    finally:
        instrumented_api.faults.clear()
    for name in names:
        assert objs.status('virtualmachineinstances', name)['phase'] == 'Running'
        assert objs.status('datavolumes', f'{name}-root')['phase'] == 'Succeeded'


def test_create_answered_by_conflict_is_retried(objs, instrumented_api):
    """A 409 Conflict on the DataVolume's POST is not AlreadyExists: the VM must not wait for a disk nobody created."""
    instrumented_api.faults.set(error_rate=1.0, error_codes=(409,), methods=('POST',), path_regex=r'/datavolumes$')
    try:
        objs.create('virtualmachines', vm_body('cf', templates=[('cf-root', IMAGE)]))
        time.sleep(1.0)  # several reconciles, each answered 409
        assert objs.exists('datavolumes', 'cf-root') is False
    finally:
        instrumented_api.faults.clear()
    wait_for(lambda: vm_ready(objs, 'cf'), IMPORT_DELAY + READY_DELAY + 5, 'VM Ready once the POSTs stop conflicting')


def test_fifty_vms_converge(objs):
    names = [f's{pos:02d}' for pos in range(50)]
    for name in names:
        objs.create('virtualmachines', vm_body(name, templates=[(f'{name}-root', IMAGE)]))
    wait_for(lambda: sum(1 for n in names if vm_ready(objs, n)) == len(names), IMPORT_DELAY + READY_DELAY + 5, 'all 50 VMs Ready',
             interval=0.2)
    ips = {objs.status('virtualmachineinstances', n)['interfaces'][0]['ipAddress'] for n in names}
    assert len(ips) == len(names)


# ----------------------------------------------------------- lifecycle, CLI
def test_stop_joins_every_thread(kube):
    if kube.real:
        pytest.skip('a real cluster runs real KubeVirt')
    before = {t.name for t in threading.enumerate()}
    ctl = KubeVirtController(kube.kubeconfig, namespace='default').start()
    assert {'informer-virtualmachines', 'kubevirt-worker-0'} <= {t.name for t in threading.enumerate()}
    began = time.monotonic()
    ctl.stop()
    assert time.monotonic() - began < 10  # stop() cuts the watches instead of waiting for them to end (300 s)
    assert {t.name for t in threading.enumerate()} <= before


def test_cli_runs_until_sigterm(kube, tmp_path):
    if kube.real:
        pytest.skip('a real cluster runs real KubeVirt')
    with kube.new_api() as server:
        path = server.write_kubeconfig(tmp_path / 'kubeconfig')
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, '-m', 'tests.stack.kubevirt', '--kubeconfig', path, '--ready-delay', '0.2'],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert 'running' in proc.stdout.readline()
            api = config.new_client_from_config(path)
            objs = Objects(api, 'default')
            objs.create('virtualmachines', vm_body('cli', container_disk='quay.io/containerdisks/fedora:40'))
            wait_for(lambda: vm_ready(objs, 'cli'), 3, 'VM Ready through the CLI controller')
            api.close()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
