"""B1 playbook cost: wall time and API requests of the create and the delete job for ONE ComputeInstance.

Ours are playbooks/create_compute_instance.yml and playbooks/delete_compute_instance.yml; the baseline is
bench/baseline/create.yml and delete.yml, the same steps as plain kubernetes.core tasks (read instance and Tenant, add
the finalizer, status Progressing, create the cloud-init Secret, DataVolume, VirtualMachine and Service, wait for the VM
to be Ready, status Ready and the reconciled-config-version annotation; delete: status Deleting, stop the VM and wait for
its VMI to go, delete the objects and wait until they are gone, remove the finalizer).

Both run as the AAP job would, as ansible-playbook subprocesses with the instance in ``ansible_eda.event.payload``, against
the kubeapi stand-in and the KubeVirt stand-in (VM Ready at once) on threads of this process. Each job gets a fresh TMPDIR,
as in a new job container, so kubernetes.core's discovery cache starts cold for the baseline as it would in AAP. Each round
runs both sides, alternating which goes first; figures are medians.

Requests are counted by a middleware on the stand-in's aiohttp app: every request (GET, LIST, WATCH, discovery and
writes; a watch counts once). The jobs reach the server as 127.0.0.1 and the KubeVirt stand-in and this script's own
client as localhost, so the Host header tells the job's requests apart.

Run from the repo root: ``.venv/bin/python bench/playbook_cost.py [--runs 3]``. Targets are printed, never asserted: the
script exits 0 unless a job fails.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import yaml
from aiohttp import web
from kubernetes import config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / '.build'))

# pylint: disable=wrong-import-position
from tests.integration.instances import Operator  # noqa: E402
from tests.stack.kubeapi import DEFAULT_CRD_DIR, KubeAPIServer  # noqa: E402
from tests.stack.kubevirt import KubeVirtController  # noqa: E402
# pylint: enable=wrong-import-position

BIN = Path(sys.executable).parent
GROUP = 'cloudkit.openshift.io'
NAMESPACE = 'bench'
VM_NAMESPACE = 'bench-vms'
TENANT = 'acme'
# The seed-era parameters of tests/stack/seed.py: 4 objects (cloud-init Secret, DataVolume, VirtualMachine, Service).
PARAMETERS = {'cpu_cores': 2, 'memory': '2Gi', 'disk_size': '10Gi', 'image': 'quay.io/containerdisks/fedora:40', 'exposed_ports': '22/tcp'}
PLAYBOOKS = {
    ('ours', 'create'): ROOT / 'playbooks' / 'create_compute_instance.yml',
    ('ours', 'delete'): ROOT / 'playbooks' / 'delete_compute_instance.yml',
    ('baseline', 'create'): ROOT / 'bench' / 'baseline' / 'create.yml',
    ('baseline', 'delete'): ROOT / 'bench' / 'baseline' / 'delete.yml',
}
TARGET_CREATE_RATIO = 0.6
TARGET_CREATE_REQUESTS = 15
EMPTY_PLAY = [{'name': 'Nothing', 'hosts': 'localhost', 'connection': 'local', 'gather_facts': False, 'tasks': []}]


class RequestLog:
    """Every request the stand-in serves: (Host header, method, path, query), in arrival order."""

    def __init__(self):
        self.entries: list[tuple] = []

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        """Record, then hand on; runs on the server's loop, so appending needs no lock."""
        self.entries.append((request.host, request.method, request.path, dict(request.query)))
        return await handler(request)

    def install(self, server: KubeAPIServer) -> None:
        """Wrap the app the server is about to build (before start()) with the middleware."""
        make_app = server.api.make_app

        def counted_app() -> web.Application:
            app = make_app()
            app.middlewares.append(self.middleware)
            return app
        server.api.make_app = counted_app

    def since(self, mark: int, host: str) -> list[tuple]:
        """The requests after position ``mark`` sent to ``host``."""
        return [entry for entry in self.entries[mark:] if entry[0] == host]


