"""Contract tests: what the Kubernetes API server does that this project depends on (CRUD, patches, status, finalizers,
selectors, lists, discovery, schema validation, auth). Only the official client and plain HTTP are used, so the suite
runs unchanged against a real cluster (CLOUDKIT_TEST_KUBECONFIG)."""
from __future__ import annotations

import base64
import json
import re
import ssl
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

from tests.contract.helpers import CI, CI_PLURAL, GROUP, VERSION, ci_body, error_body, raw

RFC3339 = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
CRD_DIR = Path(__file__).resolve().parents[1] / 'stack' / 'crds'
STALE = ('the object has been modified; please apply your changes to the latest version and try again')


def _status_of(call) -> tuple[int, dict]:
    with pytest.raises(client.ApiException) as info:
        call()
    return info.value.status, error_body(info.value)


# ----------------------------------------------------------------------------- create / get / metadata
def test_create_returns_201_with_server_metadata(api_client, namespace):
    core = client.CoreV1Api(api_client)
    made, code, _headers = core.create_namespaced_config_map_with_http_info(namespace, {'metadata': {'name': 'cm1'}, 'data': {'a': '1'}})
    assert code == 201
    meta = made.metadata
    assert uuid.UUID(meta.uid).version == 4
    assert meta.namespace == namespace
    assert int(meta.resource_version) > 0
    status, body = raw(api_client, 'GET', f'/api/v1/namespaces/{namespace}/configmaps/cm1')
    assert status == 200
    assert RFC3339.match(body['metadata']['creationTimestamp'])
    assert body['kind'] == 'ConfigMap' and body['apiVersion'] == 'v1'
    assert body['metadata']['resourceVersion'] == meta.resource_version


def test_custom_resource_generation_starts_at_one_and_rv_increases(api_client, namespace):
    cis = CI(api_client, namespace)
    first = cis.create('one')
    second = cis.create('two')
    assert first['metadata']['generation'] == 1
    assert int(second['metadata']['resourceVersion']) > int(first['metadata']['resourceVersion'])


def test_generate_name(api_client, namespace):
    core = client.CoreV1Api(api_client)
    made = core.create_namespaced_secret(namespace, {'metadata': {'generateName': 'gen-'}, 'stringData': {'k': 'v'}})
    assert made.metadata.name.startswith('gen-') and len(made.metadata.name) == len('gen-') + 5


def test_namespace_defaults_from_url_and_must_exist(api_client, namespace):
    cis = CI(api_client, namespace)
    assert cis.create('ns-default')['metadata']['namespace'] == namespace
    missing = f'missing-{uuid.uuid4().hex[:8]}'
    status, body = _status_of(lambda: client.CoreV1Api(api_client).create_namespaced_config_map(missing, {'metadata': {'name': 'x'}}))
    assert status == 404
    assert body['reason'] == 'NotFound'
    assert body['message'] == f'namespaces "{missing}" not found'


def test_create_twice_is_409_already_exists(api_client, namespace):
    cis = CI(api_client, namespace)
    cis.create('dup')
    status, body = _status_of(lambda: cis.create('dup'))
    assert status == 409
    assert body['reason'] == 'AlreadyExists'
    assert body['message'] == f'{CI_PLURAL}.{GROUP} "dup" already exists'


def test_get_missing_is_404_with_real_message(api_client, namespace):
    status, body = _status_of(lambda: client.CoreV1Api(api_client).read_namespaced_secret('nope', namespace))
    assert status == 404
    assert body['kind'] == 'Status' and body['status'] == 'Failure' and body['reason'] == 'NotFound'
    assert body['message'] == 'secrets "nope" not found'
    assert body['details'] == {'name': 'nope', 'kind': 'secrets'}
    status, body = _status_of(lambda: CI(api_client, namespace).get('nope'))
    assert body['message'] == f'{CI_PLURAL}.{GROUP} "nope" not found'


