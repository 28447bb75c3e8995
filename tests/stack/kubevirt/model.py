"""What KubeVirt and CDI would write, as pure functions of an object, its related objects and the time since it appeared."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

ANNOTATION_READY_DELAY = 'kubevirt.stand-in/ready-delay'
ANNOTATION_IMPORT_DELAY = 'kubevirt.stand-in/import-delay'
ANNOTATION_FAIL = 'kubevirt.stand-in/fail'
ERR_IMAGE_PULL = 'ErrImagePull'
CRASH_LOOP = 'CrashLoopBackOff'
NEVER_READY = 'never-ready'
FAIL_MODES = (ERR_IMAGE_PULL, CRASH_LOOP, NEVER_READY)
IMAGE_PULL_FAILED = 'ImagePullFailed'
NODE_NAME = 'node01'
RUNNING_STRATEGIES = ('Always', 'RerunOnFailure', 'Once')
# KubeVirt's finalizers: the VM controller's, on VMs and on the VMIs it creates (virtv1.VirtualMachineControllerFinalizer), and the
# VMI controller's, held until the guest has stopped and its pod is gone (virtv1.VirtualMachineInstanceFinalizer).
VM_CONTROLLER_FINALIZER = 'kubevirt.io/virtualMachineControllerFinalize'
VMI_FINALIZER = 'foregroundDeleteVirtualMachine'
DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class'

DV_PHASES = ('Pending', 'ImportScheduled', 'ImportInProgress', 'Succeeded')
VMI_PHASES = ('Pending', 'Scheduling', 'Scheduled', 'Running', 'Succeeded', 'Failed')


def now_rfc3339() -> str:
    """Condition timestamps, in the API's format."""
    return datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def annotation_seconds(obj: dict | None, key: str) -> float | None:
    """A non-negative float annotation (seconds), or None when absent or unparsable."""
    value = (((obj or {}).get('metadata') or {}).get('annotations') or {}).get(key)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def image_repository(url: str) -> str:
    """``docker://quay.io/x/y:tag`` -> ``quay.io/x/y`` (scheme, digest and tag removed)."""
    ref = url.split('://', 1)[-1].split('@', 1)[0]
    slash = ref.rfind('/')
    colon = ref.rfind(':')
    return ref[:colon] if colon > slash else ref


def image_failure(url: str | None) -> str | None:
    """The failure an image reference asks for: ErrImagePull for ``error-pull`` in its repository, never-ready for ``never-ready``."""
    if not url:
        return None
    repository = image_repository(url)
    if 'error-pull' in repository:
        return ERR_IMAGE_PULL
    if NEVER_READY in repository:
        return NEVER_READY
    return None


def dv_image(dv: dict | None) -> str | None:
    """The registry (or HTTP) URL a DataVolume imports from."""
    source = ((dv or {}).get('spec') or {}).get('source') or {}
    return (source.get('registry') or {}).get('url') or (source.get('http') or {}).get('url')


def merge_conditions(old: list | None, new: list[dict]) -> list[dict]:
    """``new`` conditions, keeping each one's lastTransitionTime while its status stays the same (so a no-change write is a no-op)."""
    before = {c.get('type'): c for c in old or [] if isinstance(c, dict)}
    now = now_rfc3339()
    merged = []
    for cond in new:
        prev = before.get(cond['type'])
        stamp = prev.get('lastTransitionTime') if prev and prev.get('status') == cond['status'] else None
        merged.append(dict(cond, lastProbeTime=None, lastTransitionTime=stamp or now))
    return merged


def _cond(kind: str, status: bool, reason: str = '', message: str = '') -> dict:
    return {'type': kind, 'status': 'True' if status else 'False', 'reason': reason, 'message': message}


def _timeline(steps, elapsed: float):
    """(last step reached, seconds until the next one or None); ``steps`` are (offset, value) sorted by offset."""
    current = steps[0][1]
    for offset, value in steps:
        if elapsed >= offset:
            current = value
        else:
            return current, offset - elapsed
    return current, None


def _not_before(phases: tuple, current: str | None, target: str) -> str:
    """Phases only move forward (a restarted controller must not undo what the API already shows)."""
    if current in phases and phases.index(current) > phases.index(target):
        return current
    return target


