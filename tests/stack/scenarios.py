"""`make demo`: the main job end to end, driven by the operator stand-in, with a summary table.

``python -m tests.stack.scenarios [--json] [--keep]`` starts the local stack (tests/stack/local.py: API and KubeVirt
stand-ins, the controller stand-in running this collection's playbooks, ansible-rulebook on the webhook rulebook) and the
operator stand-in in EDA mode, then:

1. creates a ComputeInstance and shows its progress live (phase, conditions, jobs, events, objects);
2. changes its spec and shows the re-provision;
3. deletes it while a provision is running: the cancel, the wait, the deprovision, the finalizer going, the instance gone;
4. repeats 1 and 3 in AAP Direct mode (the operator launches the job templates itself);
5. prints, after each step, where its time went: the latency report's table of the step's runs (playbooks/latency_report.yml,
   run as an operator would; docs/latency.md);
6. prints a summary (each step, time, jobs launched, overlaps, orphaned objects) and exits 1 if anything did not converge.

``--api kube-apiserver`` (``make demo DEMO_API=kube-apiserver``) runs it on kube-apiserver, kube-controller-manager and etcd
built from their Go modules (``make bootstrap``) instead of the embedded API stand-in. A real cluster is used only when
asked for by the demo's own variable: with ``DEMO_KUBECONFIG`` (``make demo DEMO_KUBECONFIG=~/.kube/config``) the
Kubernetes part runs on the cluster that kubeconfig names (it must serve the CRDs in tests/stack/crds and run KubeVirt);
the controller and EDA stand-ins still run here. An exported ``KUBECONFIG`` or ``K8S_AUTH_*`` never chooses the cluster:
the demo removes them from its environment (``demo_cluster``). Overlaps are read from the write log of the API stand-in
(or of the proxy in front of kube-apiserver), so on a user's cluster they show as n/a.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field

import kubernetes
from kubernetes import client

from . import apis, audit
from .seed import desired_config_version
from .kubevirt.informer import Informer, custom_objects_api, start_synced
from .local import ROOT, LocalStack

VERSION = 'v1alpha1'
TEMPLATE_ID = 'cloudkit.templates.ocp_virt_vm'
# The KubeVirt stand-in's failure injection: a VM so annotated never gets Ready after its next start.
HOLD_ANNOTATION = 'kubevirt.stand-in/fail'
PARAMETERS = {'cpu_cores': 2, 'memory': '2Gi', 'disk_size': '10Gi', 'image': 'quay.io/containerdisks/fedora:40', 'exposed_ports': '22/tcp'}


class NotConverged(Exception):
    """A wait ran out of time."""


@dataclass
class StepResult:
    """One line of the summary."""

    step: str
    mode: str
    instance: str
    seconds: float = 0.0
    jobs_launched: int = 0
    overlaps: int | None = 0       # None: not measurable here (real cluster)
    objects_left: int = 0
    converged: bool = False
    detail: str = ''
    jobs: list = field(default_factory=list)
    latency: list = field(default_factory=list)   # the latency report's table lines for the step's runs

    def row(self) -> list[str]:
        """The summary table's cells."""
        return [self.step, self.mode, f'{self.seconds:.1f}s', str(self.jobs_launched), 'n/a' if self.overlaps is None else str(self.overlaps),
                str(self.objects_left), 'ok' if self.converged else 'NOT CONVERGED']


