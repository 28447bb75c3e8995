"""Contract tests for WATCH: resume from a resourceVersion, initial state, BOOKMARKs, timeoutSeconds, 410 Expired,
selector transitions and finalizer-driven deletion events."""
from __future__ import annotations

import json
import time

import pytest
from kubernetes import client, config, watch

from tests.contract.helpers import CI, CI_PLURAL, GROUP, VERSION
from tests.stack.kubeapi import KubeAPIServer


# kube-controller-manager's root-CA publisher adds this ConfigMap to every new namespace, at a moment of its choosing.
ROOT_CA = 'kube-root-ca.crt'


def _collect(func, *args, count: int, timeout: int = 10, **kwargs) -> list[dict]:
    """The first ``count`` events (or fewer if the stream ends first), the root-CA publisher's aside."""
    events = []
    stream = watch.Watch()
    for event in stream.stream(func, *args, timeout_seconds=timeout, **kwargs):
        if event['raw_object'].get('metadata', {}).get('name') == ROOT_CA:
            continue
        events.append(event)
        if len(events) >= count:
            stream.stop()
            break
    return events


def test_watch_resumes_exactly_after_resource_version(api_client, namespace):
    core = client.CoreV1Api(api_client)
    start = core.create_namespaced_config_map(namespace, {'metadata': {'name': 'w1'}}).metadata.resource_version
    core.patch_namespaced_config_map('w1', namespace, {'data': {'a': '1'}})
    core.create_namespaced_config_map(namespace, {'metadata': {'name': 'w2'}})
    core.delete_namespaced_config_map('w1', namespace)
    events = _collect(core.list_namespaced_config_map, namespace, count=3, resource_version=start)
    assert [(e['type'], e['object'].metadata.name) for e in events] == [('MODIFIED', 'w1'), ('ADDED', 'w2'), ('DELETED', 'w1')]
    rvs = [int(e['object'].metadata.resource_version) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(start)
    assert events[0]['object'].data == {'a': '1'}
    assert events[2]['object'].data == {'a': '1'}  # DELETED carries the last state


def test_watch_without_resource_version_starts_with_current_state(api_client, namespace):
    cis = CI(api_client, namespace)
    cis.create('i1')
    cis.create('i2')
    events = _collect(cis.co.list_namespaced_custom_object, GROUP, VERSION, namespace, CI_PLURAL, count=3, timeout=2)
    assert [(e['type'], e['object']['metadata']['name']) for e in events] == [('ADDED', 'i1'), ('ADDED', 'i2')]


def test_watch_timeout_seconds_ends_the_stream(api_client, namespace):
    began = time.monotonic()
    events = _collect(client.CoreV1Api(api_client).list_namespaced_secret, namespace, count=100, timeout=1)
    assert events == []
    assert time.monotonic() - began < 10


def test_watch_bookmarks(kube, tmp_path):
    """BOOKMARKs every ``bookmark_interval``: a minute by default, as kube-apiserver's watch cache sends them
    (k8s.io/apiserver v0.33 pkg/storage/cacher/cacher.go, defaultBookmarkFrequency = time.Minute); half a second here."""
    kube.require_stand_in('the BOOKMARK interval is a stand-in option; kube-apiserver sends one about every minute')
    assert KubeAPIServer().api.bookmark_interval == 60.0
    with KubeAPIServer(bookmark_interval=0.5) as server:
        core = client.CoreV1Api(config.new_client_from_config(server.write_kubeconfig(tmp_path / 'kubeconfig')))
        start = core.create_namespaced_config_map('default', {'metadata': {'name': 'b'}}).metadata.resource_version
        events = _collect(core.list_namespaced_config_map, 'default', count=2, timeout=4, resource_version=start, allow_watch_bookmarks=True)
        assert [e['type'] for e in events] == ['BOOKMARK', 'BOOKMARK']
        mark = events[0]['raw_object']
        assert mark['kind'] == 'ConfigMap' and mark['apiVersion'] == 'v1'
        assert set(mark['metadata']) == {'resourceVersion'} and int(mark['metadata']['resourceVersion']) >= int(start)


def test_watch_selector_transitions(api_client, namespace):
    core = client.CoreV1Api(api_client)
    start = core.create_namespaced_config_map(namespace, {'metadata': {'name': 'other'}}).metadata.resource_version
    core.create_namespaced_config_map(namespace, {'metadata': {'name': 's', 'labels': {'app': 'x'}}})
    core.patch_namespaced_config_map('s', namespace, {'metadata': {'labels': {'app': 'y'}}})
    core.patch_namespaced_config_map('s', namespace, {'metadata': {'labels': {'app': 'x'}}})
    events = _collect(core.list_namespaced_config_map, namespace, count=3, resource_version=start, label_selector='app=x')
    assert [(e['type'], e['object'].metadata.name) for e in events] == [('ADDED', 's'), ('DELETED', 's'), ('ADDED', 's')]
    by_name = _collect(core.list_namespaced_config_map, namespace, count=3, timeout=2, resource_version=start, field_selector='metadata.name=other')
    assert by_name == []


def test_watch_sees_finalizer_deletion_sequence(api_client, namespace):
    cis = CI(api_client, namespace)
    start = cis.create('f', )['metadata']['resourceVersion']
    cis.patch('f', {'metadata': {'finalizers': ['example.com/f']}})
    cis.delete('f')
    cis.patch('f', [{'op': 'remove', 'path': '/metadata/finalizers'}], 'application/json-patch+json')
    events = _collect(cis.co.list_namespaced_custom_object, GROUP, VERSION, namespace, CI_PLURAL, count=3, resource_version=start)
    assert [e['type'] for e in events] == ['MODIFIED', 'MODIFIED', 'DELETED']
    assert events[1]['object']['metadata']['deletionTimestamp']
    # The write that empties the finalizers deletes the stored object: DELETED carries that last stored state, finalizer
    # included, at a new resourceVersion.
    assert events[2]['object']['metadata']['finalizers'] == ['example.com/f']
    assert int(events[2]['object']['metadata']['resourceVersion']) > int(events[1]['object']['metadata']['resourceVersion'])


def test_watch_too_old_resource_version_is_410_expired(small_history_server):
    api = small_history_server.api_client()
    core = client.CoreV1Api(api)
    start = core.create_namespaced_config_map('default', {'metadata': {'name': 'old'}}).metadata.resource_version
    for i in range(10):
        core.patch_namespaced_config_map('old', 'default', {'data': {'i': str(i)}})
    resp = core.list_namespaced_config_map('default', watch=True, resource_version=start, timeout_seconds=5, _preload_content=False)
    assert resp.status == 200
    lines = [json.loads(line) for line in resp.data.decode().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0]['type'] == 'ERROR'
    status = lines[0]['object']
    assert status['kind'] == 'Status' and status['code'] == 410 and status['reason'] == 'Expired'
    assert status['message'].startswith(f'too old resource version: {start} (')
    with pytest.raises(client.ApiException) as info:
        _collect(core.list_namespaced_config_map, 'default', count=1, timeout=5, resource_version=start)
    assert info.value.status == 410
    # A resourceVersion still in the window works.
    recent = core.read_namespaced_config_map('old', 'default').metadata.resource_version
    core.patch_namespaced_config_map('old', 'default', {'data': {'i': 'last'}})
    events = _collect(core.list_namespaced_config_map, 'default', count=1, resource_version=recent)
    assert events[0]['object'].data == {'i': 'last'}
    api.close()


def test_legacy_watch_path(kube, api_client, namespace):
    # /api/v1/watch/... is deprecated upstream but still served; the stand-in keeps it for old clients. Only 'lw' (ROOT_CA).
    core = client.CoreV1Api(api_client)
    start = core.create_namespaced_config_map(namespace, {'metadata': {'name': 'lw'}}).metadata.resource_version
    core.delete_namespaced_config_map('lw', namespace)
    req = api_client.param_serialize('GET', f'/api/v1/watch/namespaces/{namespace}/configmaps',
                                     query_params=[('resourceVersion', start), ('timeoutSeconds', '1'), ('fieldSelector', 'metadata.name=lw')],
                                     auth_settings=['BearerToken'])
    resp = api_client.call_api(*req)
    resp.read()
    assert [json.loads(line)['type'] for line in resp.data.decode().splitlines()] == ['DELETED']
