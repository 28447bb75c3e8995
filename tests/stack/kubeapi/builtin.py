"""Built-in kinds and the defaulting the real server applies to them."""
from __future__ import annotations

import base64
import datetime
import itertools
import re
from decimal import Decimal

from . import validation
from .errors import APIError, invalid
from .store import ResourceType

COMMON_FIELDS = frozenset({'metadata.name', 'metadata.namespace'})


def _json_type(value) -> str:
    """What Go's encoding/json calls a JSON value in its unmarshal errors."""
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, (int, float)):
        return 'number'
    return {list: 'array', dict: 'object'}.get(type(value), 'string')


def _string_maps(kind: str, obj: dict, fields) -> None:
    """map[string]string (and map[string][]byte) fields: anything but strings (or null) is a decode error, as kube-apiserver's
    JSON decoder says."""
    for field in fields:
        go_type = '[]uint8' if field in ('binaryData',) or (kind, field) == ('Secret', 'data') else 'string'
        value = obj.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise APIError(400, f'{kind} in version "v1" cannot be handled as a {kind}: json: cannot unmarshal {_json_type(value)} into Go '
                                f'struct field {kind}.{field} of type map[string]{go_type}', 'BadRequest')
        for val in value.values():
            if val is not None and not isinstance(val, str):
                raise APIError(400, f'{kind} in version "v1" cannot be handled as a {kind}: json: cannot unmarshal {_json_type(val)} into '
                                    f'Go struct field {kind}.{field} of type {go_type}', 'BadRequest')


def _config_map(obj: dict, _old: dict | None) -> None:
    _string_maps('ConfigMap', obj, ('data', 'binaryData'))
    size = sum(len(v.encode()) for v in (obj.get('data') or {}).values() if v)
    size += sum(len(base64.b64decode(v)) for v in (obj.get('binaryData') or {}).values() if v)
    if size > validation.MAX_SECRET_SIZE:
        raise invalid('ConfigMap', '', obj['metadata'].get('name') or '', [validation.too_long('[]', validation.MAX_SECRET_SIZE)])


def _secret(obj: dict, _old: dict | None) -> None:
    _string_maps('Secret', obj, ('data', 'stringData'))
    # The real server folds stringData into data (base64) and never stores stringData.
    string_data = obj.pop('stringData', None)
    if string_data:
        data = dict(obj.get('data') or {})
        for key, val in string_data.items():
            data[key] = base64.b64encode((val or '').encode()).decode()
        obj['data'] = data
    for key, val in (obj.get('data') or {}).items():
        try:
            base64.b64decode(val, validate=True)
        except (ValueError, TypeError) as exc:
            raise APIError(400, f'illegal base64 data for key "{key}"', 'BadRequest') from exc
    obj.setdefault('type', 'Opaque')
    if sum(len(base64.b64decode(v)) for v in (obj.get('data') or {}).values() if v) > validation.MAX_SECRET_SIZE:
        raise invalid('Secret', '', obj['metadata'].get('name') or '', [validation.too_long('data', validation.MAX_SECRET_SIZE)])


# metav1.MicroTime and metav1.Time as kube-apiserver decodes them (Go's time.Parse with these layouts) and stores them (UTC).
_MICRO_LAYOUT = '2006-01-02T15:04:05.000000Z07:00'
_TIME_LAYOUT = '2006-01-02T15:04:05Z07:00'
_LAYOUT_ELEMENTS = {  # layout element: (regex of what Go accepts for it)
    '2006': r'\d{4}', '01': r'\d{2}', '02': r'\d{2}', '15': r'\d{2}', '04': r'\d{2}', '05': r'\d{2}', '.000000': r'\.\d{6}',
    'Z07:00': r'Z|[+-]\d{2}:\d{2}'}


