"""What both reliability tests share: user actions that ride out API faults, cheap waits, and the audit afterwards.

The audit checks every instance for the suite's four invariants and records the counts (tests/reliability_report.py):

- converged: each instance reached what its last action asked for (Ready and reconciled for its last spec, or gone),
  and whenever an instance was seen Ready and reconciled, its live objects matched that spec, as the independent check
  of tests/integration/live_check.py sees them (counted apart as "reconciled means the live objects match the spec");
- no orphaned objects: nothing labelled for a deleted instance is left (Secret, Service, DataVolume, VirtualMachine,
  VirtualMachineInstance, its lock Lease), and nothing in the cluster is labelled for an instance that does not exist;
- no stuck finalizers: every deleted instance is gone, i.e. its finalizers were removed;
- no overlapping provision/deprovision: from the API stand-in's write log, no provision job of an instance wrote after
  a deprovision job of the same instance had begun to write (tests/stack/audit.py).
"""
from __future__ import annotations

import json
import resource
import time
import uuid
from dataclasses import dataclass, field

from kubernetes import client, config

from tests.integration.live_check import differences
from tests.reliability_report import record
from tests.stack import audit
from tests.stack.seed import desired_config_version
from tests.stack.scenarios import VERSION, Scenario

# Tells the test's own writes apart from the operator stand-in's in the write log (both use the official client).
USER_AGENT = 'cloudkit-reliability-test'
# What a user (kubectl, a UI) simply repeats: throttling, server errors and conflicts. The fault switch refuses a request
# before it is applied, so repeating a refused create or patch never applies it twice.
RETRIED = (409, 429, 500, 502, 503, 504)
INVARIANTS = ('converged', 'no orphaned objects', 'no stuck finalizers', 'no overlapping provision/deprovision')
# Checked each time an instance is seen Ready and reconciled (part of "converged"), and recorded on its own.
MATCHES_SPEC = 'reconciled means the live objects match the spec'
REFUSED = 'a refused change changes nothing'
TERMINAL = ('successful', 'failed', 'error', 'canceled')
STDOUT_LINES = 40


class CPUMeter:
    """CPU seconds since it was made: this process (stand-ins, operator stand-in, test threads) and its ended children (the jobs)."""

    def __init__(self):
        self.started = time.monotonic()
        self.own, self.children = self._now()

    @staticmethod
    def _now() -> tuple:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime

    def __str__(self) -> str:
        own, children = self._now()
        return (f'{time.monotonic() - self.started:.0f}s wall, {own - self.own + children - self.children:.0f} CPU-s '
                f'({children - self.children:.0f} in jobs)')

    def total(self) -> float:
        """CPU seconds used so far."""
        own, children = self._now()
        return own - self.own + children - self.children


@dataclass
class Outcome:
    """What one lifecycle or sequence did and how it ended (``problem`` is None when it converged)."""

    name: str
    started: float = field(default_factory=time.monotonic)
    uid: str | None = None
    deleted: bool = False
    actions: list = field(default_factory=list)
    problem: str | None = None
    seconds: float = 0.0

    def did(self, text: str) -> None:
        """Note an action, with the seconds since the start (shown when the instance fails an invariant)."""
        self.actions.append(f'{time.monotonic() - self.started:6.1f}s {text}')

    def failed(self, problem: str) -> None:
        """Mark it not converged (the first problem is kept: later waits are only consequences)."""
        self.did(f'NOT CONVERGED: {problem}')
        if self.problem is None:
            self.problem = problem