# ------------------------------------------------------------------ DataVolume
def storage_class_problem(dv: dict, classes: list[dict]) -> tuple[str, str] | None:
    """(reason, message) when CDI could not create the DataVolume's PVC for want of a StorageClass, else None.

    CDI resolves an empty ``storageClassName`` to the cluster's default class; with none, or a class that does not exist,
    the DataVolume stays Pending (CDI issues #1802, #2186; the event ``ErrClaimNotValid``, "... no storageClass to choose
    profile"), and it is reconciled again once such a class appears (CDI PR #2861).
    """
    spec = dv.get('spec') or {}
    storage = spec.get('storage') or spec.get('pvc') or {}
    wanted = storage.get('storageClassName')
    names = {c['metadata']['name'] for c in classes}
    if wanted:
        if wanted in names:
            return None
        return 'Pending', f'PVC {dv["metadata"]["name"]} Pending: storageclass.storage.k8s.io "{wanted}" not found'
    if any(((c['metadata'].get('annotations') or {}).get(DEFAULT_CLASS_ANNOTATION) or '').lower() == 'true' for c in classes):
        return None
    return 'ErrClaimNotValid', 'DataVolume.storage spec is missing accessMode and no storageClass to choose profile'


def datavolume_status(dv: dict, elapsed: float, import_delay: float, storage_problem: tuple[str, str] | None = None
                      ) -> tuple[dict, float | None]:
    """(status, seconds until the next change) of a DataVolume that appeared ``elapsed`` seconds ago."""
    name = dv['metadata']['name']
    old = dv.get('status') or {}
    if storage_problem is not None and (old.get('phase') in (None, 'Pending')):
        reason, message = storage_problem
        conditions = [_cond('Bound', False, reason, message), _cond('Ready', False, '', ''), _cond('Running', False, 'Pending', '')]
        return {'phase': 'Pending', 'progress': 'N/A', 'conditions': merge_conditions(old.get('conditions'), conditions)}, 1.0
    source = (dv.get('spec') or {}).get('source') or {}
    image = dv_image(dv)
    failing = image_failure(image) == ERR_IMAGE_PULL
    delay = annotation_seconds(dv, ANNOTATION_IMPORT_DELAY)
    delay = import_delay if delay is None else delay
    if 'blank' in source:
        phase, wait = 'Succeeded', None
    else:
        steps = [(0.0, 'Pending'), (delay * 0.25, 'ImportScheduled'), (delay * 0.5, 'ImportInProgress')]
        if not failing:
            steps.append((delay, 'Succeeded'))
        phase, wait = _timeline(steps, elapsed)
    phase = _not_before(DV_PHASES, old.get('phase'), phase)
    bound = phase != 'Pending'
    conditions = [
        _cond('Bound', bound, 'Bound' if bound else 'Pending', f'PVC {name} Bound' if bound else f'PVC {name} Pending'),
        _cond('Ready', phase == 'Succeeded', 'Ready' if phase == 'Succeeded' else '', ''),
    ]
    if failing and phase == 'ImportInProgress':
        conditions.append(_cond('Running', False, IMAGE_PULL_FAILED, f'Unable to pull image {image}: ErrImagePull: manifest unknown '
                                                                     '(kubevirt stand-in failure injection)'))
    elif phase == 'ImportInProgress':
        conditions.append(_cond('Running', True, 'Pod is running'))
    else:
        conditions.append(_cond('Running', False, 'Completed' if phase == 'Succeeded' else 'Pending'))
    progress = {'Succeeded': '100.0%', 'ImportInProgress': 'N/A' if failing else '50.0%'}.get(phase, 'N/A')
    status = {'phase': phase, 'progress': progress, 'claimName': name, 'conditions': merge_conditions(old.get('conditions'), conditions)}
    if failing and phase == 'ImportInProgress':
        status['restartCount'] = 1
    return status, wait


def dv_storage(dv: dict) -> dict:
    """spec.storage (or the older spec.pvc) of a DataVolume."""
    spec = dv.get('spec') or {}
    return spec.get('storage') or spec.get('pvc') or {}


def dv_storage_class(dv: dict) -> str | None:
    """The StorageClass a DataVolume names, if any."""
    return dv_storage(dv).get('storageClassName')


def pvc_for(dv: dict, class_name: str | None) -> dict:
    """The PersistentVolumeClaim CDI makes for a DataVolume: same name and namespace, owned by it, its size and class."""
    meta = dv['metadata']
    storage = dv_storage(dv)
    spec = {'accessModes': list(storage.get('accessModes') or ['ReadWriteOnce']),
            'resources': {'requests': dict((storage.get('resources') or {}).get('requests') or {})},
            'volumeMode': storage.get('volumeMode') or 'Filesystem'}
    if class_name:
        spec['storageClassName'] = class_name
    owner = {'apiVersion': 'cdi.kubevirt.io/v1beta1', 'kind': 'DataVolume', 'name': meta['name'], 'uid': meta['uid'],
             'controller': True, 'blockOwnerDeletion': True}
    return {'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim',
            'metadata': {'name': meta['name'], 'namespace': meta['namespace'], 'labels': {'app': 'containerized-data-importer'},
                         'ownerReferences': [owner]},
            'spec': spec}