def _go_parse_time(kind: str, value, micro: bool) -> str:
    """The stored form of a MicroTime (``micro``) or Time field value, or the 400 kube-apiserver answers for it."""
    layout = _MICRO_LAYOUT if micro else _TIME_LAYOUT
    elements = ['2006', '-', '01', '-', '02', 'T', '15', ':', '04', ':', '05'] + (['.000000'] if micro else []) + ['Z07:00']
    prefix = f'{kind} in version "v1" cannot be handled as a {kind}: '
    if not isinstance(value, str):
        raise APIError(400, prefix + 'Time.UnmarshalJSON: input is not a JSON string', 'BadRequest')
    rest = value
    for element in elements:
        pattern = _LAYOUT_ELEMENTS.get(element)
        if not micro and element == 'Z07:00':
            # Go accepts a fractional second after the seconds even when the layout has none (Time only).
            frac = re.match(r'\.\d+', rest)
            rest = rest[frac.end():] if frac else rest
        match = re.match(pattern, rest) if pattern else (re.match(re.escape(element), rest))
        if not match:
            raise APIError(400, prefix + f'parsing time "{value}" as "{layout}": cannot parse "{rest}" as "{element}"', 'BadRequest')
        rest = rest[match.end():]
    if rest:
        raise APIError(400, prefix + f'parsing time "{value}": extra text: "{rest}"', 'BadRequest')
    try:
        parsed = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError as exc:
        raise APIError(400, prefix + f'parsing time "{value}": {exc}', 'BadRequest') from exc
    parsed = parsed.astimezone(datetime.timezone.utc)
    return parsed.strftime('%Y-%m-%dT%H:%M:%S.%fZ' if micro else '%Y-%m-%dT%H:%M:%SZ')


def _times(kind: str, obj: dict, paths: tuple, micro: bool) -> None:
    for path in paths:
        node = obj
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(path[-1]) is not None:
            node[path[-1]] = _go_parse_time(kind, node[path[-1]], micro)


def _lease(obj: dict, _old: dict | None) -> None:
    # acquireTime and renewTime are MicroTime: exactly six fractional digits, stored in UTC.
    _times('Lease', obj, (('spec', 'acquireTime'), ('spec', 'renewTime')), micro=True)


_EVENT_LENGTH_LIMITS = {'reportingInstance': 128, 'action': 128, 'reason': 128, 'message': 1024}


def _event(obj: dict, _old: dict | None) -> None:
    _times('Event', obj, (('eventTime',), ('series', 'lastObservedTime')), micro=True)
    _times('Event', obj, (('firstTimestamp',), ('lastTimestamp',)), micro=False)
    # kube-apiserver's legacyValidateEvent: the involved object's namespace must be the Event's (an Event without eventTime
    # may leave it empty in "default"); with eventTime it must be set (but in kube-system), and the reporting fields too.
    meta = obj.get('metadata') or {}
    namespace = meta.get('namespace') or ''
    involved = (obj.get('involvedObject') or {}).get('namespace') or ''
    causes = []
    if not obj.get('eventTime'):
        if (not involved and namespace not in ('', 'default')) or (involved and involved != namespace):
            causes.append({'reason': 'FieldValueInvalid', 'message': f'Invalid value: "{involved}": does not match event.namespace',
                           'field': 'involvedObject.namespace'})
    else:
        if not involved and namespace != 'kube-system':
            causes.append({'reason': 'FieldValueInvalid', 'message': f'Invalid value: "{involved}": does not match event.namespace',
                           'field': 'involvedObject.namespace'})
        for field in ('reportingComponent', 'reportingInstance', 'action', 'reason', 'message'):
            value = obj.get(field) or ''
            if not value and field != 'message':
                causes.append({'reason': 'FieldValueRequired', 'message': 'Required value', 'field': field})
            # pkg/apis/core/validation/events.go: Go's len(), so bytes; reportingComponent is checked as a qualified name.
            limit = _EVENT_LENGTH_LIMITS.get(field)
            if limit is not None and len(value.encode('utf-8')) > limit:
                causes.append({'reason': 'FieldValueInvalid', 'message': f'Invalid value: "": can have at most {limit} characters',
                               'field': field})
    if causes:
        raise invalid('Event', '', meta.get('name') or '', causes)


def _namespace(obj: dict, old: dict | None) -> None:
    obj.setdefault('spec', {}).setdefault('finalizers', ['kubernetes'])
    if old is None:
        obj['status'] = {'phase': 'Active'}
    labels = dict(obj['metadata'].get('labels') or {})
    labels['kubernetes.io/metadata.name'] = obj['metadata']['name']
    obj['metadata']['labels'] = labels


