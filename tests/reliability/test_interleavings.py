"""Random interleavings of create, spec change, restart and delete converge, in both delivery modes.

Each sequence is one instance: it is created, then gets one to three actions (a spec change that restarts the VM or only
touches its Service, a restart through spec.restartRequestedAt, a delete, which ends the sequence), each after a random
pause: none, a short one, a long one, or until the instance has settled. The actions land wherever the jobs happen to be:
before the operator sent anything, while a provision waits for the lock or for its VM, after Ready. Half the sequences run
through EDA (the operator stand-in posts to ansible-rulebook on rulebooks/compute_instance_webhook.yml), half through AAP
Direct (it launches the job templates itself), several at a time. At the end every instance must be gone if deleted,
else Ready and reconciled for its last spec, with the VM as that spec says and the last restart request served; and the
audit of tests/reliability/harness.py must find nothing left, no stuck finalizer and no overlapping provision/deprovision.

CLOUDKIT_INTERLEAVINGS: the number of sequences, both modes together (default 200).
CLOUDKIT_INTERLEAVINGS_SEED: the seed of the random plans (default fixed, so a failure can be replayed).
"""
from __future__ import annotations

import datetime
import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tests.reliability.harness import CPUMeter, Outcome
from tests.stack.scenarios import PARAMETERS

COUNT = int(os.environ.get('CLOUDKIT_INTERLEAVINGS', '200'))
SEED = int(os.environ.get('CLOUDKIT_INTERLEAVINGS_SEED', '20260226'))
MODES = ('eda', 'aap')
# Sequences in flight at once, per mode: enough for jobs of different instances to overlap, few enough that a job is not
# starved of CPU for minutes (every job is a few CPU-seconds of ansible-playbook).
PARALLEL = 8
# EDA: upstream re-sent on every reconcile; here a resend comes 180 s after the last one. Sooner, a resend would mostly
# reach an instance whose job is still queued for the CPU, and only add a job that waits for the lock and verifies.
# AAP Direct: a job that ended without reconciling is launched again 5 s after it ended.
OPERATOR_OPTIONS = {'eda': {'resend_after': 180.0}, 'aap': {'resend_after': 5.0}}
TIMEOUT = 600.0
# Spec changes: cores and memory change the VM template (the job restarts the VM), ports only its Service.
VALUES = {'cpu_cores': (1, 2, 3, 4), 'memory': ('1Gi', '2Gi', '3Gi', '4Gi'), 'exposed_ports': ('22/tcp', '22/tcp,80/tcp', '80/tcp,443/tcp')}
PAUSES = {'none': (0.0, 0.0), 'short': (0.0, 3.0), 'long': (3.0, 20.0), 'settled': (0.0, 1.0)}


@dataclass
class Step:
    """One action of a sequence, after a pause (``settled``: first wait until the instance is reconciled)."""

    pause: str
    seconds: float
    action: str
    parameters: dict = field(default_factory=dict)

    def __str__(self) -> str:
        change = ' ' + json.dumps(self.parameters) if self.parameters else ''
        return f'{self.action}{change} after {self.pause} pause of {self.seconds:.1f}s'


def plan(index: int) -> list[Step]:
    """The actions of sequence ``index``, from its own random stream (the same for a given seed whatever runs alongside)."""
    rng = random.Random(f'{SEED}/{index}')
    current = dict(PARAMETERS)
    steps = []
    for _pos in range(rng.randint(1, 3)):
        action = rng.choices(('change', 'restart', 'delete'), weights=(4, 3, 3))[0]
        pause = rng.choice(sorted(PAUSES))
        step = Step(pause, round(rng.uniform(*PAUSES[pause]), 2), action)
        if action == 'change':
            key = rng.choice(sorted(VALUES))
            step.parameters = {key: rng.choice([v for v in VALUES[key] if v != current[key]])}
            current.update(step.parameters)
        steps.append(step)
        if action == 'delete':
            break
    return steps


def parse_time(value: str | None) -> datetime.datetime | None:
    """An RFC 3339 time, or None."""
    return datetime.datetime.fromisoformat(value.replace('Z', '+00:00')) if value else None


