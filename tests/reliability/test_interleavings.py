"""Random interleavings of create, spec change, removal, refused change, restart and delete converge, in both delivery modes.

Each sequence is one instance: it is created, then gets one to three actions, each after a random pause (none, a short
one, a long one, or until the instance has settled):

- a spec change that can be applied: cores or memory (the VM template: a restart), an SSH key added or rotated (the
  template and the boot Secrets: a restart), the exposed ports (only the Service; ``[]`` closes them all and the Service
  goes), a larger disk (its claim grows; the reliability stack's default StorageClass allows expansion);
- a removal of a parameter (cores, memory, ports or the key go back to their defaults: the key's Secret and the VM's
  ``accessCredentials`` go);
- a refused change, once the instance has settled: another image, or a smaller disk. The instance must show
  ``ChangeRefused`` naming the field, keep its reconciled version, and its objects must still match the accepted spec
  (checked when the sequence waits for the refusal). It is always followed by a revert of that field together with a
  change that can be applied, after a pause that may also be "until the refusal shows";
- a restart through spec.restartRequestedAt; a delete, which ends the sequence.

The actions land wherever the jobs happen to be: before the operator sent anything, while a provision waits for the lock
or for its VM, after Ready. Half the sequences run through EDA (the operator stand-in posts to ansible-rulebook on
rulebooks/compute_instance_webhook.yml), half through AAP Direct (it launches the job templates itself), several at a
time. At the end every instance must be gone if deleted, else Ready and reconciled for its last spec with the last
restart request served. Whenever an instance is seen reconciled (at the end, and when a sequence waits for it to
settle), its live objects must match that spec as tests/integration/live_check.py checks them, independently of the
collection's code. The audit of tests/reliability/harness.py must find nothing left, no stuck finalizer and no
overlapping provision/deprovision.

CLOUDKIT_INTERLEAVINGS: the number of sequences, both modes together (default 40, sized so that make test fits its hour on 2 CPUs; raise it for long runs).
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

COUNT = int(os.environ.get('CLOUDKIT_INTERLEAVINGS', '40'))
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
KEYS = ('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/ one@example.com',
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIICBgoOEhYaHiImKi4yNjo+QkZKTlJWWl5iZmpucnZ6f two@example.com')
# Spec changes that can be applied (a disk can also grow: see grown()).
VALUES = {'cpu_cores': (1, 2, 3, 4), 'memory': ('1Gi', '2Gi', '3Gi', '4Gi'), 'exposed_ports': ('22/tcp', '22/tcp,80/tcp', '80/tcp,443/tcp', []),
          'ssh_public_key': KEYS}
# Parameters a removal may take out (their defaults can always be applied; a disk back to its default could be a shrink).
REMOVABLE = ('cpu_cores', 'memory', 'exposed_ports', 'ssh_public_key')
REFUSED = ('image', 'disk_size')
OTHER_IMAGE = 'quay.io/containerdisks/centos:9'
PAUSES = {'none': (0.0, 0.0), 'short': (0.0, 3.0), 'long': (3.0, 20.0), 'settled': (0.0, 1.0)}
# Before the revert of a refused change (the refused spec never settles): until the instance shows the refusal, or not.
AFTER_REFUSAL = {'none': PAUSES['none'], 'short': PAUSES['short'], 'long': PAUSES['long'], 'refused': (0.0, 1.0)}


@dataclass
class Step:
    """One action of a sequence, after a pause (``settled``: first wait until the instance is reconciled; ``refused``: until it
    shows the refusal of the previous step). ``parameters`` is the whole templateParameters a change sets."""

    pause: str
    seconds: float
    action: str
    parameters: dict = field(default_factory=dict)
    detail: str = ''
    refused_field: str = ''

    def __str__(self) -> str:
        return f'{self.action}{" " + self.detail if self.detail else ""} after {self.pause} pause of {self.seconds:.1f}s'


def grown(size: str, by: int) -> str:
    """'10Gi' grown (or shrunk, by < 0) by ``by`` GiB."""
    return f'{int(size[:-2]) + by}Gi'


def plan(index: int) -> list[Step]:
    """The actions of sequence ``index``, from its own random stream (the same for a given seed whatever runs alongside)."""
    rng = random.Random(f'{SEED}/{index}')
    current = dict(PARAMETERS)
    steps = []

    def pick_change(params):
        key = rng.choice(sorted(VALUES) + ['disk_size'])
        value = grown(params['disk_size'], 2) if key == 'disk_size' else rng.choice([v for v in VALUES[key] if v != params.get(key)])
        return dict(params, **{key: value}), f'{key}={json.dumps(value)}'

    budget = rng.randint(1, 3)  # actions, a refused change and its revert counting two
    while len(steps) < budget:
        action = rng.choices(('change', 'remove', 'refuse', 'restart', 'delete'), weights=(3, 2, 2, 2, 3))[0]
        present = [key for key in REMOVABLE if key in current]
        if (action == 'remove' and not present) or (action == 'refuse' and budget - len(steps) < 2):
            action = 'change'
        pause = 'settled' if action == 'refuse' else rng.choice(sorted(PAUSES))
        step = Step(pause, round(rng.uniform(*PAUSES[pause]), 2), action)
        if action == 'change':
            current, step.detail = pick_change(current)
            step.parameters = current
        elif action == 'remove':
            key = rng.choice(present)
            current = dict((k, v) for k, v in current.items() if k != key)
            step.parameters, step.detail = current, f'{key} removed'
        elif action == 'refuse':
            key = rng.choice(REFUSED)
            value = OTHER_IMAGE if key == 'image' else grown(current['disk_size'], -1)
            step.parameters, step.detail = dict(current, **{key: value}), f'{key}={json.dumps(value)}'
            step.refused_field = f'spec.templateParameters.{key}'
            steps.append(step)
            # The user reads the condition and reverts the field, with another change: a new version the operator sends.
            pause = 'refused' if rng.random() < 0.5 else rng.choice(sorted(AFTER_REFUSAL))
            current, detail = pick_change(current)
            step = Step(pause, round(rng.uniform(*AFTER_REFUSAL[pause]), 2), 'revert', current, f'{key} back, {detail}')
        steps.append(step)
        if action == 'delete':
            break
    return steps


def parse_time(value: str | None) -> datetime.datetime | None:
    """An RFC 3339 time, or None."""
    return datetime.datetime.fromisoformat(value.replace('Z', '+00:00')) if value else None


def restart_not_served(obj: dict) -> str | None:
    """How a reconciled instance has not served its last restart request; None if it has (the objects: live_check)."""
    requested = parse_time(obj['spec'].get('restartRequestedAt'))
    served = parse_time((obj.get('status') or {}).get('lastRestartedAt'))
    if requested is not None and (served is None or served < requested):
        return f'restart requested at {requested} not served (lastRestartedAt {served})'
    return None


def run_sequence(scenario, watch, name: str, steps: list[Step]) -> Outcome:
    """Play one sequence on a new instance, then wait for the end state its last action asks for."""
    outcome = Outcome(name)
    try:
        version = scenario.begin(outcome)
        refused = None  # (refused version, field, (accepted version, accepted spec)) until the revert
        for step in steps:
            if step.pause == 'settled':
                scenario.expect_reconciled(watch, outcome, version, TIMEOUT)
            elif step.pause == 'refused':
                scenario.expect_refused(watch, outcome, refused[0], refused[2], refused[1], TIMEOUT)
            time.sleep(step.seconds)
            if step.action == 'refuse':
                accepted = (version, scenario.get(name)['spec'])
                version = scenario.set_parameters(name, step.parameters)
                refused = (version, step.refused_field, accepted)
            elif step.action in ('change', 'remove', 'revert'):
                version = scenario.set_parameters(name, step.parameters)
            elif step.action == 'restart':
                version = scenario.restart(name)
            else:
                scenario.delete_instance(name)
                outcome.deleted = True
            outcome.did(f'{step} (config version {version})' if step.action != 'delete' else str(step))
        if outcome.deleted:
            scenario.expect_gone(watch, outcome, TIMEOUT)
        elif scenario.expect_reconciled(watch, outcome, version, TIMEOUT, spec='its last spec'):
            wrong = restart_not_served(scenario.get(name))
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
