"""Benchmark of the kubeapi stand-in: LIST 10k, GET throughput, POST throughput, 200-watch fan-out latency.

Run from the repo root: ``.venv/bin/python bench/kubeapi_bench.py [--in-process]``. The server runs in its own process
(``python -m tests.stack.kubeapi``) unless --in-process is given. Every figure is printed next to a baseline measured
in the same run, as a ratio; nothing is asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import urllib3
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.stack.kubeapi import KubeAPIServer  # noqa: E402  pylint: disable=wrong-import-position


def start_server(in_process: bool, workdir: str):
    """(url, token, stopper) of a fresh server."""
    kubeconfig = os.path.join(workdir, 'kubeconfig')
    if in_process:
        server = KubeAPIServer(crd_paths=[ROOT / 'tests' / 'stack' / 'crds']).start()
        server.write_kubeconfig(kubeconfig)
        return kubeconfig, server.stop
    proc = subprocess.Popen([sys.executable, '-m', 'tests.stack.kubeapi', '--kubeconfig', kubeconfig],  # pylint: disable=consider-using-with
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()

    def stop():
        proc.terminate()
        proc.wait(10)
    return kubeconfig, stop


def timed(func, repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    samples = []
    for _attempt in range(repeat):
        began = time.perf_counter()
        func()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


async def _concurrent(session: aiohttp.ClientSession, method: str, urls, concurrency: int, body_for=None) -> float:
    """Requests per second issuing ``urls`` with ``concurrency`` workers."""
    queue = list(urls)
    count = len(queue)

    async def worker():
        while queue:
            url = queue.pop()
            kwargs = {'json': body_for(url)} if body_for else {}
            async with session.request(method, url, **kwargs) as resp:
                await resp.read()
                if resp.status >= 300:
                    raise RuntimeError(f'{method} {url}: {resp.status}')
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _attempt in range(concurrency)))
    return count / (time.perf_counter() - began)


async def http_figures(host: str, token: str, namespace: str, ca_file: str) -> dict:
    """Bulk load, GET throughput vs /healthz, 200-watch fan-out."""
    out = {}
    headers = {'Authorization': f'Bearer {token}'}
    connector = aiohttp.TCPConnector(limit=0, ssl=ssl.create_default_context(cafile=ca_file))
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        base = f'{host}/api/v1/namespaces/{namespace}/configmaps'
        names = [f'cm-{i:05d}' for i in range(10000)]
        out['post_per_s'] = await _concurrent(session, 'POST', [f'{base}#{n}' for n in names], 16,
                                              lambda url: {'metadata': {'name': url.split('#')[1], 'labels': {'b': 'y'}}, 'data': {'k': url}})
        out['healthz_per_s'] = await _concurrent(session, 'GET', [f'{host}/healthz'] * 3000, 8)
        out['get_per_s'] = await _concurrent(session, 'GET', [f'{base}/{n}' for n in names[:3000]], 8)
        out['fanout_s'] = await fanout(session, host, namespace, 200)
        out['fanout_1_s'] = await fanout(session, host, namespace, 1)
    return out


async def fanout(session: aiohttp.ClientSession, host: str, namespace: str, watches: int) -> float:
    """Median seconds from a create being sent until all ``watches`` watchers have its ADDED event."""
    url = f'{host}/api/v1/namespaces/{namespace}/secrets'
    samples = []
    for round_no in range(5):
        name = f'fan-{watches}-{round_no}'
        connected = asyncio.Event()
        count = 0

        async def one(name=name, connected=connected):
            nonlocal count
            async with session.get(url, params={'watch': '1', 'timeoutSeconds': '60'}) as resp:
                count += 1
                if count == watches:
                    connected.set()
                async for line in resp.content:
                    if json.loads(line)['object']['metadata']['name'] == name:
                        return time.perf_counter()
            return None
        tasks = [asyncio.create_task(one()) for _attempt in range(watches)]
        await asyncio.wait_for(connected.wait(), 30)
        await asyncio.sleep(0.05)
        began = time.perf_counter()
        async with session.post(url, json={'metadata': {'name': name}}) as resp:
            assert resp.status == 201
        ends = await asyncio.wait_for(asyncio.gather(*tasks), 30)
        samples.append(max(ends) - began)
        count = 0
    return statistics.median(samples)


def main() -> int:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--in-process', action='store_true', help='run the server on a thread of this process')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        kubeconfig, stop = start_server(args.in_process, workdir)
        try:
            api = config.new_client_from_config(kubeconfig)
            core = client.CoreV1Api(api)
            token = api.configuration.auth_settings()['BearerToken']['value'].split(' ', 1)[1]
            for ns in ('bench', 'small'):
                core.create_namespace({'metadata': {'name': ns}})
            for i in range(100):
                core.create_namespaced_config_map('small', {'metadata': {'name': f's{i:03d}'}, 'data': {'k': str(i)}})
            figures = asyncio.run(http_figures(api.configuration.host, token, 'bench', api.configuration.ssl_ca_cert))

            def list_big():
                body = core.list_namespaced_config_map('bench', _preload_content=False).data
                assert body.count(b'"kind":"ConfigMap"') == 10000

            def list_small():
                core.list_namespaced_config_map('small', _preload_content=False).read()

            def get_one():
                core.read_namespaced_config_map('s001', 'small', _preload_content=False).read()
            http = urllib3.PoolManager(ca_certs=api.configuration.ssl_ca_cert)
            list_10k = timed(list_big, 7)
            list_100 = timed(list_small, 50)
            list_10k_typed = timed(lambda: core.list_namespaced_config_map('bench'), 1)
            get_client = timed(get_one, 500)
            healthz_client = timed(lambda: http.request('GET', api.configuration.host + '/healthz').data, 500)
        finally:
            stop()
    mode = 'in-process thread' if args.in_process else 'separate process'
    print(f'kubeapi benchmark (server: {mode}, python {sys.version.split()[0]})')
    print(f'  LIST 10k ConfigMaps, raw (_preload_content=False): {list_10k * 1000:8.1f} ms'
          f'   baseline LIST 100 x 100 = {list_100 * 100 * 1000:.1f} ms  ratio {list_10k / (list_100 * 100):.2f}')
    print(f'  LIST 10k ConfigMaps, typed models (client-side cost): {list_10k_typed * 1000:8.1f} ms')
    print(f'  GET via kubernetes client, sequential: {1 / get_client:8.0f} req/s   baseline /healthz via urllib3 {1 / healthz_client:.0f} req/s'
          f'  ratio {healthz_client / get_client:.2f}')
    print(f'  GET via aiohttp, 8 concurrent:        {figures["get_per_s"]:8.0f} req/s   baseline /healthz {figures["healthz_per_s"]:.0f} req/s'
          f'  ratio {figures["get_per_s"] / figures["healthz_per_s"]:.2f}')
    print(f'  POST (create) via aiohttp, 16 concurrent: {figures["post_per_s"]:8.0f} req/s')
    print(f'  watch fan-out, create -> all 200 watchers got ADDED: {figures["fanout_s"] * 1000:8.1f} ms'
          f'   baseline 1 watcher {figures["fanout_1_s"] * 1000:.1f} ms  ratio {figures["fanout_s"] / figures["fanout_1_s"]:.1f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