def pvc_status(pvc: dict) -> dict:
    """A claim is Bound at once, and its capacity is what it requests (an expansion completes right away)."""
    spec = pvc.get('spec') or {}
    requested = ((spec.get('resources') or {}).get('requests') or {}).get('storage')
    status = {'phase': 'Bound', 'accessModes': list(spec.get('accessModes') or [])}
    if requested:
        status['capacity'] = {'storage': requested}
    return status


def dv_import_failed(dv: dict | None) -> bool:
    """Whether a DataVolume reports an image pull failure."""
    return any(c.get('reason') == IMAGE_PULL_FAILED for c in ((dv or {}).get('status') or {}).get('conditions') or [])


# -------------------------------------------------------------- VirtualMachine
def run_strategy(vm: dict) -> str:
    """spec.runStrategy, or the legacy spec.running mapped to Always/Halted."""
    spec = vm.get('spec') or {}
    if spec.get('runStrategy'):
        return spec['runStrategy']
    return 'Always' if spec.get('running') else 'Halted'


def referenced_datavolumes(vm_or_vmi: dict) -> list[str]:
    """DataVolume names used by a VM (template volumes and dataVolumeTemplates) or a VMI (its volumes)."""
    spec = vm_or_vmi.get('spec') or {}
    pod_spec = ((spec.get('template') or {}).get('spec') or {}) if 'template' in spec else spec
    names = [((v or {}).get('dataVolume') or {}).get('name') for v in pod_spec.get('volumes') or []]
    names += [((t or {}).get('metadata') or {}).get('name') for t in spec.get('dataVolumeTemplates') or []]
    return list(dict.fromkeys(n for n in names if n))


def container_disk_images(vm_or_vmi: dict) -> list[str]:
    """containerDisk images of a VM's template or a VMI."""
    spec = vm_or_vmi.get('spec') or {}
    pod_spec = ((spec.get('template') or {}).get('spec') or {}) if 'template' in spec else spec
    return [((v or {}).get('containerDisk') or {}).get('image') for v in pod_spec.get('volumes') or [] if (v or {}).get('containerDisk')]


def failure_mode(vm: dict | None, vmi: dict | None, datavolumes: list[dict | None]) -> str | None:
    """The injected failure: the ``kubevirt.stand-in/fail`` annotation (VMI, then VM), else one asked for by an image name."""
    for obj in (vmi, vm):
        value = (((obj or {}).get('metadata') or {}).get('annotations') or {}).get(ANNOTATION_FAIL)
        if value in FAIL_MODES:
            return value
    images = [dv_image(dv) for dv in datavolumes] + container_disk_images(vm or vmi or {})
    modes = {image_failure(image) for image in images}
    for mode in (ERR_IMAGE_PULL, NEVER_READY):
        if mode in modes:
            return mode
    return None


def vmi_body(vm: dict) -> dict:
    """The VirtualMachineInstance KubeVirt creates for a VM: same name, template labels/annotations, spec, owned by the VM."""
    meta = vm['metadata']
    template = (vm.get('spec') or {}).get('template') or {}
    tmeta = template.get('metadata') or {}
    body = {'apiVersion': 'kubevirt.io/v1', 'kind': 'VirtualMachineInstance',
            'metadata': {'name': meta['name'], 'namespace': meta['namespace'],
                         'ownerReferences': [owner_reference(vm)], 'finalizers': [VM_CONTROLLER_FINALIZER, VMI_FINALIZER]},
            'spec': copy.deepcopy(template.get('spec') or {})}
    for field in ('labels', 'annotations'):
        if tmeta.get(field):
            body['metadata'][field] = dict(tmeta[field])
    return body


def datavolume_from_template(vm: dict, template: dict) -> dict:
    """The DataVolume KubeVirt creates for one dataVolumeTemplates entry, owned by the VM."""
    tmeta = template.get('metadata') or {}
    body = {'apiVersion': 'cdi.kubevirt.io/v1beta1', 'kind': 'DataVolume',
            'metadata': {'name': tmeta['name'], 'namespace': vm['metadata']['namespace'], 'ownerReferences': [owner_reference(vm)]},
            'spec': copy.deepcopy(template.get('spec') or {})}
    for field in ('labels', 'annotations'):
        if tmeta.get(field):
            body['metadata'][field] = dict(tmeta[field])
    return body


def owner_reference(vm: dict) -> dict:
    """A controller owner reference to a VM."""
    return {'apiVersion': 'kubevirt.io/v1', 'kind': 'VirtualMachine', 'name': vm['metadata']['name'], 'uid': vm['metadata']['uid'],
            'controller': True, 'blockOwnerDeletion': True}