def request_kind(method: str, path: str, query: dict) -> str:
    """DISCOVERY, WATCH, LIST or GET for reads (by path shape), else the HTTP method."""
    if method != 'GET':
        return method
    if query.get('watch') in ('1', 'true'):
        return 'WATCH'
    segments = [seg for seg in path.split('/') if seg]
    resource_at = 2 if segments[:1] == ['api'] else 3
    if path == '/version' or len(segments) <= resource_at:
        return 'DISCOVERY'
    rest = segments[resource_at:]
    if rest[0] == 'namespaces' and len(rest) >= 3:
        rest = rest[2:]
    return 'GET' if len(rest) >= 2 else 'LIST'


def task_times(junit_dir: Path) -> dict:
    """{task name: seconds} from the junit callback's report of one run (skipped tasks left out)."""
    times = {}
    for path in junit_dir.glob('*.xml'):
        for case in ET.parse(path).iter('testcase'):
            if case.find('skipped') is not None:
                continue
            # "[localhost] <play>: <role> : <task>": keep the task, which is what the playbooks name.
            name = case.get('name').split(': ', 1)[-1].split(' : ')[-1]
            times[name] = times.get(name, 0.0) + float(case.get('time'))
    return times


class Bench:
    """The stand-ins, the request log, and the runs of both sides."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.log = RequestLog()
        self.server = KubeAPIServer(crd_paths=[DEFAULT_CRD_DIR])
        self.log.install(self.server)
        self.server.start()
        self.job_kubeconfig = self.server.write_kubeconfig(workdir / 'kubeconfig-jobs')
        side = yaml.safe_load(Path(self.job_kubeconfig).read_text(encoding='utf-8'))
        side['clusters'][0]['cluster']['server'] = self.server.url.replace('127.0.0.1', 'localhost')
        side_kubeconfig = str(workdir / 'kubeconfig-stand-ins')
        Path(side_kubeconfig).write_text(yaml.safe_dump(side), encoding='utf-8')
        self.kubevirt = KubeVirtController(side_kubeconfig, ready_delay=0, import_delay=0).start()
        self.operator = Operator(config.new_client_from_config(side_kubeconfig), side_kubeconfig, GROUP)
        self.operator.ensure_namespace(NAMESPACE)
        self.operator.tenant(NAMESPACE, TENANT, VM_NAMESPACE)
        self.runs = 0

    def close(self) -> None:
        """Stop the stand-ins."""
        self.kubevirt.stop()
        self.server.stop()

    def run_job(self, playbook: Path, extra_vars: dict | None) -> dict:
        """One ansible-playbook run as a job: wall seconds, the requests it sent, per-task seconds."""
        self.runs += 1
        rundir = self.workdir / f'run-{self.runs}'
        (rundir / 'tmp').mkdir(parents=True)
        command = [str(BIN / 'ansible-playbook'), str(playbook)]
        if extra_vars is not None:
            (rundir / 'extra-vars.json').write_text(json.dumps(extra_vars), encoding='utf-8')
            command += ['-e', f'@{rundir / "extra-vars.json"}']
        env = dict(os.environ, K8S_AUTH_KUBECONFIG=self.job_kubeconfig, ANSIBLE_COLLECTIONS_PATH=str(ROOT / '.build'),
                   ANSIBLE_HOME=str(ROOT / '.ansible'), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', TMPDIR=str(rundir / 'tmp'),
                   ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
                   ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.junit', JUNIT_OUTPUT_DIR=str(rundir / 'junit'), JUNIT_HIDE_TASK_ARGUMENTS='true')
        mark = len(self.log.entries)
        began = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        wall = time.perf_counter() - began
        if result.returncode != 0:
            raise RuntimeError(f'{playbook} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}')
        requests = self.log.since(mark, self.server.url.split('//', 1)[1])
        return {'wall': wall, 'requests': len(requests), 'kinds': Counter(request_kind(*entry[1:]) for entry in requests),
                'tasks': task_times(rundir / 'junit'), 'trace': [entry[1:] for entry in requests]}

    def live(self, name: str) -> dict | None:
        """The ComputeInstance now, or None."""
        return self.operator.get(NAMESPACE, name)

    def create(self, side: str, name: str) -> dict:
        """The operator creates the instance; the side's create job provisions it; check the outcome."""
        instance = self.operator.create(NAMESPACE, name, PARAMETERS, tenant=TENANT)
        figures = self.run_job(PLAYBOOKS[side, 'create'], {'ansible_eda': {'event': {'payload': instance}}})
        live = self.live(name)
        annotations = live['metadata'].get('annotations') or {}
        if live['status'].get('phase') != 'Ready' or annotations.get(f'{GROUP}/reconciled-config-version') != live['status']['desiredConfigVersion']:
            raise RuntimeError(f'{side} create of {name} left phase {live["status"].get("phase")}, annotations {annotations}')
        return figures

    def delete(self, side: str, name: str) -> dict:
        """The operator deletes the instance; the side's delete job deprovisions it; the operator lets it go."""
        self.operator.delete(NAMESPACE, name)
        figures = self.run_job(PLAYBOOKS[side, 'delete'], {'ansible_eda': {'event': {'payload': self.live(name)}}})
        left = self.operator.objects(VM_NAMESPACE, self.live(name)['metadata']['uid'])
        if f'{GROUP}/computeinstance-aap' in self.live(name)['metadata']['finalizers'] or left:
            raise RuntimeError(f'{side} delete of {name} left the finalizer or objects {left}')
        self.operator.release(NAMESPACE, name)
        return figures

    def objects(self, name: str) -> dict:
        """The specs of an instance's Secret, DataVolume, VM and Service, its name and uid replaced, for comparison."""
        uid = self.live(name)['metadata']['uid']
        core, custom = self.operator.core, self.operator.custom
        found = {
            'Secret': core.read_namespaced_secret(f'{name}-cloud-init', VM_NAMESPACE).data,
            'DataVolume': custom.get_namespaced_custom_object('cdi.kubevirt.io', 'v1beta1', VM_NAMESPACE, 'datavolumes', f'{name}-root-disk')['spec'],
            'VirtualMachine': custom.get_namespaced_custom_object('kubevirt.io', 'v1', VM_NAMESPACE, 'virtualmachines', name)['spec'],
            'Service': core.api_client.sanitize_for_serialization(core.read_namespaced_service(f'{name}-load-balancer', VM_NAMESPACE).spec),
        }
        # Ours names the cluster's default StorageClass, the baseline leaves it to CDI (which picks the same default).
        found['DataVolume']['storage'].pop('storageClassName', None)
        # The cluster IP and the node ports are the server's pick.
        for field in ('clusterIP', 'clusterIPs'):
            found['Service'].pop(field, None)
        for port in found['Service'].get('ports') or []:
            port.pop('nodePort', None)
        return json.loads(json.dumps(found).replace(uid, 'UID').replace(f'"{name}', '"NAME'))