def _deployment(obj: dict, _old: dict | None) -> None:
    """apps/v1 validation of what a Deployment must have (ValidateDeploymentSpec), and the defaults that matter here."""
    spec = obj.setdefault('spec', {})
    selector = (spec.get('selector') or {}).get('matchLabels') or {}
    template = spec.get('template') or {}
    labels = (template.get('metadata') or {}).get('labels') or {}
    containers = (template.get('spec') or {}).get('containers') or []
    causes = []
    if not spec.get('selector'):
        causes.append({'reason': 'FieldValueRequired', 'message': 'Required value', 'field': 'spec.selector'})
    if any(labels.get(key) != value for key, value in selector.items()) or not selector:
        causes.append({'reason': 'FieldValueInvalid', 'message': 'Invalid value: map[string]string(nil): `selector` does not match template `labels`',
                       'field': 'spec.template.metadata.labels'})
    if not containers:
        causes.append({'reason': 'FieldValueRequired', 'message': 'Required value', 'field': 'spec.template.spec.containers'})
    for index, container in enumerate(containers):
        for key in ('name', 'image'):
            if not container.get(key):
                causes.append({'reason': 'FieldValueRequired', 'message': 'Required value', 'field': f'spec.template.spec.containers[{index}].{key}'})
    if causes:
        raise invalid('Deployment', 'apps', (obj.get('metadata') or {}).get('name') or '', causes)
    spec.setdefault('replicas', 1)
    spec.setdefault('revisionHistoryLimit', 10)
    spec.setdefault('progressDeadlineSeconds', 600)
    spec.setdefault('strategy', {'type': 'RollingUpdate', 'rollingUpdate': {'maxSurge': '25%', 'maxUnavailable': '25%'}})


def _storage_class(obj: dict, _old: dict | None) -> None:
    obj.setdefault('reclaimPolicy', 'Delete')
    obj.setdefault('volumeBindingMode', 'Immediate')


NODE_PORTS = (30000, 32767)
_QUANTITY = re.compile(r'^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$')
_FACTORS = {None: 1, 'k': 10 ** 3, 'M': 10 ** 6, 'G': 10 ** 9, 'T': 10 ** 12, 'P': 10 ** 15, 'E': 10 ** 18,
            'Ki': 2 ** 10, 'Mi': 2 ** 20, 'Gi': 2 ** 30, 'Ti': 2 ** 40, 'Pi': 2 ** 50, 'Ei': 2 ** 60}


def quantity_bytes(value) -> int | None:
    """Bytes of a resource quantity such as 10Gi (the forms this stand-in meets), None when it is not one."""
    match = _QUANTITY.match(str(value)) if value is not None else None
    return int(Decimal(match.group(1)) * _FACTORS[match.group(2)]) if match else None


def _node_ports(spec: dict, old: dict | None, allocate) -> None:
    """NodePort and LoadBalancer Services get a node port per port. As kube-apiserver's patchAllocatedValues does, an
    update that leaves one out keeps the old port's node port (matched by the port's name) unless another port uses it."""
    if spec.get('type') not in ('NodePort', 'LoadBalancer'):
        for port in spec.get('ports') or []:
            port.pop('nodePort', None)
        return
    old_spec = (old or {}).get('spec') or {}
    old_ports = old_spec.get('ports') or [] if old_spec.get('type') in ('NodePort', 'LoadBalancer') else []
    by_name = {p.get('name'): p.get('nodePort') for p in old_ports if p.get('nodePort')}
    used = {p['nodePort'] for p in spec.get('ports') or [] if p.get('nodePort')}
    for port in spec.get('ports') or []:
        if port.get('nodePort'):
            continue
        previous = by_name.get(port.get('name'))
        port['nodePort'] = previous if previous and previous not in used else allocate(used)
        used.add(port['nodePort'])


