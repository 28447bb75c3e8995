"""The stand-in's fault switch, through the Python API and the admin endpoint (skipped on a real cluster)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import urllib3
from kubernetes import client

from tests.contract.helpers import error_body


def _admin(server, method: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + '/_admin/faults', data=data, method=method,
                                 headers={'Authorization': f'Bearer {token or server.token}', 'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize('code,reason', [(500, 'InternalError'), (429, 'TooManyRequests'), (409, 'Conflict')])
def test_error_rate_one_fails_every_request(stand_in, api_client, namespace, code, reason):
    core = client.CoreV1Api(api_client)
    stand_in.faults.set(error_rate=1.0, error_codes=(code,))
    # A POST: urllib3 itself retries idempotent requests that get 429 + Retry-After, which would only slow this down.
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(namespace, {'metadata': {'name': 'x'}})
    assert info.value.status == code
    body = error_body(info.value)
    assert body['kind'] == 'Status' and body['reason'] == reason and body['code'] == code
    if code == 429:
        assert info.value.headers['Retry-After'] == '1'
    stand_in.faults.clear()
    assert core.read_namespace('default').metadata.name == 'default'


def test_fault_filters_by_method_and_path(stand_in, api_client, namespace):
    core = client.CoreV1Api(api_client)
    stand_in.faults.set(error_rate=1.0, error_codes=(500,), methods=['POST'], path_regex='/configmaps')
    assert core.read_namespace(namespace).metadata.name == namespace
    core.create_namespaced_secret(namespace, {'metadata': {'name': 'fine'}})
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(namespace, {'metadata': {'name': 'nope'}})
    assert info.value.status == 500


def test_conflicts_on_writes_only(stand_in, api_client, namespace):
    core = client.CoreV1Api(api_client)
    stand_in.faults.set(error_rate=1.0, error_codes=(409,), conflicts_on_writes_only=True)
    assert core.read_namespace(namespace).metadata.name == namespace, 'a read is never answered 409'
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_config_map(namespace, {'metadata': {'name': 'x'}})
    assert info.value.status == 409
    stand_in.faults.set(error_rate=1.0, error_codes=(409, 500), conflicts_on_writes_only=True)
    with pytest.raises(client.ApiException) as info:
        core.read_namespace(namespace)
    assert info.value.status == 500, 'a read picked for a 409 gets another of the codes'
    stand_in.faults.clear()  # before the namespace fixture deletes its namespace


def test_partial_error_rate_is_seedable(stand_in, api_client):
    core = client.CoreV1Api(api_client)

    def failures():
        count = 0
        for _attempt in range(40):
            try:
                core.read_namespace('default')
            except client.ApiException:
                count += 1
        return count
    stand_in.faults.set(error_rate=0.5, error_codes=(500, 409), seed=7)
    first = failures()
    stand_in.faults.set(error_rate=0.5, error_codes=(500, 409), seed=7)
    assert failures() == first
    assert 5 <= first <= 35


def test_latency(stand_in, api_client):
    core = client.CoreV1Api(api_client)
    stand_in.faults.set(latency=0.3)
    began = time.monotonic()
    core.read_namespace('default')
    assert time.monotonic() - began >= 0.3


def test_watch_streams_are_cut(stand_in, api_client, namespace):
    core = client.CoreV1Api(api_client)
    stand_in.faults.set(cut_watches_after=0.3)
    resp = core.list_namespaced_config_map(namespace, watch=True, timeout_seconds=30, _preload_content=False)
    began = time.monotonic()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for _chunk in resp.stream(1024):
            pass
    assert time.monotonic() - began < 10


def test_admin_endpoint(stand_in, api_client):
    core = client.CoreV1Api(api_client)
    status, body = _admin(stand_in, 'PUT', {'error_rate': 1.0, 'error_codes': [500], 'path_regex': '^/api/v1/namespaces/default$'})
    assert status == 200 and body['error_rate'] == 1.0 and body['error_codes'] == [500]
    assert _admin(stand_in, 'GET') == (200, body)  # faults never apply to admin calls
    with pytest.raises(client.ApiException) as info:
        core.read_namespace('default')
    assert info.value.status == 500
    assert core.read_namespace('kube-system').metadata.name == 'kube-system'
    assert _admin(stand_in, 'PUT', {'error_rate': 2})[0] == 400
    assert _admin(stand_in, 'GET', token='wrong')[0] == 401
    status, body = _admin(stand_in, 'DELETE')
    assert status == 200 and body['error_rate'] == 0.0
    assert core.read_namespace('default').metadata.name == 'default'