def off_spec(scenario, obj: dict) -> str | None:
    """How a reconciled instance differs from its spec (VM cores and memory, Service ports, restart served); None if not."""
    parameters = json.loads(obj['spec']['templateParameters'])
    name = obj['metadata']['name']
    vm = scenario.custom.get_namespaced_custom_object('kubevirt.io', 'v1', scenario.tenant_namespace, 'virtualmachines', name)
    domain = vm['spec']['template']['spec']['domain']
    wrong = []
    if domain['cpu']['cores'] != parameters['cpu_cores'] or domain['memory']['guest'] != parameters['memory']:
        wrong.append(f'VM has {domain["cpu"]["cores"]} cores and {domain["memory"]["guest"]}, the spec {parameters["cpu_cores"]} and {parameters["memory"]}')
    service = scenario.core.read_namespaced_service(f'{name}-load-balancer', scenario.tenant_namespace)
    ports = sorted((p.port, p.protocol) for p in service.spec.ports)
    wanted = sorted((int(p.split('/')[0]), p.split('/')[1].upper()) for p in parameters['exposed_ports'].split(','))
    if ports != wanted:
        wrong.append(f'Service exposes {ports}, the spec {wanted}')
    requested = parse_time(obj['spec'].get('restartRequestedAt'))
    served = parse_time((obj.get('status') or {}).get('lastRestartedAt'))
    if requested is not None and (served is None or served < requested):
        wrong.append(f'restart requested at {requested} not served (lastRestartedAt {served})')
    return '; '.join(wrong) or None


def run_sequence(scenario, watch, name: str, steps: list[Step]) -> Outcome:
    """Play one sequence on a new instance, then wait for the end state its last action asks for."""
    outcome = Outcome(name)
    try:
        version = scenario.begin(outcome)
        for step in steps:
            if step.pause == 'settled':
                scenario.expect_reconciled(watch, outcome, version, TIMEOUT)
            time.sleep(step.seconds)
            if step.action == 'change':
                version = scenario.change(name, **step.parameters)
            elif step.action == 'restart':
                version = scenario.restart(name)
            else:
                scenario.delete_instance(name)
                outcome.deleted = True
            outcome.did(f'{step} (config version {version})' if step.action != 'delete' else str(step))
        if outcome.deleted:
            scenario.expect_gone(watch, outcome, TIMEOUT)
        elif scenario.expect_reconciled(watch, outcome, version, TIMEOUT, spec='its last spec'):
            wrong = off_spec(scenario, scenario.get(name))
            if wrong:
                outcome.failed(f'reconciled, but {wrong}')
        outcome.did('gone' if outcome.deleted else 'Ready and reconciled' if outcome.problem is None else 'gave up')
    except Exception as exc:  # pylint: disable=broad-except  # one broken sequence must not hide what the others show
        outcome.failed(f'{type(exc).__name__}: {exc}')
    outcome.seconds = time.monotonic() - outcome.started
    return outcome


@pytest.mark.parametrize('mode', MODES)
def test_random_interleavings_converge(scenario_in, mode):
    """Half of the CLOUDKIT_INTERLEAVINGS random sequences in this delivery mode: all converge, nothing left, no overlap."""
    label = f'interleavings ({"EDA" if mode == "eda" else "AAP Direct"})'
    indices = [i for i in range(COUNT) if MODES[i % len(MODES)] == mode]
    if not indices:
        pytest.skip(f'CLOUDKIT_INTERLEAVINGS={COUNT} leaves no sequence for {mode}')
    scenario = scenario_in(f'rel-{mode}')
    scenario.use_operator(mode, **OPERATOR_OPTIONS[mode])
    scenario.deliverable()
    watch = scenario.watch()
    meter = CPUMeter()
    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            outcomes = list(pool.map(lambda i: run_sequence(scenario, watch, f'{mode}-{i:03d}', plan(i)), indices))
    finally:
        watch.stop()
    failures = scenario.audit(outcomes, label)
    deleted = sum(o.deleted for o in outcomes)
    scenario.say(f'== {label}: {len(outcomes)} sequences (seed {SEED}; {deleted} end deleted), {PARALLEL} at a time: {meter}, '
                 f'{meter.total() / len(outcomes):.1f} CPU-s per sequence; {scenario.job_counts(outcomes)}')
    scenario.verdict(failures)
