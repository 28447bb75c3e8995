"""An independent check of a ComputeInstance's live objects against its spec, for tests only.

What must exist is derived here, from ``spec.templateParameters`` and the typed spec fields, with the defaults and object
names of the contract (docs/contract.md, VM objects): nothing of the collection is imported (not its rendering in
plugins/module_utils/kubevirt.py, not its parameter parsing in computeinstance.py), so a mistake there cannot hide
itself here. The objects are read through the official client. ``differences`` returns one line per mismatch; the
reconciled-config-version annotation may name a spec's version only when it returns none.

Checked: the VirtualMachine's cores, memory (guest and request) and run strategy; its disks (the root DataVolume's image,
each disk's size as its PersistentVolumeClaim requests it, or its DataVolume when CDI made no claim, and blank extra
disks); its cloud-init (the Secret's user data: the given cloud_init verbatim, else a cloud-config authorizing exactly
the given key, or none); the SSH key (its Secret, and ``accessCredentials`` naming it, or neither); the LoadBalancer
Service's ports (exactly the exposed ones, or no Service); no other object labelled for the instance; and a running
VirtualMachineInstance that carries the same cores, memory and key (a change of the template was restarted into it), none
when the spec says Halted.
"""
from __future__ import annotations

import base64
import json
from decimal import Decimal

import yaml
from kubernetes import client

DEFAULT_CORES = 2
DEFAULT_MEMORY = '2Gi'
DEFAULT_DISK = '10Gi'
DEFAULT_IMAGE = 'quay.io/containerdisks/fedora:40'
DEFAULT_PORTS = '22/tcp'
_FACTORS = {'': 1, 'k': 10 ** 3, 'M': 10 ** 6, 'G': 10 ** 9, 'T': 10 ** 12, 'Ki': 2 ** 10, 'Mi': 2 ** 20, 'Gi': 2 ** 30, 'Ti': 2 ** 40}
KUBEVIRT = ('kubevirt.io', 'v1')
CDI = ('cdi.kubevirt.io', 'v1beta1')