def vm_owners(obj: dict) -> list[dict]:
    """The owner references of ``obj`` that point at VirtualMachines."""
    return [r for r in (obj.get('metadata') or {}).get('ownerReferences') or []
            if r.get('kind') == 'VirtualMachine' and str(r.get('apiVersion', '')).startswith('kubevirt.io/')]


def vm_status(vm: dict, vmi: dict | None, volumes: str, failure: str | None) -> dict:
    """The status KubeVirt's VM controller writes; ``volumes`` is ``ready``, ``provisioning`` or ``failed`` (image pull)."""
    old = vm.get('status') or {}
    strategy = run_strategy(vm)
    vmi_phase = ((vmi or {}).get('status') or {}).get('phase')
    vmi_ready = vmi_phase == 'Running' and any(c.get('type') == 'Ready' and c.get('status') == 'True'
                                               for c in ((vmi or {}).get('status') or {}).get('conditions') or [])
    wants_running = strategy in RUNNING_STRATEGIES or (strategy == 'Manual' and vmi is not None)
    ready = False
    if (vm.get('metadata') or {}).get('deletionTimestamp'):
        printable = 'Terminating'
    elif not wants_running:
        printable = 'Stopping' if vmi is not None else 'Stopped'
    elif vmi is None and volumes == 'failed':
        printable = ERR_IMAGE_PULL
    elif vmi is None and volumes == 'provisioning':
        printable = 'Provisioning'
    elif vmi_ready:
        printable, ready = 'Running', True
    elif failure == CRASH_LOOP and vmi_phase == 'Failed':
        printable = CRASH_LOOP
    elif failure == ERR_IMAGE_PULL and vmi is not None:
        printable = ERR_IMAGE_PULL
    else:
        printable = 'Starting'
    if ready:
        ready_cond = _cond('Ready', True)
    elif vmi is None:
        ready_cond = _cond('Ready', False, 'VMINotExists', 'VMI does not exist')
    else:
        ready_cond = _cond('Ready', False, 'GuestNotRunning', 'Guest VM is not reported as running')
    status = {'printableStatus': printable, 'created': vmi is not None, 'ready': ready, 'runStrategy': strategy,
              'conditions': merge_conditions(old.get('conditions'), [ready_cond]),
              'desiredGeneration': vm['metadata'].get('generation', 1), 'observedGeneration': vm['metadata'].get('generation', 1)}
    if printable == CRASH_LOOP:
        status['startFailure'] = {'consecutiveFailCount': 1, 'retryAfterTimestamp': now_rfc3339()}
    return status


# ----------------------------------------------------- VirtualMachineInstance
def vmi_status(vmi: dict, elapsed: float, ready_delay: float, failure: str | None, ip_address: str) -> tuple[dict, float | None]:
    """(status, seconds until the next change) of a VMI that appeared ``elapsed`` seconds ago."""
    old = vmi.get('status') or {}
    steps = [(0.0, 'Scheduling')]
    if failure != ERR_IMAGE_PULL:
        steps.append((ready_delay * 0.5, 'Scheduled'))
        if failure == CRASH_LOOP:
            steps.append((ready_delay, 'Failed'))
        elif failure != NEVER_READY:
            steps.append((ready_delay, 'Running'))
    phase, wait = _timeline(steps, elapsed)
    phase = _not_before(VMI_PHASES, old.get('phase'), phase)
    running = phase == 'Running'
    stamps = list(old.get('phaseTransitionTimestamps') or [])
    if not stamps or stamps[-1].get('phase') != phase:
        stamps.append({'phase': phase, 'phaseTransitionTimestamp': now_rfc3339()})
    reason = {ERR_IMAGE_PULL: ERR_IMAGE_PULL, CRASH_LOOP: CRASH_LOOP}.get(failure, 'GuestNotRunning')
    conditions = [_cond('Ready', running, '' if running else reason, '' if running else f'VMI is in phase {phase}')]
    status = {'phase': phase, 'phaseTransitionTimestamps': stamps, 'conditions': merge_conditions(old.get('conditions'), conditions),
              'guestOSInfo': {}, 'qosClass': 'Burstable'}
    if phase != 'Scheduling':
        status['nodeName'] = NODE_NAME
    if running:
        status['interfaces'] = [{'name': 'default', 'interfaceName': 'eth0', 'ipAddress': ip_address, 'ipAddresses': [ip_address],
                                 'infoSource': 'domain, guest-agent'}]
        status['migrationMethod'] = 'BlockMigration'
    return status, wait