def test_secret_string_data_becomes_base64_data(api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_secret(namespace, {'metadata': {'name': 's'}, 'stringData': {'userData': '#cloud-config'}})
    status, body = raw(api_client, 'GET', f'/api/v1/namespaces/{namespace}/secrets/s')
    assert status == 200
    assert body['data'] == {'userData': 'I2Nsb3VkLWNvbmZpZw=='}
    assert 'stringData' not in body
    assert body['type'] == 'Opaque'
    # Their values are strings: a number is a decode error (400), not converted.
    for kind, path, field, go_type in (('Secret', 'secrets', 'stringData', 'string'), ('Secret', 'secrets', 'data', '[]uint8'),
                                       ('ConfigMap', 'configmaps', 'data', 'string')):
        status, body = raw(api_client, 'POST', f'/api/v1/namespaces/{namespace}/{path}', body={'metadata': {'name': 'n'}, field: {'k': 1}})
        assert status == 400 and body['reason'] == 'BadRequest'
        assert body['message'] == (f'{kind} in version "v1" cannot be handled as a {kind}: json: cannot unmarshal number into Go struct '
                                   f'field {kind}.{field} of type {go_type}')


# ----------------------------------------------------------------------------- replace
def test_put_with_stale_resource_version_is_409_conflict(api_client, namespace):
    cis = CI(api_client, namespace)
    created = cis.create('put')
    fresh = cis.patch('put', {'metadata': {'labels': {'a': 'b'}}})
    stale = dict(created, spec={'templateID': 'other'})
    status, body = _status_of(lambda: cis.replace(stale))
    assert status == 409
    assert body['reason'] == 'Conflict'
    assert body['message'] == f'Operation cannot be fulfilled on {CI_PLURAL}.{GROUP} "put": {STALE}'
    assert body['details']['name'] == 'put' and body['details']['kind'] == CI_PLURAL
    good = dict(fresh, spec={'templateID': 'other'})
    assert cis.replace(good)['spec']['templateID'] == 'other'


def test_put_without_resource_version_is_unconditional(api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {'metadata': {'name': 'u'}, 'data': {'a': '1'}})
    core.patch_namespaced_config_map('u', namespace, {'data': {'a': '2'}})
    replaced = core.replace_namespaced_config_map('u', namespace, {'metadata': {'name': 'u'}, 'data': {'a': '3'}})
    assert replaced.data == {'a': '3'}


def test_noop_update_keeps_resource_version(api_client, namespace):
    cis = CI(api_client, namespace)
    created = cis.create('noop')
    again = cis.replace(created)
    assert again['metadata']['resourceVersion'] == created['metadata']['resourceVersion']
    assert again['metadata']['generation'] == 1


# ----------------------------------------------------------------------------- patches
def test_merge_patch(api_client, namespace):
    cis = CI(api_client, namespace)
    cis.create('mp', templateParameters='{}')
    out = cis.patch('mp', {'metadata': {'annotations': {'x': 'y'}}, 'spec': {'templateParameters': None, 'cores': 2}})
    assert out['metadata']['annotations'] == {'x': 'y'}
    assert 'templateParameters' not in out['spec'] and out['spec']['cores'] == 2


def test_json_patch_test_op_success_and_failure(api_client, namespace):
    cis = CI(api_client, namespace)
    created = cis.create('jp')
    rv = created['metadata']['resourceVersion']
    ops = [{'op': 'test', 'path': '/metadata/resourceVersion', 'value': rv},
           {'op': 'add', 'path': '/metadata/finalizers', 'value': [f'{GROUP}/computeinstance-aap']}]
    out = cis.patch('jp', ops, 'application/json-patch+json')
    assert out['metadata']['finalizers'] == [f'{GROUP}/computeinstance-aap']
    # The same test against the now stale resourceVersion: kube-apiserver answers 422 Invalid, generic message.
    status, body = _status_of(lambda: cis.patch('jp', ops, 'application/json-patch+json'))
    assert status == 422
    assert body['reason'] == 'Invalid'
    assert body['message'] == 'the server rejected our request due to an error in our request'
    assert cis.get('jp')['metadata']['resourceVersion'] == out['metadata']['resourceVersion']
    cis.patch('jp', [{'op': 'remove', 'path': '/metadata/finalizers'}], 'application/json-patch+json')


def test_patch_carrying_a_stale_resource_version_is_409(api_client, namespace):
    cis = CI(api_client, namespace)
    created = cis.create('rvp')
    cis.patch('rvp', {'spec': {'cores': 1}})
    status, body = _status_of(lambda: cis.patch('rvp', {'metadata': {'resourceVersion': created['metadata']['resourceVersion']},
                                                        'spec': {'cores': 4}}))
    assert status == 409 and body['reason'] == 'Conflict'
    assert cis.get('rvp')['spec']['cores'] == 1


def test_strategic_merge_on_builtin_merges_lists_by_key(api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service(namespace, {'metadata': {'name': 'svc'}, 'spec': {
        'selector': {'app': 'a'}, 'ports': [{'name': 'ssh', 'port': 22, 'targetPort': 22}, {'name': 'http', 'port': 80, 'targetPort': 8080}]}})
    patch = {'spec': {'ports': [{'port': 80, 'name': 'web'}, {'port': 443, 'name': 'https', 'targetPort': 8443},
                                {'port': 22, '$patch': 'delete'}]}}
    status, body = raw(api_client, 'PATCH', f'/api/v1/namespaces/{namespace}/services/svc', body=patch,
                       content_type='application/strategic-merge-patch+json')
    assert status == 200
    ports = {p['port']: p for p in body['spec']['ports']}
    assert sorted(ports) == [80, 443]
    assert ports[80]['name'] == 'web' and ports[80]['targetPort'] == 8080
    assert body['spec']['selector'] == {'app': 'a'}


def test_strategic_merge_on_custom_resource_is_415(api_client, namespace):
    CI(api_client, namespace).create('smp')
    status, body = raw(api_client, 'PATCH', f'/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{CI_PLURAL}/smp',
                       body={'spec': {'cores': 2}}, content_type='application/strategic-merge-patch+json')
    assert status == 415
    assert body['reason'] == 'UnsupportedMediaType'


def test_server_side_apply(api_client, namespace):
    path = f'/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{CI_PLURAL}/ssa'
    doc = ci_body('ssa', cores=2, templateParameters='{}')
    status, body = raw(api_client, 'PATCH', path, body=doc, content_type='application/apply-patch+yaml')
    assert status == 422 and body['reason'] == 'Invalid' and 'fieldManager' in body['message']
    status, created = raw(api_client, 'PATCH', path, {'fieldManager': 'one'}, doc, 'application/apply-patch+yaml')
    assert status == 201 and created['spec']['cores'] == 2
    # Same manager drops a field it no longer applies; another manager's different value conflicts unless forced.
    doc2 = ci_body('ssa', cores=3)
    status, updated = raw(api_client, 'PATCH', path, {'fieldManager': 'one'}, doc2, 'application/apply-patch+yaml')
    assert status == 200 and updated['spec'] == {'templateID': doc2['spec']['templateID'], 'cores': 3}
    assert updated['metadata']['generation'] == 2
    doc3 = ci_body('ssa', cores=8)
    status, body = raw(api_client, 'PATCH', path, {'fieldManager': 'two'}, doc3, 'application/apply-patch+yaml')
    assert status == 409 and body['reason'] == 'Conflict' and 'conflict with "one"' in body['message']
    status, forced = raw(api_client, 'PATCH', path, {'fieldManager': 'two', 'force': 'true'}, doc3, 'application/apply-patch+yaml')
    assert status == 200 and forced['spec']['cores'] == 8


# ----------------------------------------------------------------------------- delete
def test_delete_answers_and_object_is_gone(api_client, namespace):
    cis = CI(api_client, namespace)
    cis.create('del')
    out = cis.delete('del')
    assert out['kind'] == 'Status' and out['status'] == 'Success' and out['details']['name'] == 'del'
    assert _status_of(lambda: cis.get('del'))[0] == 404
    assert _status_of(lambda: cis.delete('del'))[0] == 404
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service(namespace, {'metadata': {'name': 'svc'}, 'spec': {'ports': [{'port': 80}]}})
    status, body = raw(api_client, 'DELETE', f'/api/v1/namespaces/{namespace}/services/svc')
    assert status == 200 and body['kind'] == 'Service'


# ----------------------------------------------------------------------------- status subresource & generation
def test_status_subresource_is_kept_apart(api_client, namespace):
    cis = CI(api_client, namespace)
    obj = ci_body('st')
    obj['status'] = {'phase': 'Ready'}
    created = cis.co.create_namespaced_custom_object(GROUP, VERSION, namespace, CI_PLURAL, obj)
    assert 'status' not in created or 'phase' not in created['status']  # status is ignored on create
    with_status = cis.patch_status('st', {'status': {'phase': 'Progressing', 'desiredConfigVersion': 'abc'}})
    assert with_status['status']['phase'] == 'Progressing'
    assert with_status['metadata']['generation'] == 1  # status writes never bump generation
    # Main resource writes ignore status.
    main = cis.patch('st', {'spec': {'cores': 2}, 'status': {'phase': 'Failed'}})
    assert main['status']['phase'] == 'Progressing' and main['spec']['cores'] == 2
    assert main['metadata']['generation'] == 2
    # Status writes ignore everything but status.
    body = dict(main, spec={'templateID': 'changed'}, status={'phase': 'Ready'})
    body['metadata'] = dict(main['metadata'], labels={'ignored': 'yes'})
    out = cis.replace_status(body)
    assert out['status']['phase'] == 'Ready'
    assert out['spec']['templateID'] == main['spec']['templateID'] and not out['metadata'].get('labels')
    fetched = cis.co.get_namespaced_custom_object_status(GROUP, VERSION, namespace, CI_PLURAL, 'st')
    assert fetched['status']['phase'] == 'Ready' and fetched['spec'] == main['spec']


def test_generation_bumps_only_on_spec_changes(api_client, namespace):
    cis = CI(api_client, namespace)
    cis.create('gen')
    meta_only = cis.patch('gen', {'metadata': {'labels': {'a': 'b'}, 'annotations': {'c': 'd'}}})
    assert meta_only['metadata']['generation'] == 1
    spec = cis.patch('gen', {'spec': {'cores': 4}})
    assert spec['metadata']['generation'] == 2
    same = cis.patch('gen', {'spec': {'cores': 4}})
    assert same['metadata']['generation'] == 2
    assert same['metadata']['resourceVersion'] == spec['metadata']['resourceVersion']


def test_status_write_validates_status(api_client, namespace):
    cis = CI(api_client, namespace)
    cis.create('sv')
    status, body = _status_of(lambda: cis.patch_status('sv', {'status': {'phase': 'Exploded'}}))
    assert status == 422
    assert body['details']['causes'][0]['field'] == 'status.phase'


# ----------------------------------------------------------------------------- finalizers
def test_finalizers_and_deletion_timestamp(api_client, namespace):
    cis = CI(api_client, namespace)
    fin = f'{GROUP}/computeinstance-aap'
    created = cis.create('fin')
    cis.patch('fin', {'metadata': {'finalizers': [fin, 'example.com/other']}})
    deleted = cis.delete('fin')
    assert deleted['metadata']['deletionTimestamp']
    live = cis.get('fin')
    assert RFC3339.match(live['metadata']['deletionTimestamp'])
    assert live['metadata']['deletionGracePeriodSeconds'] == 0
    assert int(live['metadata']['resourceVersion']) > int(created['metadata']['resourceVersion'])
    # No new finalizer once deleting.
    status, body = _status_of(lambda: cis.patch('fin', {'metadata': {'finalizers': [fin, 'example.com/other', 'x']}}))
    assert status == 422 and body['reason'] == 'Invalid'
    assert body['message'] == (f'ComputeInstance.{GROUP} "fin" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added '
                               'if the object is being deleted, found new finalizers []string{"x"}')
    assert body['details']['causes'][0]['field'] == 'metadata.finalizers'
    # Updates still work; removing one keeps the object, removing the last deletes it.
    still = cis.patch('fin', [{'op': 'test', 'path': '/metadata/finalizers/0', 'value': fin},
                              {'op': 'remove', 'path': '/metadata/finalizers/0'}], 'application/json-patch+json')
    assert still['metadata']['finalizers'] == ['example.com/other']
    cis.patch('fin', [{'op': 'remove', 'path': '/metadata/finalizers/0'}], 'application/json-patch+json')
    assert _status_of(lambda: cis.get('fin'))[0] == 404


def _lease(name: str, namespace: str, owners: list[dict], finalizers: list[str] | None = None) -> dict:
    return {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
            'metadata': {'name': name, 'namespace': namespace, 'ownerReferences': owners, 'finalizers': finalizers or []}, 'spec': {}}


def _gone(read, timeout: float = 30.0) -> bool:
    """True once ``read()`` answers 404 (a real cluster's garbage collector takes a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            read()
        except client.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        time.sleep(0.2)
    return False


def test_garbage_collection_of_owned_objects(api_client, namespace):
    """Dependents go when their last owner does (the lock Lease of a deleted ComputeInstance); finalizers still hold."""
    cis = CI(api_client, namespace)
    leases = client.CoordinationV1Api(api_client)
    owner = cis.create('owner')
    other = cis.create('other')
    ref = {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'ComputeInstance', 'name': 'owner', 'uid': owner['metadata']['uid'], 'blockOwnerDeletion': False}
    other_ref = dict(ref, name='other', uid=other['metadata']['uid'])
    leases.create_namespaced_lease(namespace, _lease('owned', namespace, [ref]))
    leases.create_namespaced_lease(namespace, _lease('shared', namespace, [ref, other_ref]))
    leases.create_namespaced_lease(namespace, _lease('held', namespace, [ref], ['example.com/hold']))
    leases.create_namespaced_lease(namespace, _lease('free', namespace, []))
    cis.delete('owner')
    assert _gone(lambda: leases.read_namespaced_lease('owned', namespace))
    deadline = time.monotonic() + 30
    while leases.read_namespaced_lease('held', namespace).metadata.deletion_timestamp is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leases.read_namespaced_lease('held', namespace).metadata.deletion_timestamp is not None, 'a finalizer holds a collected dependent'
    assert leases.read_namespaced_lease('shared', namespace).metadata.deletion_timestamp is None, 'another owner still exists'
    assert leases.read_namespaced_lease('free', namespace).metadata.deletion_timestamp is None
    leases.patch_namespaced_lease('held', namespace, {'metadata': {'finalizers': None}})
    assert _gone(lambda: leases.read_namespaced_lease('held', namespace))
    cis.delete('other')
    assert _gone(lambda: leases.read_namespaced_lease('shared', namespace))


# ----------------------------------------------------------------------------- selectors & lists
OURS = {'a', 'b', 'c', 'd'}  # real clusters add kube-root-ca.crt to every namespace


def _ours(items) -> list[str]:
    return sorted(i.metadata.name for i in items if i.metadata.name in OURS)


def _make_labelled(core, namespace):
    for name, labels in (('a', {'app': 'web', 'tier': 'front'}), ('b', {'app': 'web', 'tier': 'back'}),
                         ('c', {'app': 'db'}), ('d', {})):
        core.create_namespaced_config_map(namespace, {'metadata': {'name': name, 'labels': labels}})


@pytest.mark.parametrize('selector,expected', [
    ('app=web', 'ab'), ('app==web', 'ab'), ('app!=web', 'cd'), ('tier in (front,back)', 'ab'), ('app notin (web)', 'cd'),
    ('tier', 'ab'), ('!tier', 'cd'), ('app=web,tier!=back', 'a'), ('app in (web, db),!tier', 'c'),
])
def test_label_selectors(api_client, namespace, selector, expected):
    core = client.CoreV1Api(api_client)
    _make_labelled(core, namespace)
    names = ''.join(_ours(core.list_namespaced_config_map(namespace, label_selector=selector).items))
    assert names == expected


def test_field_selectors(api_client, namespace):
    core = client.CoreV1Api(api_client)
    _make_labelled(core, namespace)
    assert [i.metadata.name for i in core.list_namespaced_config_map(namespace, field_selector='metadata.name=b').items] == ['b']
    assert _ours(core.list_namespaced_config_map(namespace, field_selector='metadata.name!=b').items) == ['a', 'c', 'd']
    everywhere = core.list_config_map_for_all_namespaces(field_selector=f'metadata.namespace=={namespace},metadata.name=c')
    assert [(i.metadata.namespace, i.metadata.name) for i in everywhere.items] == [(namespace, 'c')]
    # Kinds with field selectors of their own, custom resources too, and kinds with only the metadata ones word it differently.
    status, body = raw(api_client, 'GET', f'/api/v1/namespaces/{namespace}/configmaps', {'fieldSelector': 'data.x=1'})
    assert status == 400 and body['reason'] == 'BadRequest'
    assert body['message'] == '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'
    status, body = raw(api_client, 'GET', f'/api/v1/namespaces/{namespace}/secrets', {'fieldSelector': 'data.x=1'})
    assert status == 400 and body['message'] == 'field label not supported: data.x'
    status, body = raw(api_client, 'GET', f'/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{CI_PLURAL}', {'fieldSelector': 'spec.x=1'})
    assert status == 400 and body['message'] == 'field label not supported: spec.x'
    cis = CI(api_client, namespace)
    cis.create('fs1')
    cis.create('fs2')
    assert [i['metadata']['name'] for i in cis.list(field_selector='metadata.name=fs2')['items']] == ['fs2']


def test_list_shape_and_all_namespaces(api_client, namespace):
    core = client.CoreV1Api(api_client)
    _make_labelled(core, namespace)
    status, body = raw(api_client, 'GET', f'/api/v1/namespaces/{namespace}/configmaps')
    assert status == 200
    assert body['kind'] == 'ConfigMapList' and body['apiVersion'] == 'v1'
    assert int(body['metadata']['resourceVersion']) >= max(int(i['metadata']['resourceVersion']) for i in body['items'])
    names = [i['metadata']['name'] for i in body['items']]
    assert {'a', 'b', 'c', 'd'} <= set(names)
    status, body = raw(api_client, 'GET', '/api/v1/configmaps', {'labelSelector': 'app=db'})
    assert (namespace, 'c') in [(i['metadata']['namespace'], i['metadata']['name']) for i in body['items']]
    CI(api_client, namespace).create('li')
    status, body = raw(api_client, 'GET', f'/apis/{GROUP}/{VERSION}/{CI_PLURAL}')
    assert body['kind'] == 'ComputeInstanceList' and body['apiVersion'] == f'{GROUP}/{VERSION}'
    item = next(i for i in body['items'] if i['metadata']['namespace'] == namespace)
    assert item['kind'] == 'ComputeInstance' and item['apiVersion'] == f'{GROUP}/{VERSION}'


def test_list_pagination(api_client, namespace):
    core = client.CoreV1Api(api_client)
    for i in range(7):
        core.create_namespaced_config_map(namespace, {'metadata': {'name': f'p{i}'}})
    seen, token = [], None
    while True:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        seen.extend(i.metadata.name for i in page.items)
        assert len(page.items) <= 3
        token = page.metadata._continue
        if not token:
            break
    assert [n for n in seen if n.startswith('p')] == [f'p{i}' for i in range(7)]


# ----------------------------------------------------------------------------- other kinds
def test_lease_and_event_and_storage_class(api_client, namespace):
    path = f'/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases'
    # Plain JSON: the client's own models would send renewTime as Python's isoformat, which kube-apiserver refuses (below).
    status, lease = raw(api_client, 'POST', path, body={'metadata': {'name': 'lock'}, 'spec': {
        'holderIdentity': 'job-1', 'leaseDurationSeconds': 30, 'renewTime': '2026-01-01T00:00:00.000000Z'}})
    assert status == 201
    lease['spec']['holderIdentity'] = 'job-2'
    status, replaced = raw(api_client, 'PUT', f'{path}/lock', body=lease)
    assert status == 200 and replaced['spec']['holderIdentity'] == 'job-2'
    lease['spec']['holderIdentity'] = 'job-3'
    assert raw(api_client, 'PUT', f'{path}/lock', body=lease)[0] == 409
    core = client.CoreV1Api(api_client)
    core.create_namespaced_event(namespace, {'metadata': {'name': 'ev1'}, 'reason': 'Provisioned', 'message': 'ok', 'type': 'Normal',
                                             'involvedObject': {'kind': 'ComputeInstance', 'name': 'x', 'namespace': namespace}})
    # The involved object's namespace must be the Event's (kube-apiserver's legacyValidateEvent).
    status, body = _status_of(lambda: core.create_namespaced_event(namespace, {
        'metadata': {'name': 'ev2'}, 'reason': 'Provisioned', 'involvedObject': {'kind': 'ComputeInstance', 'name': 'x'}}))
    assert status == 422 and body['details']['causes'] == [{'reason': 'FieldValueInvalid', 'field': 'involvedObject.namespace',
                                                           'message': 'Invalid value: "": does not match event.namespace'}]
    events = core.list_namespaced_event(namespace, field_selector='involvedObject.name=x,reason=Provisioned')
    assert [e.metadata.name for e in events.items] == ['ev1']
    classes = client.StorageV1Api(api_client).list_storage_class().items
    defaults = [c.metadata.name for c in classes if (c.metadata.annotations or {}).get('storageclass.kubernetes.io/is-default-class') == 'true']
    assert defaults, 'a default StorageClass exists'


def test_events_with_an_event_time_have_length_limits_in_bytes(api_client, namespace):
    """pkg/apis/core/validation/events.go: an Event with eventTime takes a message of at most 1024 and a reason and action
    of at most 128, measured by Go's len() in bytes: 1024 characters of a three-byte script are refused."""
    path = f'/api/v1/namespaces/{namespace}/events'

    def event(name, **fields):
        return dict({'metadata': {'name': name}, 'involvedObject': {'kind': 'ComputeInstance', 'name': 'x', 'namespace': namespace},
                     'reason': 'Provisioned', 'action': 'Provisioned', 'message': 'ok', 'type': 'Normal',
                     'eventTime': '2026-01-01T00:00:00.000000Z', 'reportingComponent': 'cloudkit-provisioning',
                     'reportingInstance': 'cloudkit-provisioning'}, **fields)
    assert raw(api_client, 'POST', path, body=event('fits', message='\u4e16' * 341, reason='R' * 128))[0] == 201
    status, body = raw(api_client, 'POST', path, body=event('wide', message='\u4e16' * 342, reason='R' * 129))
    assert status == 422 and body['details']['causes'] == [
        {'reason': 'FieldValueInvalid', 'field': 'reason', 'message': 'Invalid value: "": can have at most 128 characters'},
        {'reason': 'FieldValueInvalid', 'field': 'message', 'message': 'Invalid value: "": can have at most 1024 characters'}]


def test_microtime_fields_take_six_fractional_digits_and_are_stored_in_utc(api_client, namespace):
    """Lease times are metav1.MicroTime: kube-apiserver parses them with Go's RFC3339Micro layout (400 otherwise) and stores
    UTC. A Lease read into the official client's models and written back carries Python's isoformat ('+00:00', no
    microseconds when they are 0), which is refused."""
    coord = client.CoordinationV1Api(api_client)
    path = f'/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases'
    for pos, (written, stored) in enumerate((('2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
                                             ('2026-01-01T01:00:00.123456+01:00', '2026-01-01T00:00:00.123456Z'))):
        status, body = raw(api_client, 'POST', path, body={'metadata': {'name': f'ok{pos}'}, 'spec': {'renewTime': written, 'acquireTime': written}})
        assert status == 201 and body['spec']['renewTime'] == stored and body['spec']['acquireTime'] == stored
    layout = '2006-01-02T15:04:05.000000Z07:00'
    for pos, (written, rest, element) in enumerate((('2026-01-01T00:00:00Z', 'Z', '.000000'), ('2026-01-01T00:00:00.123Z', '.123Z', '.000000'),
                                                    ('2026-01-01T00:00:00+00:00', '+00:00', '.000000'), ('junk', 'junk', '2006'))):
        status, body = raw(api_client, 'POST', path, body={'metadata': {'name': f'bad{pos}'}, 'spec': {'renewTime': written}})
        assert status == 400 and body['reason'] == 'BadRequest'
        assert body['message'] == (f'Lease in version "v1" cannot be handled as a Lease: parsing time "{written}" as "{layout}": '
                                   f'cannot parse "{rest}" as "{element}"')
    lease = coord.read_namespaced_lease('ok0', namespace)  # renewTime becomes a datetime in the model
    lease.spec.holder_identity = 'x'
    status, body = _status_of(lambda: coord.replace_namespaced_lease('ok0', namespace, lease))
    assert status == 400 and 'parsing time "2026-01-01T00:00:00+00:00"' in body['message']


def test_self_subject_reviews(kube, api_client, namespace):
    """What the caller may do (SelfSubjectAccessReview) and who it is (SelfSubjectReview): the tests' identity is an administrator."""
    kube.require_local('the identity of a user\'s kubeconfig is its own')
    review = {'apiVersion': 'authorization.k8s.io/v1', 'kind': 'SelfSubjectAccessReview',
              'spec': {'resourceAttributes': {'verb': 'create', 'group': 'coordination.k8s.io', 'resource': 'leases', 'namespace': namespace}}}
    status, body = raw(api_client, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', body=review)
    assert status == 201 and body['kind'] == 'SelfSubjectAccessReview'
    assert body['status']['allowed'] is True and body['spec']['resourceAttributes'] == review['spec']['resourceAttributes']
    status, body = raw(api_client, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', body=dict(review, spec={}))
    assert status == 422 and body['reason'] == 'Invalid'
    status, body = raw(api_client, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews',
                       body={'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'})
    assert status == 201 and {'system:masters', 'system:authenticated'} <= set(body['status']['userInfo']['groups'])
    assert raw(api_client, 'GET', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews')[0] == 405


# ----------------------------------------------------------------------------- discovery
def test_discovery_documents(api_client):
    status, body = raw(api_client, 'GET', '/api')
    assert status == 200 and body['kind'] == 'APIVersions' and 'v1' in body['versions']
    status, body = raw(api_client, 'GET', '/apis')
    groups = {g['name']: g for g in body['groups']}
    for group in (GROUP, 'kubevirt.io', 'cdi.kubevirt.io', 'coordination.k8s.io', 'storage.k8s.io'):
        assert group in groups
    assert groups[GROUP]['preferredVersion']['groupVersion'] == f'{GROUP}/{VERSION}'
    status, body = raw(api_client, 'GET', f'/apis/{GROUP}/{VERSION}')
    assert body['kind'] == 'APIResourceList' and body['groupVersion'] == f'{GROUP}/{VERSION}'
    resources = {r['name']: r for r in body['resources']}
    ci = resources[CI_PLURAL]
    assert ci['kind'] == 'ComputeInstance' and ci['namespaced'] is True and ci['singularName'] == 'computeinstance'
    assert 'ci' in ci['shortNames'] and {'get', 'list', 'watch', 'patch'} <= set(ci['verbs'])
    assert f'{CI_PLURAL}/status' in resources
    status, body = raw(api_client, 'GET', '/apis/kubevirt.io/v1')
    vm = next(r for r in body['resources'] if r['name'] == 'virtualmachines')
    assert {'vm', 'vms'} <= set(vm['shortNames'])
    status, body = raw(api_client, 'GET', '/api/v1')
    core = {r['name']: r for r in body['resources']}
    assert core['namespaces']['namespaced'] is False and core['secrets']['namespaced'] is True
    status, body = raw(api_client, 'GET', '/version')
    assert status == 200 and body['gitVersion'].startswith('v1.') and body['major'] == '1'


@pytest.mark.parametrize('api_version,kind', [
    (f'{GROUP}/{VERSION}', 'ComputeInstance'), (f'{GROUP}/{VERSION}', 'Tenant'), ('kubevirt.io/v1', 'VirtualMachine'),
    ('kubevirt.io/v1', 'VirtualMachineInstance'), ('cdi.kubevirt.io/v1beta1', 'DataVolume'), ('v1', 'Secret'), ('v1', 'Namespace'),
    ('coordination.k8s.io/v1', 'Lease'), ('storage.k8s.io/v1', 'StorageClass'), ('v1', 'Service'),
])
def test_dynamic_client_finds_resources(api_client, api_version, kind):
    resource = DynamicClient(api_client).resources.get(api_version=api_version, kind=kind)
    assert resource.kind == kind


def test_dynamic_client_round_trip(api_client, namespace):
    dyn = DynamicClient(api_client)
    cis = dyn.resources.get(api_version=f'{GROUP}/{VERSION}', kind='ComputeInstance')
    made = cis.create(body=ci_body('dyn'), namespace=namespace)
    assert made.metadata.name == 'dyn'
    assert 'status' in cis.subresources
    cis.status.patch(body={'status': {'phase': 'Ready'}}, name='dyn', namespace=namespace, content_type='application/merge-patch+json')
    assert cis.get(name='dyn', namespace=namespace).status.phase == 'Ready'
    assert [i.metadata.name for i in cis.get(namespace=namespace).items] == ['dyn']


# ----------------------------------------------------------------------------- schema validation
def test_schema_violation_is_422_naming_the_field(api_client, namespace):
    cis = CI(api_client, namespace)
    status, body = _status_of(lambda: cis.create('bad', templateID='1bad'))
    assert status == 422 and body['reason'] == 'Invalid'
    assert body['message'] == (f'ComputeInstance.{GROUP} "bad" is invalid: spec.templateID: Invalid value: "1bad": '
                               "spec.templateID in body should match '^[a-zA-Z_][a-zA-Z0-9._]*$'")
    assert body['details']['causes'] == [{'reason': 'FieldValueInvalid', 'field': 'spec.templateID',
                                          'message': 'Invalid value: "1bad": spec.templateID in body should match \'^[a-zA-Z_][a-zA-Z0-9._]*$\''}]
    assert body['details']['kind'] == 'ComputeInstance' and body['details']['group'] == GROUP
    status, body = _status_of(lambda: cis.co.create_namespaced_custom_object(
        GROUP, VERSION, namespace, CI_PLURAL, {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'ComputeInstance', 'metadata': {'name': 'r'}, 'spec': {}}))
    assert status == 422 and body['details']['causes'][0]['field'] == 'spec.templateID'
    assert 'Required value' in body['message']
    for spec, field in (({'runStrategy': 'Sometimes'}, 'spec.runStrategy'), ({'cores': 'two'}, 'spec.cores'),
                        ({'restartRequestedAt': 'yesterday'}, 'spec.restartRequestedAt')):
        status, body = _status_of(lambda spec=spec: cis.create('bad2', **spec))
        assert status == 422 and [c['field'] for c in body['details']['causes']] == [field]
    cis.create('good', restartRequestedAt='2026-02-01T10:00:00Z')
    status, body = _status_of(lambda: cis.patch('good', {'spec': {'templateID': '9'}}))
    assert status == 422 and body['details']['causes'][0]['field'] == 'spec.templateID'


def test_upstream_schema_constraints(api_client, namespace):
    """The CRD carries upstream's constraints (osac-operator api/v1alpha1/computeinstance_types.go): a top-level spec,
    references with both fields, and metav1.Condition's schema (required fields, reason pattern, message length)."""
    cis = CI(api_client, namespace)
    status, body = _status_of(lambda: cis.co.create_namespaced_custom_object(
        GROUP, VERSION, namespace, CI_PLURAL, {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'ComputeInstance', 'metadata': {'name': 'nospec'}}))
    assert status == 422 and [c['field'] for c in body['details']['causes']] == ['spec'] and 'Required value' in body['message']
    cis.create('st')
    good = {'type': 'Available', 'status': 'True', 'reason': 'VirtualMachineReady', 'message': '',
            'lastTransitionTime': '2026-02-01T10:00:00Z', 'observedGeneration': 1}
    for condition, field in ((dict(good, reason=''), 'status.conditions[0].reason'),
                             (dict(good, reason='Not A Reason'), 'status.conditions[0].reason'),
                             (dict(good, message='x' * 32769), 'status.conditions[0].message'),
                             (dict(good, observedGeneration=-1), 'status.conditions[0].observedGeneration'),
                             ({k: v for k, v in good.items() if k != 'lastTransitionTime'}, 'status.conditions[0].lastTransitionTime'),
                             ({k: v for k, v in good.items() if k != 'message'}, 'status.conditions[0].message')):
        status, body = _status_of(lambda condition=condition: cis.patch_status('st', {'status': {'conditions': [condition]}}))
        assert status == 422 and [c['field'] for c in body['details']['causes']] == [field], (condition, body)
    status, body = _status_of(lambda: cis.patch_status('st', {'status': {'virtualMachineReference': {'namespace': 'tenant-a'}}}))
    assert status == 422 and [c['field'] for c in body['details']['causes']] == ['status.virtualMachineReference.kubeVirtVirtualMachineName']
    status, body = _status_of(lambda: cis.patch_status('st', {'status': {'tenantReference': {'name': 'acme'}}}))
    assert status == 422 and [c['field'] for c in body['details']['causes']] == ['status.tenantReference.namespace']
    written = cis.patch_status('st', {'status': {'conditions': [dict(good, message='x' * 32768)],
                                                 'virtualMachineReference': {'namespace': 't', 'kubeVirtVirtualMachineName': 'st'}}})
    assert written['status']['conditions'][0]['message'] == 'x' * 32768


@pytest.mark.parametrize('group, version, plural, kind, body, field', [
    ('kubevirt.io', 'v1', 'virtualmachines', 'VirtualMachine', {}, 'spec'),
    ('kubevirt.io', 'v1', 'virtualmachines', 'VirtualMachine', {'spec': {'runStrategy': 'Always'}}, 'spec.template'),
    ('kubevirt.io', 'v1', 'virtualmachineinstances', 'VirtualMachineInstance', {'spec': {}}, 'spec.domain'),
    ('cdi.kubevirt.io', 'v1beta1', 'datavolumes', 'DataVolume', {}, 'spec'),
])
def test_kubevirt_and_cdi_schemas_require_what_upstream_requires(api_client, namespace, group, version, plural, kind, body, field):
    manifest = dict({'apiVersion': f'{group}/{version}', 'kind': kind, 'metadata': {'name': 'r'}}, **body)
    status, answer = raw(api_client, 'POST', f'/apis/{group}/{version}/namespaces/{namespace}/{plural}', body=manifest)
    assert status == 422 and [c['field'] for c in answer['details']['causes']] == [field], answer


def test_unknown_fields_are_pruned(api_client, namespace):
    cis = CI(api_client, namespace)
    made = cis.create('prune', bogus='x', bootDisk={'sizeGiB': 10, 'extra': True})
    assert made['spec'] == {'templateID': 'cloudkit.templates.ocp_virt_vm', 'bootDisk': {'sizeGiB': 10}}
    assert 'unknownTop' not in cis.patch('prune', {'unknownTop': 1})
    # Upstream's TenantSpec has no fields: whatever a spec carries is pruned.
    tenant = {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'Tenant', 'metadata': {'name': 't'}, 'spec': {'anything': {'goes': 1}}}
    kept = cis.co.create_namespaced_custom_object(GROUP, VERSION, namespace, 'tenants', tenant)
    assert kept['spec'] == {}
    status, body = _status_of(lambda: cis.co.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, 'tenants', 't', {
        'status': {'phase': 'Ready', 'storageClasses': [{'name': 'fast', 'tier': 'Not A Tier'}]}}))
    assert status == 422 and [c['field'] for c in body['details']['causes']] == ['status.storageClasses[0].tier']


def test_metadata_only_patch_is_accepted(api_client, namespace):
    cis = CI(api_client, namespace)
    cis.create('meta')
    out = cis.patch('meta', [{'op': 'add', 'path': '/metadata/annotations', 'value': {f'{GROUP}/reconciled-config-version': 'abc'}}],
                    'application/json-patch+json')
    assert out['metadata']['annotations'] == {f'{GROUP}/reconciled-config-version': 'abc'}


def test_crd_files_match_modulo_group():
    for stem in ('computeinstances', 'tenants'):
        old = (CRD_DIR / f'{stem}.cloudkit.openshift.io.yaml').read_text(encoding='utf-8')
        new = (CRD_DIR / f'{stem}.osac.openshift.io.yaml').read_text(encoding='utf-8')
        assert old.replace('cloudkit.openshift.io', 'osac.openshift.io') == new
        assert yaml.safe_load(new)['spec']['group'] == 'osac.openshift.io'


# ----------------------------------------------------------------------------- auth
def test_anonymous_requests_are_403_and_bad_tokens_401(kube, api_client):
    """No credentials: system:anonymous, whom RBAC refuses everything but /version and the health checks (403, kube-apiserver's
    words); a token nobody issued: 401."""
    host = api_client.configuration.host
    if kube.real and host.startswith('https'):
        pytest.skip('checked on the local stack only; the anonymous policy of a real cluster is its own')
    context = ssl.create_default_context(cafile=api_client.configuration.ssl_ca_cert) if host.startswith('https') else None
    user = 'User "system:anonymous"'
    for path, message, details in (
            ('/api/v1/namespaces', f'namespaces is forbidden: {user} cannot list resource "namespaces" in API group "" at the cluster scope',
             {'kind': 'namespaces'}),
            (f'/apis/{GROUP}/{VERSION}/namespaces/default/{CI_PLURAL}/x',
             f'{CI_PLURAL}.{GROUP} "x" is forbidden: {user} cannot get resource "{CI_PLURAL}" in API group "{GROUP}" in the namespace "default"',
             {'name': 'x', 'group': GROUP, 'kind': CI_PLURAL}),
            ('/apis', f'forbidden: {user} cannot get path "/apis"', {})):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(host + path, timeout=5, context=context)  # noqa: S310  pylint: disable=consider-using-with
        assert info.value.code == 403
        body = yaml.safe_load(info.value.read())
        assert body['kind'] == 'Status' and body['reason'] == 'Forbidden' and body['code'] == 403
        assert body['message'] == message and body['details'] == details
    with urllib.request.urlopen(host + '/version', timeout=5, context=context) as resp:  # noqa: S310
        assert resp.status == 200
    req = urllib.request.Request(host + '/api/v1/namespaces', headers={'Authorization': 'Bearer wrong'})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5, context=context)  # noqa: S310  pylint: disable=consider-using-with
    assert info.value.code == 401
    body = yaml.safe_load(info.value.read())
    assert body['reason'] == 'Unauthorized' and body['message'] == 'Unauthorized'


# ----------------------------------------------------------------------------- namespaces & CRDs through the API
def test_namespace_deletion_removes_content(api_client):
    core = client.CoreV1Api(api_client)
    name = f'ct-del-{uuid.uuid4().hex[:8]}'
    core.create_namespace({'metadata': {'name': name}})
    core.create_namespaced_config_map(name, {'metadata': {'name': 'x'}})
    status, gone = raw(api_client, 'DELETE', f'/api/v1/namespaces/{name}')
    assert status == 200 and gone['kind'] == 'Namespace' and gone['metadata']['deletionTimestamp']
    assert gone['status']['phase'] == 'Terminating'
    status = _status_of(lambda: core.create_namespaced_config_map(name, {'metadata': {'name': 'y'}}))[0]
    assert status in (403, 404)


def test_crd_created_through_the_api(kube, api_client, namespace):
    kube.require_server()  # not on a user's cluster: creating CRDs takes cluster-admin there
    group = f'g{uuid.uuid4().hex[:6]}.example.com'
    crd = {'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition', 'metadata': {'name': f'widgets.{group}'}, 'spec': {
        'group': group, 'scope': 'Namespaced', 'names': {'kind': 'Widget', 'plural': 'widgets', 'singular': 'widget', 'shortNames': ['wd']},
        'versions': [{'name': 'v1', 'served': True, 'storage': True, 'schema': {'openAPIV3Schema': {'type': 'object', 'properties': {
            'spec': {'type': 'object', 'properties': {
                'size': {'x-kubernetes-int-or-string': True},
                'note': {'type': 'string', 'nullable': True},
                'mode': {'type': 'string', 'default': 'auto'},
                'free': {'type': 'object', 'x-kubernetes-preserve-unknown-fields': True}}}}}}}]}}
    client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd)
    co = client.CustomObjectsApi(api_client)
    # A new CRD is served once Established (kube-apiserver takes a moment; until then its paths are 404).
    deadline = time.monotonic() + 30
    while raw(api_client, 'GET', f'/apis/{group}/v1/namespaces/{namespace}/widgets')[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)

    def widget(name, **spec):
        return {'apiVersion': f'{group}/v1', 'kind': 'Widget', 'metadata': {'name': name}, 'spec': spec}
    made = co.create_namespaced_custom_object(group, 'v1', namespace, 'widgets', widget('w1', size='10Gi', note=None, free={'a': {'b': 1}}, x=1))
    assert made['spec'] == {'size': '10Gi', 'note': None, 'free': {'a': {'b': 1}}, 'mode': 'auto'}
    assert co.create_namespaced_custom_object(group, 'v1', namespace, 'widgets', widget('w2', size=3))['spec']['size'] == 3
    status, body = _status_of(lambda: co.create_namespaced_custom_object(group, 'v1', namespace, 'widgets', widget('w3', size=[1])))
    assert status == 422 and body['details']['causes'][0]['field'] == 'spec.size'
    client.ApiextensionsV1Api(api_client).delete_custom_resource_definition(f'widgets.{group}')
    # kube-apiserver first deletes the instances (the CRD's cleanup finalizer), then stops serving the resource.
    deadline = time.monotonic() + 30
    while raw(api_client, 'GET', f'/apis/{group}/v1/namespaces/{namespace}/widgets')[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert raw(api_client, 'GET', f'/apis/{group}/v1/namespaces/{namespace}/widgets')[0] == 404


def test_metadata_maps_are_checked(api_client, namespace):
    core = client.CoreV1Api(api_client)
    status, body = raw(api_client, 'POST', f'/api/v1/namespaces/{namespace}/configmaps', body={'metadata': {'name': 'l', 'labels': {'a': 1}}})
    assert status == 400 and body['reason'] == 'BadRequest'
    status, body = _status_of(lambda: core.create_namespaced_config_map(namespace, {'metadata': {'name': 'l', 'labels': {'a': 'not valid!'}}}))
    assert status == 422 and body['details']['causes'][0]['field'] == 'metadata.labels'
    uid = str(uuid.uuid4())
    made = core.create_namespaced_config_map(namespace, {'metadata': {'name': 'l', 'labels': {f'{GROUP}/computeinstance-uuid': uid}}})
    assert made.metadata.labels == {f'{GROUP}/computeinstance-uuid': uid}


def _cause(status_body: dict) -> tuple[str, str, str]:
    cause = status_body['details']['causes'][0]
    return cause['reason'], cause['field'], cause['message']


def test_names_follow_their_kinds_rules(api_client, namespace):
    """Service names are DNS-1035 labels, Namespace names DNS-1123 labels, other names DNS-1123 subdomains; a generated name
    keeps at most 58 characters of its prefix."""
    def post(path, body):
        return raw(api_client, 'POST', path, body=body)
    services = f'/api/v1/namespaces/{namespace}/services'
    dns1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end "
               "with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    for name, message in (('a.b', dns1035), ('1abc', dns1035), ('a' * 64, 'must be no more than 63 characters')):
        status, body = post(services, {'metadata': {'name': name}, 'spec': {'ports': [{'port': 80}]}})
        assert status == 422 and _cause(body) == ('FieldValueInvalid', 'metadata.name', f'Invalid value: "{name}": {message}')
    status, body = post('/api/v1/namespaces', {'metadata': {'name': 'a.b'}})
    assert status == 422 and _cause(body) == ('FieldValueInvalid', 'metadata.name', 'Invalid value: "a.b": must not contain dots')
    configmaps = f'/api/v1/namespaces/{namespace}/configmaps'
    status, body = post(configmaps, {'metadata': {'name': 'a' * 254}})
    assert status == 422 and _cause(body)[2].endswith('must be no more than 253 characters')
    assert post(configmaps, {'metadata': {'name': 'a' * 253}})[0] == 201
    status, body = post(configmaps, {'metadata': {'generateName': 'g' * 60 + '-'}})
    assert status == 201 and body['metadata']['name'].startswith('g' * 58) and len(body['metadata']['name']) == 63


def test_labels_and_annotations_are_limited(api_client, namespace):
    path = f'/api/v1/namespaces/{namespace}/configmaps'
    qualified = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    for field, labels, value, message in (
            ('labels', {'a': 'v' * 64}, 'v' * 64, 'must be no more than 63 characters'),
            ('labels', {'p' * 254 + '/a': 'v'}, 'p' * 254 + '/a', 'prefix part must be no more than 253 characters'),
            ('labels', {'x.io/' + 'n' * 64: 'v'}, 'x.io/' + 'n' * 64, 'name part must be no more than 63 characters'),
            ('labels', {'a/b/c': 'v'}, 'a/b/c', f"a qualified name {qualified} with an optional DNS subdomain prefix and '/' "
                                                "(e.g. 'example.com/MyName')"),
            ('annotations', {'bad key!': 'v'}, 'bad key!', f'name part {qualified}')):
        status, body = raw(api_client, 'POST', path, body={'metadata': {'name': 'x', field: labels}})
        assert status == 422 and _cause(body) == ('FieldValueInvalid', f'metadata.{field}', f'Invalid value: "{value}": {message}')
    status, body = raw(api_client, 'POST', path, body={'metadata': {'name': 'x', 'annotations': {'a': 'x' * (256 * 1024)}}})
    assert status == 422 and _cause(body) == ('FieldValueTooLong', 'metadata.annotations', 'Too long: may not be more than 262144 bytes')


def test_object_and_request_sizes_are_limited(api_client, namespace):
    """1 MiB of Secret or ConfigMap data, 3 MiB of request body, and etcd's 1.5 MiB for a stored custom resource."""
    over = 1024 * 1024 + 1
    status, body = raw(api_client, 'POST', f'/api/v1/namespaces/{namespace}/secrets',
                       body={'metadata': {'name': 's'}, 'data': {'a': base64.b64encode(b'x' * over).decode()}})
    assert status == 422 and _cause(body) == ('FieldValueTooLong', 'data', 'Too long: may not be more than 1048576 bytes')
    status, body = raw(api_client, 'POST', f'/api/v1/namespaces/{namespace}/configmaps',
                       body={'metadata': {'name': 'c'}, 'data': {'a': 'x' * (over // 2), 'b': 'y' * (over // 2 + 1)}})
    assert status == 422 and _cause(body) == ('FieldValueTooLong', '[]', 'Too long: may not be more than 1048576 bytes')
    status, body = raw(api_client, 'POST', f'/api/v1/namespaces/{namespace}/configmaps',
                       body={'metadata': {'name': 'big'}, 'data': {'x': 'y' * (3 * 1024 * 1024)}})
    assert status == 413 and body['reason'] == 'RequestEntityTooLarge' and body['message'] == 'Request entity too large: limit is 3145728'
    instance = ci_body('big', templateParameters='y' * (1600 * 1024))
    status, body = raw(api_client, 'POST', f'/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{CI_PLURAL}', body=instance)
    assert status == 500 and body['message'] == 'etcdserver: request is too large'
    instance['spec']['templateParameters'] = 'y' * (1400 * 1024)
    assert raw(api_client, 'POST', f'/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{CI_PLURAL}', body=instance)[0] == 201


def test_create_on_the_all_namespaces_path_is_405(api_client):
    status, body = raw(api_client, 'POST', '/api/v1/configmaps', body={'metadata': {'name': 'x', 'namespace': 'default'}})
    assert status == 405
    assert body.get('reason', 'MethodNotAllowed') == 'MethodNotAllowed'


def test_delete_collection_with_label_selector(api_client, namespace):
    core = client.CoreV1Api(api_client)
    _make_labelled(core, namespace)
    core.delete_collection_namespaced_config_map(namespace, label_selector='app=web')
    assert _ours(core.list_namespaced_config_map(namespace).items) == ['c', 'd']


def test_the_api_is_served_over_tls_with_its_own_ca(api_client):
    host = api_client.configuration.host
    assert host.startswith('https://')
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(host + '/version', timeout=5, context=ssl.create_default_context())  # noqa: S310  pylint: disable=consider-using-with
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
    context = ssl.create_default_context(cafile=api_client.configuration.ssl_ca_cert)
    with urllib.request.urlopen(host + '/version', timeout=5, context=context) as resp:  # noqa: S310
        assert json.loads(resp.read())['major'] == '1'


def test_client_certificate_users_authenticate_as_their_certificate_names(kube, tmp_path):
    """x509 client certificates the server's CA signed: user = CN, groups = O plus system:authenticated (kube-apiserver's
    x509 authenticator); on kube-apiserver through the proxy in front of it (requestheader)."""
    server = kube.require_server()
    review = {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'}
    cert_api = config.new_client_from_config(server.write_cert_kubeconfig(tmp_path / 'cert', 'cert-user', ['cloudkit-testers']))
    status, body = raw(cert_api, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', body=review)
    assert status == 201 and body['status']['userInfo']['username'] == 'cert-user'
    assert {'cloudkit-testers', 'system:authenticated'} <= set(body['status']['userInfo']['groups'])
    admin = config.new_client_from_config(server.write_cert_kubeconfig(tmp_path / 'admin', 'cert-admin', ['system:masters']))
    assert raw(admin, 'GET', '/api/v1/namespaces/default')[0] == 200


# ----------------------------------------------------------------------------- apps/v1 Deployment (the preflight reads the operator's)
def test_a_deployment_keeps_its_container_env_and_needs_a_matching_selector(api_client, namespace):
    apps = client.AppsV1Api(api_client)
    labels = {'control-plane': 'manager'}
    env = [{'name': 'CLOUDKIT_PROVISIONING_PROVIDER', 'value': 'aap'},
           {'name': 'CLOUDKIT_AAP_TOKEN', 'valueFrom': {'secretKeyRef': {'name': 'aap', 'key': 'token'}}}]
    body = {'metadata': {'name': 'operator'}, 'spec': {'selector': {'matchLabels': labels}, 'template': {
        'metadata': {'labels': labels}, 'spec': {'containers': [{'name': 'manager', 'image': 'example/operator:1', 'env': env}]}}}}
    apps.create_namespaced_deployment(namespace, body)
    status, read = raw(api_client, 'GET', f'/apis/apps/v1/namespaces/{namespace}/deployments/operator')
    assert status == 200 and read['spec']['replicas'] == 1
    assert read['spec']['template']['spec']['containers'][0]['env'] == env
    unselected = {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'unselected'},
                  'spec': dict((k, v) for k, v in body['spec'].items() if k != 'selector')}
    status, error = raw(api_client, 'POST', f'/apis/apps/v1/namespaces/{namespace}/deployments', body=unselected,
                        content_type='application/json')
    assert status == 422 and error['reason'] == 'Invalid'
    assert 'spec.selector' in [cause['field'] for cause in error['details']['causes']]