def context_figures(bench: Bench, workdir: Path) -> dict:
    """What a job pays besides its own work: ansible-playbook with an empty play, one trivial module task, and importing
    kubernetes.config in a fresh interpreter (what each kubernetes.core module of the baseline pays; our kubeconfig.py
    imports kubernetes only for exec or auth-provider kubeconfig users); medians of 3."""
    empty = workdir / 'empty.yml'
    empty.write_text(yaml.safe_dump(EMPTY_PLAY), encoding='utf-8')
    pings = workdir / 'ping.yml'
    play = dict(EMPTY_PLAY[0], tasks=[{'name': f'Ping {pos}', 'ansible.builtin.ping': {}} for pos in range(5)])
    pings.write_text(yaml.safe_dump([play]), encoding='utf-8')
    startup = statistics.median(bench.run_job(empty, None)['wall'] for _run in range(3))
    ping_tasks = [bench.run_job(pings, None)['tasks'] for _run in range(3)]
    per_ping = statistics.median(seconds for tasks in ping_tasks for seconds in tasks.values())
    code = 'import time; began = time.perf_counter(); import kubernetes.config; print(time.perf_counter() - began)'
    imports = [float(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout) for _run in range(3)]
    return {'startup': startup, 'ping': per_ping, 'import_kubernetes': statistics.median(imports)}


def median_of(runs: list, key: str) -> float:
    """Median of one figure over runs."""
    return statistics.median(run[key] for run in runs)


def median_tasks(runs: list) -> list:
    """[(task, median seconds)] in the order of the first run."""
    names = list(runs[0]['tasks'])
    return [(name, statistics.median(run['tasks'].get(name, 0.0) for run in runs)) for name in names]


def verdict(ok: bool) -> str:
    """ok or MISS."""
    return 'ok' if ok else 'MISS'