def _service_defaulter():
    ips = itertools.count(10)
    node_ports = itertools.count(0)

    def allocate(used: set) -> int:
        span = NODE_PORTS[1] - NODE_PORTS[0] + 1
        while True:
            port = NODE_PORTS[0] + next(node_ports) % span
            if port not in used:
                return port

    def _service(obj: dict, old: dict | None) -> None:
        spec = obj.setdefault('spec', {})
        spec.setdefault('type', 'ClusterIP')
        spec.setdefault('sessionAffinity', 'None')
        if spec.get('clusterIP') in (None, '') and spec['type'] != 'ExternalName':
            prev = (old or {}).get('spec', {}).get('clusterIP')
            if prev:
                spec['clusterIP'] = prev
            else:
                n = next(ips)
                spec['clusterIP'] = f'10.96.{n // 250}.{n % 250 + 1}'
            spec['clusterIPs'] = [spec['clusterIP']]
        spec.setdefault('ipFamilies', ['IPv4'])
        spec.setdefault('ipFamilyPolicy', 'SingleStack')
        for port in spec.get('ports') or []:
            port.setdefault('protocol', 'TCP')
            port.setdefault('targetPort', port.get('port'))
        _node_ports(spec, old, allocate)
        if old is None:
            obj['status'] = {'loadBalancer': {}}
    return _service


PVC_IMMUTABLE = 'Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims'


def _pvc_requests(spec: dict) -> dict:
    return ((spec or {}).get('resources') or {}).get('requests') or {}


def _pvc(obj: dict, old: dict | None) -> None:
    """Defaults and the update rules of PersistentVolumeClaims, as kube-apiserver 1.33 has them (RecoverVolumeExpansionFailure
    on): the spec is immutable except resources.requests of a bound claim, and the requested storage may go down only to
    recover from a failed expansion, staying above status.capacity."""
    spec = obj.setdefault('spec', {})
    spec.setdefault('volumeMode', 'Filesystem')
    name = obj['metadata']['name']
    if old is None:
        obj['status'] = {'phase': 'Pending'}
        return
    old_spec = old.get('spec') or {}
    if spec == old_spec:
        return

    def without_requests(value: dict) -> dict:
        value = dict(value)
        value['resources'] = {k: v for k, v in (value.get('resources') or {}).items() if k != 'requests'}
        return value
    bound = ((old.get('status') or {}).get('phase')) == 'Bound'
    if without_requests(spec) != without_requests(old_spec) or not bound:
        raise invalid('PersistentVolumeClaim', '', name, [{'reason': 'FieldValueForbidden', 'field': 'spec', 'message': PVC_IMMUTABLE}])
    before = quantity_bytes(_pvc_requests(old_spec).get('storage'))
    after = quantity_bytes(_pvc_requests(spec).get('storage'))
    capacity = quantity_bytes(((old.get('status') or {}).get('capacity') or {}).get('storage'))
    if before is not None and after is not None and after < before and (capacity is None or after <= capacity):
        raise invalid('PersistentVolumeClaim', '', name, [
            {'reason': 'FieldValueForbidden', 'field': 'spec.resources.requests.storage',
             'message': 'Forbidden: field can not be less than status.capacity'}])


def _crd(obj: dict, _old: dict | None) -> None:
    spec = obj.get('spec') or {}
    names = spec.get('names') or {}
    status = dict(obj.get('status') or {})
    status['acceptedNames'] = {k: v for k, v in names.items() if k in ('plural', 'singular', 'kind', 'listKind', 'shortNames', 'categories')}
    status['conditions'] = [
        {'type': 'NamesAccepted', 'status': 'True', 'reason': 'NoConflicts', 'message': 'no conflicts found',
         'lastTransitionTime': obj['metadata'].get('creationTimestamp')},
        {'type': 'Established', 'status': 'True', 'reason': 'InitialNamesAccepted', 'message': 'the initial names have been accepted',
         'lastTransitionTime': obj['metadata'].get('creationTimestamp')},
    ]
    status['storedVersions'] = [v['name'] for v in spec.get('versions') or [] if v.get('storage')]
    obj['status'] = status


# The stand-in's one bearer token is an administrator, as a system:masters user of kube-apiserver is; client-certificate
# users are who their certificate names.
ADMIN_USER_INFO = {'username': 'cloudkit-admin', 'groups': ['system:masters', 'system:authenticated']}
# No authorizer: every authenticated user may do everything (tests/stack/kubeapi/README.md, Known differences).
_NO_AUTHORIZER = 'the stand-in has no authorizer: every authenticated user is allowed'
_MASTERS_REASON = 'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"'


