"""B2 event source: latency from a write to its event, initial sync of 10,000 instances, peak RSS.

The source is extensions/eda/plugins/event_source/computeinstances.py, run through ``main(queue, args)`` as
ansible-rulebook runs it. Every party is a process of its own, so that none steals the others' interpreter and the RSS
figure is the source's alone (all timestamps are CLOCK_MONOTONIC, which is system-wide):

- the kubeapi stand-in (``--role serve``), loading instances straight into its store on request;
- the source (``--role source``): its queue records the time each action event is put on it, then drops the event, as a
  rule engine consuming it at once would;
- the baseline (``--role watch`` / ``--role list``): a raw aiohttp LIST then WATCH of the same namespace that only decodes
  the JSON lines (the least any client must do), and a plain LIST of all instances in one request;
- this driver, which sends the writes.

Latency: with ``--instances`` reconciled instances present, ``--rate`` writes per second for ``--duration`` seconds, each
a status patch giving one instance a new desiredConfigVersion (what the operator writes after a spec change), so each
write needs exactly one ``provision`` event. Measured from just before the write is sent to the event being put on the
queue (baseline: to the MODIFIED line being decoded). Sync: ``--sync-instances`` instances that all need provisioning,
from the call of main() until the last of their events is on the queue; baseline a plain LIST of them. Peak RSS:
ru_maxrss of the source process over the sync run.

Run from the repo root: ``.venv/bin/python bench/event_source_bench.py [--runs 3]``. Targets are printed, never asserted:
the script exits 0 unless a process fails.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / '.build'))

GROUP = 'cloudkit.openshift.io'
VERSION = 'v1alpha1'
LATENCY_NAMESPACE = 'latency'
SYNC_NAMESPACE = 'sync'
TARGETS = {'p50': 0.050, 'p99': 0.250, 'sync': 5.0, 'rss': 150.0}
# A safety net for a stuck process, not a measurement.
PATIENCE = 120


# --------------------------------------------------------------------------------------------------- the roles
def serve(workdir: Path) -> int:
    """The API stand-in; loads instances on ``{"load": [namespace, count, reconciled]}`` lines from stdin."""
    from tests.stack.kubeapi import DEFAULT_CRD_DIR, KubeAPIServer  # pylint: disable=import-outside-toplevel

    server = KubeAPIServer(crd_paths=[DEFAULT_CRD_DIR]).start()
    try:
        server.write_kubeconfig(workdir / 'kubeconfig')
        print(json.dumps({'ready': True}), flush=True)
        for command in sys.stdin:
            namespace, count, reconciled = json.loads(command)['load']
            began = time.perf_counter()
            server.call(load_instances, server.api, namespace, count, reconciled)
            print(json.dumps({'seconds': time.perf_counter() - began}), flush=True)
    finally:
        server.stop()
    return 0


def load_instances(api, namespace: str, count: int, reconciled: bool) -> None:
    """Create ``count`` ComputeInstances straight in the store (on the server's loop), with the status the operator writes."""
    namespaces = api.store.types[('', 'namespaces')]
    api.create_object(namespaces, None, {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': namespace}})
    rtype = api.store.types[(GROUP, 'computeinstances')]
    for number in range(count):
        version = f'{number:016x}'
        annotations = {f'{GROUP}/reconciled-config-version': version} if reconciled else {}
        entry = api.create_object(rtype, namespace, {
            'metadata': {'name': f'ci-{number:05d}', 'annotations': annotations, 'finalizers': [f'{GROUP}/computeinstance']},
            'spec': {'templateID': 'cloudkit.templates.ocp_virt_vm', 'templateParameters': json.dumps({'cpu_cores': 2, 'memory': '2Gi'})}})
        status = {'phase': 'Progressing', 'tenantReference': {'name': 'acme', 'namespace': namespace}, 'desiredConfigVersion': version}
        api.update_object(rtype, entry, dict(entry.obj, status=status), 'status')


class RecordingQueue(asyncio.Queue):
    """Notes when each event is put and what it is about, then drops it (the rule engine would consume it at once)."""

    def __init__(self, expect: int):
        super().__init__()
        self.expect = expect
        self.records: list = []
        self.connected = asyncio.Event()
        self.complete = asyncio.Event()

    async def put(self, item):
        if 'heartbeat' in item:
            if all(item['heartbeat']['connected'].values()):
                self.connected.set()
            return
        if 'action' in item:
            self.records.append((time.monotonic(), item['identity']['name'], item['identity']['desired_config_version']))
            if self.expect and len(self.records) >= self.expect:
                self.complete.set()


async def until_set(event: asyncio.Event, task: asyncio.Task) -> None:
    """Wait for ``event``; the source ending first (it only ends on an error) raises that error at once."""
    waiter = asyncio.create_task(event.wait())
    await asyncio.wait((waiter, task), timeout=PATIENCE, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()
        raise RuntimeError('the source ended on its own')
    if not event.is_set():
        raise RuntimeError(f'the source did not get there within {PATIENCE} s')


async def run_source(kubeconfig: str, namespace: str, expect: int) -> dict:
    """The source until ``expect`` events arrived (sync) or "stop" arrives on stdin (latency)."""
    began = time.monotonic()
    # Imported here so that the import is timed and the RSS of the imports alone can be reported.
    from ansible_collections.cloudkit.provisioning.extensions.eda.plugins.event_source import computeinstances  # pylint: disable=import-outside-toplevel
    imported = time.monotonic()
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue = RecordingQueue(expect)
    args = {'namespaces': [namespace], 'kubeconfig': kubeconfig, 'heartbeat': 0 if expect else 0.5}
    started = time.monotonic()
    task = asyncio.create_task(computeinstances.main(queue, args))
    await until_set(queue.complete if expect else queue.connected, task)
    if not expect:
        print(json.dumps({'ready': True}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return {'import_seconds': imported - began, 'sync_seconds': queue.records[-1][0] - started if expect else None,
            'events': queue.records if not expect else len(queue.records), 'rss_imports_kb': rss_imports}


def _connection(kubeconfig: str) -> tuple[str, dict]:
    """(server URL, auth headers) from the stand-in's kubeconfig (a bearer token)."""
    loaded = yaml.safe_load(Path(kubeconfig).read_text(encoding='utf-8'))
    return loaded['clusters'][0]['cluster']['server'], {'Authorization': f'Bearer {loaded["users"][0]["user"]["token"]}'}


async def run_watch(kubeconfig: str, namespace: str) -> dict:
    """Baseline: LIST, then WATCH from its resourceVersion, decoding every line, until "stop" arrives on stdin."""
    server, headers = _connection(kubeconfig)
    url = f'{server}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/computeinstances'
    records = []
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(url) as resp:
            version = (await resp.json())['metadata']['resourceVersion']

        async def watch():
            params = {'watch': 'true', 'resourceVersion': version, 'allowWatchBookmarks': 'true', 'timeoutSeconds': str(PATIENCE)}
            async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=None)) as resp:
                print(json.dumps({'ready': True}), flush=True)
                async for chunk in resp.content:
                    event = json.loads(chunk)
                    if event['type'] == 'MODIFIED':
                        obj = event['object']
                        records.append((time.monotonic(), obj['metadata']['name'], obj['status']['desiredConfigVersion']))
        task = asyncio.create_task(watch())
        await asyncio.to_thread(sys.stdin.readline)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {'events': records}


async def run_list(kubeconfig: str, namespace: str) -> dict:
    """Baseline: one plain LIST of the namespace's instances, decoded."""
    server, headers = _connection(kubeconfig)
    began = time.monotonic()
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f'{server}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/computeinstances') as resp:
            items = (await resp.json())['items']
    return {'list_seconds': time.monotonic() - began, 'items': len(items)}


def run_role(args) -> int:
    """One of the child processes: print its result (and its peak RSS) as the last line of JSON."""
    if args.role == 'serve':
        return serve(Path(args.workdir))
    if args.role == 'source':
        result = asyncio.run(run_source(args.kubeconfig, args.namespace, args.expect))
    elif args.role == 'watch':
        result = asyncio.run(run_watch(args.kubeconfig, args.namespace))
    else:
        result = asyncio.run(run_list(args.kubeconfig, args.namespace))
    result['rss_kb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), flush=True)
    return 0


# -------------------------------------------------------------------------------------------------- the driver
class Child:
    """A role in a subprocess, talked to by JSON lines."""

    def __init__(self, role: str, *options: str):
        command = [sys.executable, str(Path(__file__).resolve()), '--role', role, *options]
        self.role = role
        self.proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # pylint: disable=consider-using-with

    def read(self) -> dict:
        """The next JSON line; a dead child is an error."""
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f'{self.role} process ended ({self.proc.wait()}) without an answer')
        return json.loads(answer)

    def send(self, message: dict | str) -> None:
        """One line to its stdin."""
        self.proc.stdin.write((message if isinstance(message, str) else json.dumps(message)) + '\n')
        self.proc.stdin.flush()

    def finish(self) -> dict:
        """Its final result (after "stop" where it waits for one)."""
        result = self.read()
        self.proc.stdin.close()
        self.proc.wait(PATIENCE)
        return result

    def kill(self) -> None:
        """Close its stdin (the end for every role), then terminate it if it has not ended within 10 s."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(10)


async def send_writes(kubeconfig: str, instances: int, rate: float, duration: float) -> dict:
    """Status patches at a steady rate, each a new desiredConfigVersion; {version: monotonic time before sending}."""
    server, headers = _connection(kubeconfig)
    headers['Content-Type'] = 'application/merge-patch+json'
    sent = {}
    count = int(rate * duration)
    async with aiohttp.ClientSession(headers=headers) as session:
        start = time.monotonic()
        for number in range(count):
            await asyncio.sleep(max(0.0, start + number / rate - time.monotonic()))
            version = f'b2{number:014x}'
            name = f'ci-{number % instances:05d}'
            url = f'{server}/apis/{GROUP}/{VERSION}/namespaces/{LATENCY_NAMESPACE}/computeinstances/{name}/status'
            sent[version] = time.monotonic()
            async with session.patch(url, data=json.dumps({'status': {'desiredConfigVersion': version}})) as resp:
                if resp.status != 200:
                    raise RuntimeError(f'write {number}: HTTP {resp.status} {await resp.text()}')
    return sent


def latencies(sent: dict, events: list) -> list:
    """Sorted seconds from each write to its event; a write without an event counts as infinitely late."""
    arrived = {}
    for when, _name, version in events:
        arrived.setdefault(version, when)
    return sorted(arrived[version] - began if version in arrived else math.inf for version, began in sent.items())


def percentile(samples: list, fraction: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    return samples[max(0, math.ceil(fraction * len(samples)) - 1)]


def latency_phase(kubeconfig: str, args) -> dict:
    """Source and baseline watch the latency namespace side by side while the writes go in."""
    source = Child('source', '--kubeconfig', kubeconfig, '--namespace', LATENCY_NAMESPACE)
    watch = Child('watch', '--kubeconfig', kubeconfig, '--namespace', LATENCY_NAMESPACE)
    try:
        source.read()
        watch.read()
        # Both have connected; give the watch requests time to be streaming before the first write.
        time.sleep(0.5)
        sent = asyncio.run(send_writes(kubeconfig, args.instances, args.rate, args.duration))
        time.sleep(1.0)
        source.send('stop')
        watch.send('stop')
        ours, base = source.finish(), watch.finish()
    finally:
        source.kill()
        watch.kill()
    return {'ours': latencies(sent, ours['events']), 'baseline': latencies(sent, base['events']), 'rss_kb': ours['rss_kb']}


def sync_phase(kubeconfig: str, args) -> dict:
    """Fresh source processes syncing the sync namespace, alternating with plain LISTs of it."""
    ours, base = [], []
    for _run in range(args.runs):
        source = Child('source', '--kubeconfig', kubeconfig, '--namespace', SYNC_NAMESPACE, '--expect', str(args.sync_instances))
        try:
            ours.append(source.finish())
        finally:
            source.kill()
        lister = Child('list', '--kubeconfig', kubeconfig, '--namespace', SYNC_NAMESPACE)
        try:
            base.append(lister.finish())
        finally:
            lister.kill()
        if ours[-1]['events'] != args.sync_instances or base[-1]['items'] != args.sync_instances:
            raise RuntimeError(f'sync saw {ours[-1]["events"]} events and the LIST {base[-1]["items"]} items, not {args.sync_instances}')
    return {'ours': ours, 'baseline': base}


def figure(label: str, ours: float, base: float, unit: str, limit: float) -> str:
    """One figure against its baseline and target (values in ``unit``)."""
    digits = 2 if unit == 's' else 1 if unit == 'ms' else 0
    target = f'<= {limit:g} {unit}'
    return (f'B2 {label:18} ours {ours:8.{digits}f} {unit:2}   baseline {base:8.{digits}f} {unit:2}   ratio {ours / base:5.2f}'
            f'   target {target:10} {"ok" if ours <= limit else "MISS"}')


def report(args, lat: dict, sync: dict, load_seconds: float) -> None:
    """The figures, one line each, then the context."""
    print(f'B2 event source: {args.instances} instances present, {args.rate:g} writes/s for {args.duration:g} s ({len(lat["ours"])} writes);'
          f' sync of {args.sync_instances}, median of {args.runs} run(s)')
    for label, fraction in (('p50', 0.50), ('p99', 0.99)):
        print(figure(f'latency {label}', percentile(lat['ours'], fraction) * 1000, percentile(lat['baseline'], fraction) * 1000, 'ms',
                     TARGETS[label] * 1000))
    print(figure(f'sync {args.sync_instances}', statistics.median(run['sync_seconds'] for run in sync['ours']),
                 statistics.median(run['list_seconds'] for run in sync['baseline']), 's', TARGETS['sync']))
    print(figure('peak RSS', max(run['rss_kb'] for run in sync['ours']) / 1024, max(run['rss_kb'] for run in sync['baseline']) / 1024, 'MB',
                 TARGETS['rss']))
    missed = [sum(1 for seconds in lat[side] if seconds == math.inf) for side in ('ours', 'baseline')]
    print(f'   writes without an event: ours {missed[0]}, baseline {missed[1]}; latency max ours {lat["ours"][-1] * 1000:.1f} ms,'
          f' baseline {lat["baseline"][-1] * 1000:.1f} ms')
    print(f'   baseline: latency = raw aiohttp watch decoding each line; sync = one plain LIST of {args.sync_instances} decoded;'
          f' RSS = that LIST process')
    print(f'   source process: importing the source (its module_utils, the ansible-core argument checks, aiohttp; not kubernetes)'
          f' {statistics.median(run["import_seconds"] for run in sync["ours"]):.2f} s, RSS after imports'
          f' {statistics.median(run["rss_imports_kb"] for run in sync["ours"]) / 1024:.0f} MB; RSS with {args.instances} instances'
          f' {lat["rss_kb"] / 1024:.0f} MB; loading {args.sync_instances} instances into the stand-in took {load_seconds:.1f} s')


def main() -> int:
    """Run the driver, or one role when --role is given."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--runs', type=int, default=3, help='sync runs (fresh source process each, alternating with the LIST baseline)')
    parser.add_argument('--instances', type=int, default=1000, help='instances present during the latency phase')
    parser.add_argument('--rate', type=float, default=20.0, help='writes per second during the latency phase')
    parser.add_argument('--duration', type=float, default=15.0, help='seconds of writes')
    parser.add_argument('--sync-instances', type=int, default=10000, help='instances of the sync phase')
    parser.add_argument('--role', choices=('serve', 'source', 'watch', 'list'), help=argparse.SUPPRESS)
    parser.add_argument('--workdir', help=argparse.SUPPRESS)
    parser.add_argument('--kubeconfig', help=argparse.SUPPRESS)
    parser.add_argument('--namespace', help=argparse.SUPPRESS)
    parser.add_argument('--expect', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        return run_role(args)
    with tempfile.TemporaryDirectory(prefix='bench-b2-') as workdir:
        server = Child('serve', '--workdir', workdir)
        try:
            server.read()
            kubeconfig = str(Path(workdir) / 'kubeconfig')
            server.send({'load': [LATENCY_NAMESPACE, args.instances, True]})
            server.read()
            lat = latency_phase(kubeconfig, args)
            server.send({'load': [SYNC_NAMESPACE, args.sync_instances, False]})
            load_seconds = server.read()['seconds']
            sync = sync_phase(kubeconfig, args)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f'B2 failed: {exc}', file=sys.stderr)
            return 1
        finally:
            server.kill()
    report(args, lat, sync, load_seconds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