def figure_lines(results: dict) -> list:
    """One line per figure: wall time and requests of create and delete, ours against the baseline."""
    lines = []
    for action in ('create', 'delete'):
        ours, base = results['ours', action], results['baseline', action]
        wall = (median_of(ours, 'wall'), median_of(base, 'wall'))
        requests = (median_of(ours, 'requests'), median_of(base, 'requests'))
        targets = ('no target', 'no target')
        if action == 'create':
            targets = (f'target <= {TARGET_CREATE_RATIO:.2f}   {verdict(wall[0] / wall[1] <= TARGET_CREATE_RATIO)}',
                       f'target <= {TARGET_CREATE_REQUESTS}     {verdict(requests[0] <= TARGET_CREATE_REQUESTS)}')
        lines.append(f'B1 {action} wall       ours {wall[0]:5.2f} s   baseline {wall[1]:5.2f} s   ratio {wall[0] / wall[1]:4.2f}   {targets[0]}')
        lines.append(f'B1 {action} requests   ours {requests[0]:5.0f}     baseline {requests[1]:5.0f}     ratio {requests[0] / requests[1]:4.2f}'
                     f'   {targets[1]}')
    return lines


def breakdown_lines(results: dict, context: dict | None) -> list:
    """Requests by kind, what any job pays, and the median time of each task."""
    lines = ['   requests by kind (first run):']
    for (side, action), runs in results.items():
        lines.append(f'     {side:8} {action}: ' + ' '.join(f'{kind} {count}' for kind, count in sorted(runs[0]['kinds'].items())))
    if context:
        lines.append(f'   context: ansible-playbook with an empty play {context["startup"]:.2f} s; one trivial module task (ansible.builtin.ping)'
                     f' {context["ping"]:.2f} s; import kubernetes.config {context["import_kubernetes"]:.2f} s')
    for (side, action), runs in results.items():
        tasks = median_tasks(runs)
        outside = median_of(runs, 'wall') - sum(seconds for _name, seconds in tasks)
        lines.append(f'   per task, {side} {action} (median s; {outside:.2f} s outside tasks: startup, parsing, exit):')
        lines.extend(f'     {seconds:5.2f}  {name}' for name, seconds in tasks if seconds >= 0.1)
        small = [seconds for _name, seconds in tasks if seconds < 0.1]
        lines.append(f'     {sum(small):5.2f}  {len(small)} task(s) under 0.1 s each (set_fact, debug, includes, argument checks)')
    return lines


def main() -> int:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--runs', type=int, default=3, help='rounds; each runs create and delete of both sides (default 3)')
    parser.add_argument('--requests', action='store_true', help="list every request of our jobs' first run")
    parser.add_argument('--no-context', action='store_true', help='skip the context figures (empty play, ping task, kubernetes import)')
    args = parser.parse_args()
    results = {(side, action): [] for side in ('ours', 'baseline') for action in ('create', 'delete')}
    with tempfile.TemporaryDirectory(prefix='bench-b1-') as workdir:
        bench = Bench(Path(workdir))
        try:
            equivalent = True
            for round_no in range(args.runs):
                order = ('ours', 'baseline') if round_no % 2 == 0 else ('baseline', 'ours')
                names = {side: f'{side}-{round_no}' for side in order}
                for side in order:
                    results[side, 'create'].append(bench.create(side, names[side]))
                if round_no == 0:
                    equivalent = bench.objects(names['ours']) == bench.objects(names['baseline'])
                for side in order:
                    results[side, 'delete'].append(bench.delete(side, names[side]))
            context = None if args.no_context else context_figures(bench, Path(workdir))
        except RuntimeError as exc:
            print(f'B1 failed: {exc}', file=sys.stderr)
            return 1
        finally:
            bench.close()
    print(f'B1 playbook cost: one ComputeInstance, KubeVirt stand-in Ready at once; median of {args.runs} run(s) per side, alternating')
    print('\n'.join(figure_lines(results)))
    print(f'   objects created by ours and by the baseline equivalent: {"yes" if equivalent else "NO: update bench/baseline/templates/objects.yml.j2"}')
    print('\n'.join(breakdown_lines(results, context)))
    if args.requests:
        for action in ('create', 'delete'):
            print(f'   every request of our {action} (first run):')
            print('\n'.join(f'     {method:6} {path}{"?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""}'
                            for method, path, query in results['ours', action][0]['trace']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