def _self_subject_access_review(body: dict, user: dict) -> dict:
    spec = body.get('spec') or {}
    if bool(spec.get('resourceAttributes')) == bool(spec.get('nonResourceAttributes')):
        raise APIError(422, 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: '
                            '"null": exactly one of nonResourceAttributes or resourceAttributes must be specified', 'Invalid',
                       {'group': 'authorization.k8s.io', 'kind': 'SelfSubjectAccessReview', 'causes': [{
                           'reason': 'FieldValueInvalid', 'field': 'spec.resourceAttributes',
                           'message': 'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified'}]})
    return {'kind': 'SelfSubjectAccessReview', 'apiVersion': 'authorization.k8s.io/v1', 'metadata': {'creationTimestamp': None},
            'spec': spec, 'status': {'allowed': True, 'reason': _MASTERS_REASON if 'system:masters' in user['groups'] else _NO_AUTHORIZER}}


def _self_subject_review(_body: dict, user: dict) -> dict:
    return {'kind': 'SelfSubjectReview', 'apiVersion': 'authentication.k8s.io/v1',
            'metadata': {'creationTimestamp': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')},
            'status': {'userInfo': {'username': user['username'], 'groups': list(user['groups'])}}}


def builtin_types() -> list[ResourceType]:
    """A fresh set of built-in types (each server gets its own Service IP allocator)."""
    return [
        ResourceType('', 'v1', 'Namespace', 'namespaces', 'namespace', False, ['ns'], status_subresource=True, strategic_merge=True,
                     field_selectors=COMMON_FIELDS | {'status.phase'}, normalize=_namespace, returns_deleted_object=True),
        ResourceType('', 'v1', 'Secret', 'secrets', 'secret', True, strategic_merge=True, field_selectors=COMMON_FIELDS | {'type'},
                     normalize=_secret),
        ResourceType('', 'v1', 'ConfigMap', 'configmaps', 'configmap', True, ['cm'], strategic_merge=True, field_selectors=COMMON_FIELDS,
                     normalize=_config_map),
        ResourceType('', 'v1', 'Service', 'services', 'service', True, ['svc'], ['all'], status_subresource=True, strategic_merge=True,
                     field_selectors=COMMON_FIELDS | {'spec.clusterIP', 'spec.type'}, normalize=_service_defaulter(),
                     returns_deleted_object=True),
        ResourceType('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', 'persistentvolumeclaim', True, ['pvc'], ['all'],
                     status_subresource=True, strategic_merge=True, field_selectors=COMMON_FIELDS, normalize=_pvc),
        ResourceType('', 'v1', 'Event', 'events', 'event', True, ['ev'], strategic_merge=True,
                     field_selectors=COMMON_FIELDS | {'involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name',
                                                      'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion',
                                                      'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'},
                     normalize=_event),
        ResourceType('coordination.k8s.io', 'v1', 'Lease', 'leases', 'lease', True, strategic_merge=True, field_selectors=COMMON_FIELDS,
                     normalize=_lease),
        ResourceType('apps', 'v1', 'Deployment', 'deployments', 'deployment', True, ['deploy'], ['all'], status_subresource=True,
                     has_generation=True, strategic_merge=True, field_selectors=COMMON_FIELDS, normalize=_deployment),
        ResourceType('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', 'storageclass', False, ['sc'], strategic_merge=True,
                     field_selectors=COMMON_FIELDS, normalize=_storage_class),
        ResourceType('authorization.k8s.io', 'v1', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', '', False,
                     review=_self_subject_access_review),
        ResourceType('authentication.k8s.io', 'v1', 'SelfSubjectReview', 'selfsubjectreviews', '', False, review=_self_subject_review),
        ResourceType('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', 'customresourcedefinition',
                     False, ['crd', 'crds'], ['api-extensions'], status_subresource=True, has_generation=True, field_selectors=COMMON_FIELDS,
                     normalize=_crd),
    ]