class ReliableScenario(Scenario):
    """A Scenario whose user actions and reads ride out the fault switch, for many threads at once, with an audit."""

    def __init__(self, stack, namespace: str, out=None, timeout: float = 600.0):
        super().__init__(stack, namespace=namespace, tenant='acme', tenant_namespace=f'{namespace}-vms', out=out, timeout=timeout)
        # Dozens of threads share this client: a pool big enough to keep their connections, and our own User-Agent.
        self.api_client.close()
        configuration = client.Configuration()
        config.load_kube_config(config_file=stack.kubeconfig, client_configuration=configuration)
        configuration.connection_pool_maxsize = 64
        self.api_client = client.ApiClient(configuration)
        self.api_client.user_agent = USER_AGENT
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    # ------------------------------------------------------------ user actions
    @staticmethod
    def retrying(call, *args, **kwargs):
        """``call(*args, **kwargs)``, repeated for up to two minutes while the API answers with a transient error."""
        deadline = time.monotonic() + 120
        delay = 0.1
        while True:
            try:
                return call(*args, **kwargs)
            except client.ApiException as exc:
                if exc.status not in RETRIED or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def get(self, name: str) -> dict | None:
        """The live instance (None once gone), read again while the API answers with a transient error."""
        return self.retrying(super().get, name)

    def create_instance(self, name: str, parameters: dict | None = None, **metadata) -> dict:
        """Scenario.create_instance, riding out faults; returns the instance as created."""
        def create():
            try:
                return super(ReliableScenario, self).create_instance(name, parameters, **metadata)
            except client.ApiException as exc:
                # An earlier attempt that only seemed to fail (a lost answer) made it: that is the one we created.
                if exc.status == 409 and json.loads(exc.body or '{}').get('reason') == 'AlreadyExists':
                    return super(ReliableScenario, self).get(name)
                raise
        return self.retrying(create)

    def change(self, name: str, **parameters) -> str:
        """Merge ``parameters`` into spec.templateParameters; returns the desired config version of the new spec."""
        return self.retrying(self.patch_parameters, name, parameters)

    def set_parameters(self, name: str, parameters: dict) -> str:
        """Set spec.templateParameters to exactly ``parameters`` (keys left out are removed); returns the new desired config version."""
        def patch():
            patched = self.custom.patch_namespaced_custom_object(self.group, VERSION, self.namespace, 'computeinstances', name,
                                                                 {'spec': {'templateParameters': json.dumps(parameters)}})
            return desired_config_version(patched['spec'])
        return self.retrying(patch)

    def restart(self, name: str) -> str:
        """Set spec.restartRequestedAt to now; returns the desired config version of the new spec."""
        return self.retrying(self.request_restart, name)

    def delete_instance(self, name: str) -> None:
        """Scenario.delete_instance, riding out faults."""
        self.retrying(super().delete_instance, name)

    # ------------------------------------------------------------ waits (False on timeout)
    def deliverable(self) -> None:
        """Raise when jobs can no longer reach Ansible: in EDA mode, ansible-rulebook has exited (waiting on would only time out)."""
        code = self.stack.rulebook_exit_code() if self.mode == 'eda' else None
        if code is not None:
            raise RuntimeError(f'ansible-rulebook exited with {code}; its last output:\n{self.stack.rulebook_output()[-2000:]}')

    # ------------------------------------------------------------ a lifecycle's steps, noted on its Outcome
    def begin(self, outcome: Outcome) -> str:
        """Create the outcome's instance as a user does and note it; returns the desired config version of its spec."""
        created = self.create_instance(outcome.name)
        outcome.uid = created['metadata']['uid']
        version = desired_config_version(created['spec'])
        outcome.did(f'created (config version {version})')
        return version

    def expect_reconciled(self, watch, outcome: Outcome, version: str, timeout: float, spec: str = 'the spec') -> bool:
        """until_reconciled, then the live objects checked against that spec; a failure is noted on the outcome."""
        if not self.until_reconciled(watch, outcome.name, outcome.uid, version, timeout):
            outcome.failed(f'not Ready and reconciled for {spec} ({version}) after {timeout:.0f}s')
            return False
        live = self.get(outcome.name)
        if live is None or not self.reconciled(live) or desired_config_version(live['spec']) != version:
            return True  # moved on since (a delete, or a later change by another thread): its own wait checks that
        wrong = self.live_differences(live)
        record(MATCHES_SPEC, 1, 1 if wrong else 0)
        if wrong:
            outcome.failed(f'reconciled for {spec} ({version}), but the live objects differ: {"; ".join(wrong)}')
            return False
        return True

    def live_differences(self, obj: dict, spec: dict | None = None) -> list[str]:
        """tests/integration/live_check.py's differences of an instance's objects from ``spec`` (default: its own), riding out faults."""
        return self.retrying(differences, self.api_client, obj, self.tenant_namespace, self.group, spec)

    def expect_refused(self, watch, outcome: Outcome, version: str, accepted: tuple, field: str, timeout: float) -> bool:
        """Wait until the instance shows ChangeRefused for ``version``; it must then keep the accepted version and its objects
        must still match the accepted spec (``accepted``: (version, spec)). A failure is noted on the outcome."""
        seen = []

        def refused(obj):
            self.deliverable()
            if obj is None or obj['metadata']['uid'] != outcome.uid:
                return False
            status = obj.get('status') or {}
            progressing = next((c for c in status.get('conditions') or [] if c.get('type') == 'Progressing'), {})
            if progressing.get('reason') == 'ChangeRefused' and version in (progressing.get('message') or ''):
                seen.append(obj)  # as the refusing job left it (a relaunched job may already be reporting Progressing again)
                return True
            return False
        if not watch.until(outcome.name, refused, timeout):
            outcome.failed(f'no ChangeRefused for config version {version} after {timeout:.0f}s')
            return False
        live = seen[-1]
        annotation = (live['metadata'].get('annotations') or {}).get(f'{self.group}/reconciled-config-version')
        message = next(c for c in live['status']['conditions'] if c['type'] == 'Progressing')['message']
        wrong = [] if annotation == accepted[0] else [f'annotation {annotation}, the last accepted version {accepted[0]}']
        if field not in message:
            wrong.append(f'the condition does not name {field}: {message}')
        if live['status'].get('phase') != 'Failed':
            wrong.append(f'phase {live["status"].get("phase")}')
        wrong += self.live_differences(live, accepted[1])
        record(REFUSED, 1, 1 if wrong else 0)
        if wrong:
            outcome.failed(f'refused {version}, but: {"; ".join(wrong)}')
            return False
        return True

    def expect_gone(self, watch, outcome: Outcome, timeout: float) -> bool:
        """until_gone, noting a failure on the outcome."""
        if self.until_gone(watch, outcome.name, outcome.uid, timeout):
            return True
        outcome.failed(f'still there {timeout:.0f}s after its deletion')
        return False

    def until_reconciled(self, watch, name: str, uid: str, version: str, timeout: float) -> bool:
        """Wait until the instance is Ready and reconciled for the spec whose desired config version is ``version``."""
        def done(obj):
            self.deliverable()
            return obj is not None and obj['metadata']['uid'] == uid and self.reconciled(obj) and desired_config_version(obj['spec']) == version
        return watch.until(name, done, timeout)

    def until_gone(self, watch, name: str, uid: str, timeout: float) -> bool:
        """Wait until the instance is gone (confirmed by a live read: the watch may not have seen it at all yet)."""
        def gone(obj):
            self.deliverable()
            return obj is None or obj['metadata']['uid'] != uid
        deadline = time.monotonic() + timeout
        while watch.until(name, gone, max(0.0, deadline - time.monotonic())):
            live = self.get(name)
            if live is None or live['metadata']['uid'] != uid:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return False

    def until_jobs_end(self, uids: set, timeout: float) -> list:
        """Wait until no job of these instances is active; returns the ones still active after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            active = [job for job in audit.job_records(self.stack.controller, *self.templates) if job.uid in uids and job.status not in TERMINAL]
            if not active or time.monotonic() > deadline:
                return active
            time.sleep(1.0)

    # ------------------------------------------------------------ diagnostics
    def describe(self, outcome: Outcome) -> str:
        """Everything worth knowing about one failing instance: its state, what was done, its jobs, the last job's output."""
        lines = [f'--- {outcome.name} (uid {outcome.uid})']
        obj = self.get(outcome.name)
        if obj is None or obj['metadata']['uid'] != outcome.uid:
            lines.append('    instance: gone')
        else:
            meta, status = obj['metadata'], obj.get('status') or {}
            annotation = (meta.get('annotations') or {}).get(f'{self.group}/reconciled-config-version')
            lines.append(f'    phase {status.get("phase")}, finalizers {meta.get("finalizers")}, deletionTimestamp {meta.get("deletionTimestamp")}')
            lines.append(f'    desired {desired_config_version(obj.get("spec") or {})}, annotation {annotation}, '
                         f'restartRequestedAt {obj["spec"].get("restartRequestedAt")}, lastRestartedAt {status.get("lastRestartedAt")}')
            lines += [f'    condition {c["type"]}={c["status"]} {c.get("reason")}: {c.get("message")}' for c in status.get('conditions') or []]
        lines += [f'    {text}' for text in outcome.actions]
        jobs = self.jobs_of(outcome.uid) if outcome.uid else []
        lines.append('    jobs: ' + (', '.join(f'{j.id} {j.action} {j.status}' for j in jobs) or 'none'))
        history = [h for h in self.operator_history if h.get('uid') == outcome.uid]
        lines += [f'    operator: {h["action"]} ' + ' '.join(f'{k}={v}' for k, v in h.items() if k not in ('time', 'action', 'namespace', 'name', 'uid'))
                  for h in history[-8:]]
        failed = [j for j in jobs if j.status in ('failed', 'error')]
        shown = failed[-1] if failed else (jobs[-1] if jobs else None)
        if shown is not None:
            stdout = self.stack.controller.job(shown.id)['stdout'].rstrip().splitlines()
            lines.append(f'    last {STDOUT_LINES} lines of job {shown.id} ({shown.action}, {shown.status}):')
            lines += [f'      | {line}' for line in stdout[-STDOUT_LINES:]]
        return '\n'.join(lines)

    # ------------------------------------------------------------ audit
    def _orphan_audit_sees(self) -> bool:
        """The orphan sweep is not blind: a Secret labelled for an instance that does not exist shows up in it."""
        name = f'reliability-canary-{uuid.uuid4().hex[:8]}'
        labels = {f'{self.group}/computeinstance-uuid': str(uuid.uuid4()), f'{self.group}/computeinstance': 'no-such-instance'}
        self.core.create_namespaced_secret(self.tenant_namespace, {'metadata': {'name': name, 'labels': labels}})
        try:
            return f'Secret/{self.tenant_namespace}/{name}' in self.orphans()
        finally:
            self.core.delete_namespaced_secret(name, self.tenant_namespace)

    def audit(self, outcomes: list[Outcome], label: str) -> list[tuple]:
        """Check and record the four invariants for ``outcomes`` once their jobs ended.

        Returns the violations as (text, outcome or None); ``verdict`` turns them into the test's failure.
        """
        failures = []
        uids = {o.uid for o in outcomes if o.uid}
        still_active = self.until_jobs_end(uids, self.timeout)
        if still_active:
            failures.append(('jobs still active after the sequences ended: ' + ', '.join(f'{j.id} {j.action} {j.status}' for j in still_active), None))
        deleted = [o for o in outcomes if o.deleted and o.uid]

        not_converged = [o for o in outcomes if o.problem]
        record(f'{label}: {INVARIANTS[0]}', len(outcomes), len(not_converged))
        failures += [(f'{INVARIANTS[0]}: {o.name}: {o.problem}', o) for o in not_converged]

        stuck = []
        for outcome in deleted:
            live = self.get(outcome.name)
            if live is not None and live['metadata']['uid'] == outcome.uid:
                stuck.append(outcome)
        record(f'{label}: {INVARIANTS[2]}', len(deleted), len(stuck))
        failures += [(f'{INVARIANTS[2]}: {o.name} still exists after its deletion', o) for o in stuck]

        if not self._orphan_audit_sees():
            raise AssertionError('the orphan audit did not report a Secret labelled for a non-existent instance: it cannot fail')
        left = {}
        for outcome in deleted:
            objects = [o for o in audit.objects_left(self.api_client, self.group, outcome.uid, self.namespace) if not o.startswith('ComputeInstance/')]
            if objects:
                left[outcome.name] = objects
        sweep = self.orphans()
        record(f'{label}: {INVARIANTS[1]}', len(deleted) + 1, len(left) + (1 if sweep else 0))
        by_name = {o.name: o for o in outcomes}
        failures += [(f'{INVARIANTS[1]}: {name}: left {objects}', by_name[name]) for name, objects in left.items()]
        if sweep:
            failures.append((f'{INVARIANTS[1]}: labelled for instances that no longer exist: {sweep}', None))

        failures += self._overlap_audit(outcomes, label)
        return failures

    def _overlap_audit(self, outcomes: list[Outcome], label: str) -> list[tuple]:
        uids = {o.uid for o in outcomes if o.uid}
        jobs = [j for j in audit.job_records(self.stack.controller, *self.templates) if j.uid in uids]
        # Only the jobs' successful non-lease writes matter to the audit; filtering once keeps it linear in the log.
        writes = [w for w in self.stack.api.write_log() if 'job/' in (w.get('user_agent') or '') and w['status'] < 300 and w['kind'] != 'leases']
        found = audit.overlaps(writes, jobs)
        # Pairs actually compared: instances with a provision job and a deprovision job that wrote something.
        compared = {j.uid for j in jobs if j.action == 'deprovision' and audit.job_writes(writes, j.id)
                    and any(p.uid == j.uid and p.action == 'provision' for p in jobs)}
        if jobs and not any(audit.job_writes(writes, j.id) for j in jobs):
            raise AssertionError('the write log attributes no write to any job (User-Agent job/<id>): the overlap audit cannot fail')
        overlapping = {o.uid for o in outcomes if any(line.startswith(f'instance {o.uid}:') for line in found)}
        record(f'{label}: {INVARIANTS[3]}', len(compared), len(overlapping))
        return [(f'{INVARIANTS[3]}: {line}', o) for o in outcomes if o.uid in overlapping
                for line in found if line.startswith(f'instance {o.uid}:')]

    def verdict(self, failures: list[tuple], shown: int = 6) -> None:
        """Fail with the violations, the first ``shown`` of them with their instance's state, jobs and job output."""
        if not failures:
            return
        texts = [text + ('\n' + self.describe(outcome) if outcome is not None and pos < shown else '')
                 for pos, (text, outcome) in enumerate(failures)]
        raise AssertionError(f'{len(failures)} invariant violation(s):\n\n' + '\n\n'.join(texts))

    def job_counts(self, outcomes: list[Outcome]) -> str:
        """'N jobs: provision successful 12, ...' for the instances of ``outcomes``."""
        uids = {o.uid for o in outcomes if o.uid}
        counts: dict = {}
        for job in audit.job_records(self.stack.controller, *self.templates):
            if job.uid in uids:
                counts[(job.action, job.status)] = counts.get((job.action, job.status), 0) + 1
        return f'{sum(counts.values())} jobs (' + ', '.join(f'{a} {s} {n}' for (a, s), n in sorted(counts.items())) + ')'
