"""The fault switch (of the stand-in, or of the proxy in front of kube-apiserver), through the Python API and the admin
endpoint (skipped on a user's cluster)."""
from __future__ import annotations

import time

import pytest
import urllib3
from kubernetes import client

from tests.contract.helpers import admin_call, error_body


def _admin(server, method: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    return admin_call(server, method, '/_admin/faults', body, token)


@pytest.mark.parametrize('code,reason', [(500, 'InternalError'), (429, 'TooManyRequests'), (409, 'Conflict')])
def test_error_rate_one_fails_every_request(instrumented_api, api_client, namespace, code, reason):
    core = client.CoreV1Api(api_client)
    instrumented_api.faults.set(error_rate=1.0, error_codes=(code,))
    # A POST: urllib3 itself retries idempotent requests that get 429 + Retry-After, which would only slow this down.
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(namespace, {'metadata': {'name': 'x'}})
    assert info.value.status == code
    body = error_body(info.value)
    assert body['kind'] == 'Status' and body['reason'] == reason and body['code'] == code
    if code == 429:
        assert info.value.headers['Retry-After'] == '1'
    instrumented_api.faults.clear()
    assert core.read_namespace('default').metadata.name == 'default'


def test_fault_filters_by_method_and_path(instrumented_api, api_client, namespace):
    core = client.CoreV1Api(api_client)
    instrumented_api.faults.set(error_rate=1.0, error_codes=(500,), methods=['POST'], path_regex='/configmaps')
    assert core.read_namespace(namespace).metadata.name == namespace
    core.create_namespaced_secret(namespace, {'metadata': {'name': 'fine'}})
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(namespace, {'metadata': {'name': 'nope'}})
    assert info.value.status == 500


def test_conflicts_on_writes_only(instrumented_api, api_client, namespace):
    core = client.CoreV1Api(api_client)
    instrumented_api.faults.set(error_rate=1.0, error_codes=(409,), conflicts_on_writes_only=True)
    assert core.read_namespace(namespace).metadata.name == namespace, 'a read is never answered 409'
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(namespace, {'metadata': {'name': 'x'}})
    assert info.value.status == 409
    instrumented_api.faults.set(error_rate=1.0, error_codes=(409, 500), conflicts_on_writes_only=True)
    with pytest.raises(client.ApiException) as info:
        core.read_namespace(namespace)
    assert info.value.status == 500, 'a read picked for a 409 gets another of the codes'
    instrumented_api.faults.clear()  # before the namespace fixture deletes its namespace


def test_partial_error_rate_is_seedable(instrumented_api, api_client):
    core = client.CoreV1Api(api_client)

    def failures():
        count = 0
        for _attempt in range(40):
            try:
                core.read_namespace('default')
            except client.ApiException:
                count += 1
        return count
    instrumented_api.faults.set(error_rate=0.5, error_codes=(500, 409), seed=7)
    first = failures()
    instrumented_api.faults.set(error_rate=0.5, error_codes=(500, 409), seed=7)
    assert failures() == first
    assert 5 <= first <= 35


def test_latency(instrumented_api, api_client):
    core = client.CoreV1Api(api_client)
    instrumented_api.faults.set(latency=0.3)
    began = time.monotonic()
    core.read_namespace('default')
    assert time.monotonic() - began >= 0.3


def test_watch_streams_are_cut(instrumented_api, api_client, namespace):
    core = client.CoreV1Api(api_client)
    instrumented_api.faults.set(cut_watches_after=0.3)
    resp = core.list_namespaced_config_map(namespace, watch=True, timeout_seconds=30, _preload_content=False)
    began = time.monotonic()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for _chunk in resp.stream(1024):
            pass
    assert time.monotonic() - began < 10


def test_admin_endpoint(instrumented_api, api_client):
    core = client.CoreV1Api(api_client)
    status, body = _admin(instrumented_api, 'PUT', {'error_rate': 1.0, 'error_codes': [500], 'path_regex': '^/api/v1/namespaces/default$'})
    assert status == 200 and body['error_rate'] == 1.0 and body['error_codes'] == [500]
    assert _admin(instrumented_api, 'GET') == (200, body)  # faults never apply to admin calls
    with pytest.raises(client.ApiException) as info:
        core.read_namespace('default')
    assert info.value.status == 500
    assert core.read_namespace('kube-system').metadata.name == 'kube-system'
    assert _admin(instrumented_api, 'PUT', {'error_rate': 2})[0] == 400
    assert _admin(instrumented_api, 'GET', token='wrong')[0] == 401
    status, body = _admin(instrumented_api, 'DELETE')
    assert status == 200 and body['error_rate'] == 0.0
    assert core.read_namespace('default').metadata.name == 'default'
