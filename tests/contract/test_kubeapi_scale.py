"""Scale smoke tests: a 10,000-object LIST and 200 concurrent watches, checked for correctness only (timings belong
in bench/kubeapi_bench.py)."""
from __future__ import annotations

import asyncio
import json
import ssl
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from kubernetes import client

COUNT = 10000
WATCHES = 200


def _bulk_create(kube, api_client, namespace: str, count: int) -> None:
    """Create ConfigMaps quickly: straight into the stand-in's store, or over HTTP with threads on kube-apiserver or a real cluster."""
    if kube.backend == 'stand-in':
        api = kube.server.api
        rtype = api.store.types[('', 'configmaps')]

        def load():
            for i in range(count):
                api.create_object(rtype, namespace, {'metadata': {'name': f'cm-{i:05d}', 'labels': {'bulk': 'yes'}}, 'data': {'i': str(i)}})
        kube.server.call(load)
        return
    core = client.CoreV1Api(api_client)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: core.create_namespaced_config_map(namespace, {'metadata': {'name': f'cm-{i:05d}', 'labels': {'bulk': 'yes'}},
                                                                              'data': {'i': str(i)}}), range(count)))


def test_list_ten_thousand_objects(kube, api_client, namespace):
    _bulk_create(kube, api_client, namespace, COUNT)
    core = client.CoreV1Api(api_client)
    resp = core.list_namespaced_config_map(namespace, label_selector='bulk=yes', _preload_content=False)
    body = json.loads(resp.data)
    assert body['kind'] == 'ConfigMapList' and len(body['items']) == COUNT
    assert [i['metadata']['name'] for i in body['items']] == [f'cm-{i:05d}' for i in range(COUNT)]
    assert body['items'][1234]['data'] == {'i': '1234'}
    seen, token = 0, None
    while True:
        resp = core.list_namespaced_config_map(namespace, label_selector='bulk=yes', limit=2500, _continue=token, _preload_content=False)
        page = json.loads(resp.data)
        seen += len(page['items'])
        token = page['metadata'].get('continue')
        if not token:
            break
    assert seen == COUNT
    selected = json.loads(core.list_namespaced_config_map(namespace, field_selector='metadata.name=cm-09999', _preload_content=False).data)
    assert [i['metadata']['name'] for i in selected['items']] == ['cm-09999']


def _connection(api_client: client.ApiClient) -> tuple[str, dict, ssl.SSLContext | bool]:
    cfg = api_client.configuration
    headers = {}
    auth = cfg.auth_settings().get('BearerToken')
    if auth and auth.get('value'):
        headers['Authorization'] = auth['value']
    ctx: ssl.SSLContext | bool = False
    if cfg.host.startswith('https'):
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.verify_ssl else ssl._create_unverified_context()  # pylint: disable=protected-access
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return cfg.host, headers, ctx


def test_two_hundred_concurrent_watches_all_see_the_event(kube, api_client, namespace):
    host, headers, ctx = _connection(api_client)
    core = client.CoreV1Api(api_client)
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    url = f'{host}/api/v1/namespaces/{namespace}/configmaps'

    async def run():
        connected = 0
        all_connected = asyncio.Event()
        async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=0, ssl=ctx)) as session:
            async def one():
                nonlocal connected
                params = {'watch': '1', 'resourceVersion': start, 'timeoutSeconds': '30', 'allowWatchBookmarks': 'false'}
                async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=40)) as resp:
                    assert resp.status == 200
                    connected += 1
                    if connected == WATCHES:
                        all_connected.set()
                    async for line in resp.content:
                        event = json.loads(line)
                        if event['type'] == 'ADDED' and event['object']['metadata']['name'] == 'fanout':
                            return event['object']['metadata']['resourceVersion']
                return None
            tasks = [asyncio.create_task(one()) for _attempt in range(WATCHES)]
            await asyncio.wait_for(all_connected.wait(), 20)
            if kube.backend == 'stand-in':
                assert len(kube.server.api.store.watchers[('', 'configmaps')]) >= WATCHES
            loop = asyncio.get_running_loop()
            made = await loop.run_in_executor(None, lambda: core.create_namespaced_config_map(namespace, {'metadata': {'name': 'fanout'}}))
            got = await asyncio.wait_for(asyncio.gather(*tasks), 30)
            return made.metadata.resource_version, got
    created_rv, got = asyncio.run(run())
    assert got == [created_rv] * WATCHES