def size_bytes(quantity) -> int | None:
    """Bytes of 10Gi, 512Mi, 1500M, 1073741824."""
    text = str(quantity or '')
    for suffix in sorted(_FACTORS, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            try:
                return int(Decimal(text[:-len(suffix)]) * _FACTORS[suffix])
            except ArithmeticError:
                return None
    try:
        return int(Decimal(text))
    except ArithmeticError:
        return None


def _unset(value) -> bool:
    return value is None or value == ''


def expected(spec: dict) -> dict:
    """What the spec asks for, read independently: typed fields win over templateParameters, then the defaults."""
    raw = spec.get('templateParameters')
    parameters = json.loads(raw) if isinstance(raw, str) and raw else (raw if isinstance(raw, dict) else {})
    cores = spec.get('cores') if spec.get('cores') is not None else parameters.get('cpu_cores')
    memory = f'{spec["memoryGiB"]}Gi' if spec.get('memoryGiB') is not None else parameters.get('memory')
    boot = spec.get('bootDisk') or {}
    disk = f'{boot["sizeGiB"]}Gi' if boot.get('sizeGiB') is not None else parameters.get('disk_size')
    image = (spec.get('image') or {}).get('sourceRef') or parameters.get('image') or DEFAULT_IMAGE
    key = spec.get('sshKey') if spec.get('sshKey') is not None else parameters.get('ssh_public_key')
    ports = parameters.get('exposed_ports')
    if _unset(ports):
        ports = DEFAULT_PORTS
    items = ports.split(',') if isinstance(ports, str) else list(ports)
    wanted_ports = set()
    for item in items:
        port, _sep, protocol = str(item).strip().partition('/')
        wanted_ports.add((int(port), (protocol or 'tcp').upper()))
    return {
        'cores': int(cores) if not _unset(cores) else DEFAULT_CORES,
        'memory': memory if not _unset(memory) else DEFAULT_MEMORY,
        'disk': disk if not _unset(disk) else DEFAULT_DISK,
        'image': image[len('docker://'):] if image.startswith('docker://') else image,
        'key': key.strip() if isinstance(key, str) and key.strip() else None,
        'cloud_init': parameters.get('cloud_init') or None,
        'user_data_secret': (spec.get('userDataSecretRef') or {}).get('name'),
        'ports': wanted_ports,
        'run_strategy': spec.get('runStrategy') or 'Always',
        'extra_disks': [f'{d["sizeGiB"]}Gi' for d in spec.get('additionalDisks') or []],
    }


class _Reader:
    def __init__(self, api_client, namespace):
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace

    def custom_object(self, api, plural, name):
        try:
            return self.custom.get_namespaced_custom_object(*api, self.namespace, plural, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def core_object(self, kind, name):
        read = {'Secret': self.core.read_namespaced_secret, 'Service': self.core.read_namespaced_service,
                'PersistentVolumeClaim': self.core.read_namespaced_persistent_volume_claim}[kind]
        try:
            return self.core.api_client.sanitize_for_serialization(read(name, self.namespace))
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def labelled(self, selector) -> set:
        found = {('Secret', s.metadata.name) for s in self.core.list_namespaced_secret(self.namespace, label_selector=selector).items}
        found |= {('Service', s.metadata.name) for s in self.core.list_namespaced_service(self.namespace, label_selector=selector).items}
        for kind, api, plural in (('VirtualMachine', KUBEVIRT, 'virtualmachines'), ('DataVolume', CDI, 'datavolumes')):
            items = self.custom.list_namespaced_custom_object(*api, self.namespace, plural, label_selector=selector)['items']
            found |= {(kind, o['metadata']['name']) for o in items}
        return found


def _decoded(secret: dict | None, key: str) -> str | None:
    value = ((secret or {}).get('data') or {}).get(key)
    return base64.b64decode(value).decode('utf-8') if value is not None else None


def _disk_size(reader: _Reader, dv_name: str, dv: dict) -> str | None:
    """The size a disk has: its claim's request (CDI's PVC, which an expansion grows), else its DataVolume's."""
    claim = reader.core_object('PersistentVolumeClaim', dv_name)
    if claim is not None:
        return ((claim.get('spec') or {}).get('resources') or {}).get('requests', {}).get('storage')
    storage = (dv.get('spec') or {}).get('storage') or (dv.get('spec') or {}).get('pvc') or {}
    return ((storage.get('resources') or {}).get('requests') or {}).get('storage')


def differences(api_client, instance: dict, namespace: str, group: str = 'cloudkit.openshift.io', spec: dict | None = None) -> list[str]:
    """Every way the live objects of ``instance`` (in ``namespace``) differ from ``spec`` (default: the instance's own)."""
    want = expected(instance['spec'] if spec is None else spec)
    name, uid = instance['metadata']['name'], instance['metadata']['uid']
    reader = _Reader(api_client, namespace)
    wrong = []
    vm = reader.custom_object(KUBEVIRT, 'virtualmachines', name)
    if vm is None:
        return [f'VirtualMachine {name} does not exist']
    vm_spec = vm.get('spec') or {}
    pod = ((vm_spec.get('template') or {}).get('spec')) or {}
    domain = pod.get('domain') or {}
    if (domain.get('cpu') or {}).get('cores') != want['cores']:
        wrong.append(f'VM has {(domain.get("cpu") or {}).get("cores")} cores, the spec {want["cores"]}')
    guest = (domain.get('memory') or {}).get('guest')
    request = ((domain.get('resources') or {}).get('requests') or {}).get('memory')
    if size_bytes(guest) != size_bytes(want['memory']) or size_bytes(request) != size_bytes(want['memory']):
        wrong.append(f'VM has memory {guest} (request {request}), the spec {want["memory"]}')
    if vm_spec.get('runStrategy') != want['run_strategy'] or 'running' in vm_spec:
        wrong.append(f'VM runStrategy {vm_spec.get("runStrategy")} (running {vm_spec.get("running")}), the spec {want["run_strategy"]}')

    expected_objects = {('VirtualMachine', name)}
    volumes = pod.get('volumes') or []
    disks = [v['dataVolume']['name'] for v in volumes if v.get('dataVolume')]
    if not disks:
        wrong.append('VM has no DataVolume disk')
    else:
        root, extra = disks[0], disks[1:]
        expected_objects |= {('DataVolume', d) for d in disks}
        if root != f'{name}-root-disk':
            wrong.append(f'VM boots from {root}, not {name}-root-disk')
        dv = reader.custom_object(CDI, 'datavolumes', root)
        if dv is None:
            wrong.append(f'DataVolume {root} does not exist')
        else:
            url = ((dv['spec'].get('source') or {}).get('registry') or {}).get('url')
            if url != f'docker://{want["image"]}':
                wrong.append(f'root disk imports {url}, the spec docker://{want["image"]}')
            size = _disk_size(reader, root, dv)
            if size_bytes(size) != size_bytes(want['disk']):
                wrong.append(f'root disk is {size}, the spec {want["disk"]}')
        if len(extra) != len(want['extra_disks']):
            wrong.append(f'VM has {len(extra)} additional disk(s), the spec {len(want["extra_disks"])}')
        for dv_name, wanted_size in zip(extra, want['extra_disks']):
            dv = reader.custom_object(CDI, 'datavolumes', dv_name)
            if dv is None or 'blank' not in ((dv.get('spec') or {}).get('source') or {}):
                wrong.append(f'additional disk {dv_name} is missing or not blank')
                continue
            size = _disk_size(reader, dv_name, dv)
            if size_bytes(size) != size_bytes(wanted_size):
                wrong.append(f'additional disk {dv_name} is {size}, the spec {wanted_size}')

    cloud_init = [v for v in volumes if v.get('cloudInitNoCloud')]
    secret_name = want['user_data_secret'] or f'{name}-cloud-init'
    if [((v['cloudInitNoCloud'].get('secretRef') or {}).get('name')) for v in cloud_init] != [secret_name]:
        wrong.append(f'VM cloud-init volumes {cloud_init}, the spec the Secret {secret_name}')
    if not want['user_data_secret']:
        expected_objects.add(('Secret', secret_name))
        user_data = _decoded(reader.core_object('Secret', secret_name), 'userData')
        if user_data is None:
            wrong.append(f'Secret {secret_name} (userData) does not exist')
        elif want['cloud_init']:
            if user_data != want['cloud_init']:
                wrong.append('cloud-init user data is not the spec cloud_init')
        else:
            config = yaml.safe_load(user_data) if user_data.startswith('#cloud-config') else None
            keys = (config or {}).get('ssh_authorized_keys') or []
            if not isinstance(config, dict) or config.get('ssh_pwauth') is not False:
                wrong.append('default cloud-init is not a cloud-config with ssh_pwauth: false')
            if keys != ([want['key']] if want['key'] else []):
                wrong.append(f'cloud-init authorizes {keys}, the spec {[want["key"]] if want["key"] else []}')

    credentials = pod.get('accessCredentials') or []
    key_secret = f'{name}-ssh-public-key'
    if want['key']:
        expected_objects.add(('Secret', key_secret))
        if _decoded(reader.core_object('Secret', key_secret), 'key') != want['key']:
            wrong.append(f'Secret {key_secret} does not hold the spec key')
        named = [((c.get('sshPublicKey') or {}).get('source') or {}).get('secret', {}).get('secretName') for c in credentials]
        if named != [key_secret]:
            wrong.append(f'VM accessCredentials name {named}, the spec [{key_secret}]')
    elif credentials:
        wrong.append(f'VM still has accessCredentials {credentials} and the spec has no key')

    if want['ports']:
        expected_objects.add(('Service', f'{name}-load-balancer'))
        service = reader.core_object('Service', f'{name}-load-balancer')
        if service is None:
            wrong.append(f'Service {name}-load-balancer does not exist, the spec exposes {sorted(want["ports"])}')
        else:
            ports = service['spec'].get('ports') or []
            exposed = {(p['port'], p.get('protocol', 'TCP')) for p in ports}
            if exposed != want['ports'] or len(ports) != len(want['ports']):
                wrong.append(f'Service exposes {sorted(exposed)}, the spec {sorted(want["ports"])}')
            if any(p.get('targetPort') != p['port'] for p in ports) or service['spec'].get('type') != 'LoadBalancer':
                wrong.append(f'Service is {service["spec"].get("type")} with ports {ports}')

    labelled = reader.labelled(f'{group}/computeinstance-uuid={uid}')
    if labelled != expected_objects:
        extra_objects = sorted(labelled - expected_objects)
        missing = sorted(expected_objects - labelled)
        wrong.append(f'objects labelled for the instance: extra {extra_objects}, missing {missing}')

    vmi = reader.custom_object(KUBEVIRT, 'virtualmachineinstances', name)
    if want['run_strategy'] == 'Halted':
        if vmi is not None:
            wrong.append('a VirtualMachineInstance runs and the spec says Halted')
    elif vmi is None:
        wrong.append('no VirtualMachineInstance runs')
    else:
        vmi_spec = vmi.get('spec') or {}
        vmi_domain = vmi_spec.get('domain') or {}
        if (vmi_domain.get('cpu') or {}).get('cores') != want['cores']:
            wrong.append(f'the running VMI has {(vmi_domain.get("cpu") or {}).get("cores")} cores: not restarted into the spec')
        if size_bytes((vmi_domain.get('memory') or {}).get('guest')) != size_bytes(want['memory']):
            wrong.append(f'the running VMI has memory {(vmi_domain.get("memory") or {}).get("guest")}: not restarted into the spec')
        if bool(vmi_spec.get('accessCredentials')) != bool(want['key']):
            wrong.append('the running VMI ' + ('lacks the key' if want['key'] else 'still authorizes a removed key') + ': not restarted into the spec')
    return wrong