class InstanceWatch:
    """The ComputeInstances of one namespace, kept current by a list + watch, for many threads to wait on at once.

    Dozens of threads polling with GETs (or with ``Scenario.wait``'s progress lines) would take the CPU from the jobs under
    test; one watch costs next to nothing, and the Informer behind it rides out cut streams and API errors.
    """

    def __init__(self, kubeconfig: str, group: str, namespace: str):
        self.namespace = namespace
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._events = 0
        self._api_client, api = custom_objects_api(kubeconfig, 4)
        self._informer = Informer(api, group, VERSION, 'computeinstances', namespace, self._on_event, self._stopping)

    def start(self, timeout: float = 30.0) -> InstanceWatch:
        """Start watching; returns once the instances have been listed."""
        if start_synced([self._informer], timeout) is not None:
            self.stop()
            raise RuntimeError(f'could not list the ComputeInstances of {self.namespace} within {timeout}s')
        return self

    def stop(self) -> None:
        """Stop watching."""
        self._stopping.set()
        self._informer.stop()
        self._api_client.close()

    def _on_event(self, _event: str, _obj: dict) -> None:
        with self._changed:
            self._events += 1
            self._changed.notify_all()

    def get(self, name: str) -> dict | None:
        """The instance as last seen by the watch (None: not seen, or gone). Shared: do not modify it."""
        return self._informer.get(self.namespace, name)

    def until(self, name: str, predicate, timeout: float) -> bool:
        """Wait until ``predicate(instance as last seen, or None)`` holds; False once ``timeout`` seconds passed (never raises)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._events
            if predicate(self.get(name)):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._changed:
                # Re-evaluated on every event of the namespace, and every few seconds for predicates that read other things.
                if self._events == seen:
                    self._changed.wait(min(left, 2.0))


class Scenario:
    """The demo's steps on a started LocalStack; every step returns a StepResult (never raises for a timeout)."""

    def __init__(self, stack: LocalStack, group: str = 'cloudkit.openshift.io', namespace: str = 'cloudkit-demo', tenant: str = 'acme',
                 tenant_namespace: str = 'tenant-acme', out=None, timeout: float = 240.0, hold_provisions: bool | None = None):
        self.stack = stack
        # On the stand-ins, a provision that a delete interrupts is held (its restarted VM never gets Ready), so the delete
        # lands mid-provision every time; on a real cluster the VM's own start time has to do.
        self.hold_provisions = not stack.real_cluster if hold_provisions is None else hold_provisions
        self.group, self.namespace, self.tenant, self.tenant_namespace = group, namespace, tenant, tenant_namespace
        self.out = out if out is not None else sys.stdout
        self.live = hasattr(self.out, 'isatty') and self.out.isatty()
        self.timeout = timeout
        self.api_client = kubernetes.config.new_client_from_config(config_file=stack.kubeconfig)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.operator = None
        self._past_history: list[dict] = []
        self.mode = None
        # The provision and deprovision job templates the operator stand-in launches (AAP Direct) and the audit reads.
        self.templates = (stack.template_name('create'), stack.template_name('delete'))
        self.results: list[StepResult] = []

    # ------------------------------------------------------------ setup
    def prepare(self) -> None:
        """The namespaces and the Tenant (with its VM namespace in status), as the platform has them before any instance."""
        for name in (self.namespace, self.tenant_namespace):
            try:
                self.core.create_namespace({'metadata': {'name': name}})
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
        body = {'apiVersion': f'{self.group}/{VERSION}', 'kind': 'Tenant', 'metadata': {'name': self.tenant}, 'spec': {}}
        try:
            self.custom.create_namespaced_custom_object(self.group, VERSION, self.namespace, 'tenants', body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        self.custom.patch_namespaced_custom_object_status(self.group, VERSION, self.namespace, 'tenants', self.tenant,
                                                          {'status': {'namespace': self.tenant_namespace}})

    def use_operator(self, mode: str, variant: str = 'seed', templates: tuple | None = None, **kwargs) -> None:
        """Stop the running operator stand-in (if any) and start one in ``mode`` (AAP Direct: launching ``templates``)."""
        self.close()
        self.mode = mode
        self.templates = templates or (self.stack.template_name('create'), self.stack.template_name('delete'))
        kwargs.update(provision_template=self.templates[0], deprovision_template=self.templates[1])
        kwargs.setdefault('namespace', self.namespace)
        # Re-sending an unreconciled instance is the operator's safety net; on a busy machine a 30 s period would add
        # duplicate (harmless, but confusing) jobs to the counts.
        kwargs.setdefault('resend_after', 300.0)
        self.operator = self.stack.operator(mode, variant=variant, api_group=self.group, **kwargs).start()
        self.say(f'== operator stand-in running in {"EDA" if mode == "eda" else "AAP Direct"} mode ({self.group}, {variant})')

    def close(self) -> None:
        """Stop the operator stand-in (its history is kept)."""
        if self.operator is not None:
            self.operator.stop()
            self._past_history += self.operator.history
            self.operator = None

    @property
    def operator_history(self) -> list[dict]:
        """What every operator stand-in of this scenario did, oldest first."""
        return self._past_history + (list(self.operator.history) if self.operator is not None else [])

    # ------------------------------------------------------------ reading
    def say(self, text: str) -> None:
        """A line for the person watching."""
        print(text, file=self.out, flush=True)

    def get(self, name: str) -> dict | None:
        """The live instance, None once gone."""
        try:
            return self.custom.get_namespaced_custom_object(self.group, VERSION, self.namespace, 'computeinstances', name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def jobs_of_all(self) -> list[audit.JobRecord]:
        """The controller's provision/deprovision jobs (of this scenario's templates), oldest first."""
        return audit.job_records(self.stack.controller, *self.templates)

    def jobs_of(self, uid: str) -> list[audit.JobRecord]:
        """The controller's provision/deprovision jobs for one instance, oldest first."""
        return [job for job in self.jobs_of_all() if job.uid == uid]

    def reconciled(self, obj: dict | None) -> bool:
        """Ready, and the annotation equals the desired version of the live spec (what the operator counts as done)."""
        if obj is None:
            return False
        annotation = (obj['metadata'].get('annotations') or {}).get(f'{self.group}/reconciled-config-version')
        return (annotation == desired_config_version(obj.get('spec') or {}) and (obj.get('status') or {}).get('phase') == 'Ready'
                and not obj['metadata'].get('deletionTimestamp'))

    def progress(self, name: str, uid: str | None, started: float) -> str:
        """One line: phase, conditions, jobs, events and objects of the instance."""
        obj = self.get(name)
        if obj is None:
            state = 'gone'
        else:
            status = obj.get('status') or {}
            conditions = ','.join(f'{c["type"]}={c["status"]}' for c in status.get('conditions') or []) or '-'
            finalizers = ','.join(f.split('/')[-1] for f in obj['metadata'].get('finalizers') or []) or '-'
            state = f'phase={status.get("phase", "-")} conditions={conditions} finalizers={finalizers}'
            uid = obj['metadata']['uid']
        jobs = ' '.join(f'{j.action}#{j.id}:{j.status}' for j in self.jobs_of(uid)) if uid else ''
        events = len([e for e in self.core.list_namespaced_event(self.namespace).items if e.involved_object.uid == uid]) if uid else 0
        objects = len(audit.objects_left(self.api_client, self.group, uid, self.namespace)) if uid else 0
        return f'  [{time.monotonic() - started:5.1f}s] {name}: {state} | jobs {jobs or "-"} | events {events} | objects {objects}'

    def wait(self, name: str, uid: str | None, what: str, predicate, started: float) -> None:
        """Poll until ``predicate(live instance or None)``; show progress (one rewritten line on a terminal, changes otherwise)."""
        deadline = time.monotonic() + self.timeout
        last = None
        while True:
            done = predicate(self.get(name))
            line = self.progress(name, uid, started)
            if self.live:
                print('\r' + line[:160].ljust(160), end='', file=self.out, flush=True)
            elif line.split('] ', 1)[1] != last:
                self.say(line)
            last = line.split('] ', 1)[1]
            if done:
                if self.live:
                    print(file=self.out)
                return
            if time.monotonic() > deadline:
                if self.live:
                    print(file=self.out)
                raise NotConverged(f'{name}: gave up after {self.timeout:.0f}s waiting for {what}')
            time.sleep(0.3)

    def orphans(self) -> list[str]:
        """Objects labelled for an instance that no longer exists, and lock Leases of such instances."""
        live = {i['metadata']['uid'] for i in self.custom.list_cluster_custom_object(self.group, VERSION, 'computeinstances')['items']}
        found = [ref for ref, uid in audit.labelled_objects(self.api_client, self.group) if uid not in live]
        leases = client.CoordinationV1Api(self.api_client).list_namespaced_lease(self.namespace).items
        found += [f'Lease/{self.namespace}/{lease.metadata.name}' for lease in leases
                  if lease.metadata.name.startswith('computeinstance-') and lease.metadata.name[len('computeinstance-'):] not in live]
        return sorted(found)

    def overlaps(self) -> list[str] | None:
        """Interleaved provision/deprovision writes of any instance so far (None on a real cluster: no write log)."""
        if self.stack.api is None:
            return None
        return audit.overlaps(self.stack.api.write_log(), self.jobs_of_all())

    # ------------------------------------------------------------ steps
    def _step(self, title: str, name: str, body) -> StepResult:
        result = StepResult(title, 'EDA' if self.mode == 'eda' else 'AAP Direct', name)
        self.say(f'\n== {title} ({result.mode}): {name}')
        started = time.monotonic()
        began = time.time()
        before = set()
        uid = None
        obj = self.get(name)
        if obj is not None:
            uid = obj['metadata']['uid']
            before = {j.id for j in self.jobs_of(uid)}
        try:
            uid = body(name, uid, started) or uid
            result.converged = True
        except NotConverged as exc:
            result.detail = str(exc)
        result.seconds = time.monotonic() - started
        if uid:
            # The audit needs the jobs' last writes (the lock release comes after the finalizer): wait for them to end.
            try:
                self.wait(name, uid, "the instance's jobs to end", lambda obj: all(
                    j.status in ('successful', 'failed', 'error', 'canceled') for j in self.jobs_of(uid)), started)
            except NotConverged as exc:
                result.converged = False
                result.detail = str(exc)
            new = [j for j in self.jobs_of(uid) if j.id not in before]
            result.jobs_launched = len(new)
            result.jobs = [asdict(j) for j in new]
            for job in new:
                self.say(f'   job {job.id} {job.action}: {job.status}')
            result.latency = self.latency(name, began)
            self.say('   where the time went (seconds):')
            for line in result.latency:
                self.say('     ' + line)
        found = self.overlaps()
        result.overlaps = None if found is None else len(found)
        orphans = self.orphans()
        result.objects_left = len(orphans)
        problems = (found or []) + [f'orphaned: {o}' for o in orphans]
        if problems:
            result.converged = False
            result.detail = '; '.join(filter(None, [result.detail] + problems))
        self.say(f'   {"done" if result.converged else "NOT CONVERGED"} in {result.seconds:.1f}s, jobs launched {result.jobs_launched}'
                 + (f': {result.detail}' if result.detail else ''))
        self.results.append(result)
        return result

    def latency(self, name: str, since: float) -> list[str]:
        """The latency report's table for the runs of ``name`` since ``since`` (epoch seconds), by playbooks/latency_report.yml
        with the jobs' own credentials."""
        with tempfile.TemporaryDirectory(prefix='latency-') as work:
            output = os.path.join(work, 'table.txt')
            variables = {'instance': name, 'instance_namespace': self.namespace, 'output': output, 'organization': self.stack.organization,
                         'since': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(since - 1)), 'api_group': self.group,
                         'provision_template': self.stack.template_name('create'),
                         'deprovision_template': self.stack.template_name('delete')}
            command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), str(ROOT / 'playbooks' / 'latency_report.yml'),
                       '-e', json.dumps(variables)]
            done = subprocess.run(command, env=dict(os.environ, **self.stack.job_environment()), capture_output=True, text=True,
                                  timeout=300, check=False)
            if done.returncode != 0:
                return [f'latency report failed: {(done.stdout + done.stderr)[-500:]}']
            with open(output, encoding='utf-8') as table_file:
                return table_file.read().splitlines()

    def create_instance(self, name: str, parameters: dict | None = None, **metadata) -> dict:
        """Create an instance as a user does: a spec only (PARAMETERS updated with ``parameters``), plus ``metadata``; returns it."""
        spec = {'templateID': TEMPLATE_ID, 'templateParameters': json.dumps(dict(PARAMETERS, **(parameters or {})))}
        body = {'apiVersion': f'{self.group}/{VERSION}', 'kind': 'ComputeInstance', 'metadata': dict(metadata, name=name), 'spec': spec}
        return self.custom.create_namespaced_custom_object(self.group, VERSION, self.namespace, 'computeinstances', body)

    def delete_instance(self, name: str) -> None:
        """Delete the instance as a user does (already gone: nothing to do)."""
        try:
            self.custom.delete_namespaced_custom_object(self.group, VERSION, self.namespace, 'computeinstances', name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def create(self, name: str) -> StepResult:
        """Create an instance as a user would (spec only); the operator and the jobs do the rest. Waits until reconciled."""
        def body(_name, _uid, started):
            uid = self.create_instance(name)['metadata']['uid']
            self.wait(name, uid, 'Ready with the reconciled config version', self.reconciled, started)
            return uid
        return self._step('create', name, body)

    def change_spec(self, name: str, **parameters) -> StepResult:
        """Change templateParameters; waits until the new spec is reconciled (a re-provision)."""
        def body(_name, uid, started):
            self.patch_parameters(name, parameters)
            self.wait(name, uid, 'the new spec reconciled', self.reconciled, started)
            return uid
        return self._step('spec change', name, body)

    def delete_during_provision(self, name: str, **parameters) -> StepResult:
        """Change the spec (a provision starts), delete the instance while that provision runs; waits until it is gone."""
        def body(_name, uid, started):
            if self.hold_provisions:
                self.custom.patch_namespaced_custom_object('kubevirt.io', 'v1', self.tenant_namespace, 'virtualmachines', name,
                                                           {'metadata': {'annotations': {HOLD_ANNOTATION: 'never-ready'}}})
            version = self.patch_parameters(name, parameters)
            # Delete once the new provision job has the lock and works on the VM (it reported this version as Progressing).
            self.wait(name, uid, 'a provision job working on the new spec', lambda obj: obj is not None and any(
                c['type'] == 'Progressing' and c['status'] == 'True' and version in c.get('message', '')
                for c in (obj.get('status') or {}).get('conditions') or []), started)
            self.say('   deleting it now, while the provision job works')
            self.custom.delete_namespaced_custom_object(self.group, VERSION, self.namespace, 'computeinstances', name)
            self.wait(name, uid, 'the instance gone', lambda obj: obj is None, started)
            return uid
        return self._step('delete during provision', name, body)

    def patch_parameters(self, name: str, parameters: dict) -> str:
        """Merge ``parameters`` into spec.templateParameters; returns the desired config version of the new spec."""
        obj = self.get(name)
        current = json.loads(obj['spec'].get('templateParameters') or '{}')
        current.update(parameters)
        patched = self.custom.patch_namespaced_custom_object(self.group, VERSION, self.namespace, 'computeinstances', name,
                                                             {'spec': {'templateParameters': json.dumps(current)}})
        return desired_config_version(patched['spec'])

    def request_restart(self, name: str) -> str:
        """Ask for a restart as a user does: spec.restartRequestedAt = now (RFC 3339); returns the desired config version of the new spec."""
        now = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
        patched = self.custom.patch_namespaced_custom_object(self.group, VERSION, self.namespace, 'computeinstances', name,
                                                             {'spec': {'restartRequestedAt': now}})
        return desired_config_version(patched['spec'])

    def watch(self) -> InstanceWatch:
        """A started InstanceWatch on this scenario's namespace (stop it when done)."""
        return InstanceWatch(self.stack.kubeconfig, self.group, self.namespace).start()

    def demo(self) -> list[StepResult]:
        """The whole scenario of `make demo`."""
        self.prepare()
        self.use_operator('eda')
        self.create('demo-eda')
        self.change_spec('demo-eda', cpu_cores=4)
        self.delete_during_provision('demo-eda', memory='4Gi')
        self.use_operator('aap')
        self.create('demo-aap')
        self.delete_during_provision('demo-aap', memory='4Gi')
        self.close()
        return self.results


def table(results: list[StepResult]) -> str:
    """The summary as an aligned text table."""
    header = ['step', 'mode', 'time', 'jobs launched', 'overlaps', 'objects left', 'result']
    rows = [header] + [r.row() for r in results]
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    lines = ['  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, '  '.join('-' * width for width in widths))
    return '\n'.join(lines)


def demo_cluster(environ) -> str | None:
    """The kubeconfig of the cluster the demo's Kubernetes part runs on: only the one ``DEMO_KUBECONFIG`` names, else None
    (the local stack). ``KUBECONFIG`` and every ``K8S_AUTH_*`` are removed from ``environ`` (the demo passes
    ``os.environ``), so neither this process nor a job, ansible-rulebook or a client it starts can pick up a cluster the user
    exported for other work."""
    for name in [name for name in environ if name == 'KUBECONFIG' or name.startswith('K8S_AUTH_')]:
        del environ[name]
    kubeconfig = environ.get('DEMO_KUBECONFIG')
    return os.path.expanduser(kubeconfig) if kubeconfig else None


def main(argv=None) -> int:
    """Entry point of `make demo`."""
    parser = argparse.ArgumentParser(prog='python -m tests.stack.scenarios', description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true', help='print only a JSON report on stdout (progress goes to stderr)')
    parser.add_argument('--work-dir', help='where the stack keeps its files (default: a temporary directory)')
    parser.add_argument('--ready-delay', type=float, default=3.0, help='seconds until a started VM is Ready (local stack)')
    parser.add_argument('--timeout', type=float, default=240.0, help='seconds each wait may take')
    parser.add_argument('--api', choices=apis.BACKENDS, default=apis.selected(),
                        help='the local Kubernetes API: the embedded stand-in (default) or kube-apiserver built from its Go module '
                             '(make bootstrap; default from CLOUDKIT_TEST_API)')
    args = parser.parse_args(argv)
    out = sys.stderr if args.json else sys.stdout
    kubeconfig = demo_cluster(os.environ)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='cloudkit-demo-')
    print(f'== starting the local stack in {work_dir}' + (f' (Kubernetes: {kubeconfig})' if kubeconfig else f' (Kubernetes API: {args.api})'),
          file=out, flush=True)
    with LocalStack(work_dir, kubeconfig=kubeconfig, ready_delay=args.ready_delay, api=args.api) as stack:
        scenario = Scenario(stack, out=out, timeout=args.timeout)
        try:
            results = scenario.demo()
        finally:
            scenario.close()
    converged = bool(results) and all(r.converged for r in results)
    if args.json:
        print(json.dumps({'converged': converged, 'steps': [asdict(r) for r in results]}, indent=2))
    else:
        print('\n' + table(results))
        print('\nall steps converged' if converged else '\nNOT CONVERGED: see the steps above')
    return 0 if converged else 1


if __name__ == '__main__':
    sys.exit(main())
