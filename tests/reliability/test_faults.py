"""Whole lifecycles converge while the Kubernetes API misbehaves.

The API stand-in refuses 10% of all requests (409 Conflict, 429 TooManyRequests, 500) before applying them, answers every
request 30 ms late, and cuts every watch stream after 3 s. That reaches every client: the jobs (this collection's playbooks,
launched by the operator stand-in in AAP Direct mode), the operator stand-in, the KubeVirt stand-in and the test's own user
actions (which retry like a user would). CLOUDKIT_FAULT_LIFECYCLES create -> Ready -> spec change -> Ready -> delete -> gone
lifecycles run, 5 at a time (default 10, sized so that make test fits its hour on 2 CPUs; raise it for long runs).
Afterwards, with the faults off, tests/reliability/harness.py audits the four invariants.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from tests.reliability.harness import USER_AGENT, CPUMeter, Outcome

LIFECYCLES = int(os.environ.get('CLOUDKIT_FAULT_LIFECYCLES', '10'))
PARALLEL = 5
FAULTS = {'error_rate': 0.1, 'error_codes': (409, 429, 500), 'latency': 0.03, 'cut_watches_after': 3.0, 'conflicts_on_writes_only': True}
FAULT_SEED = 20260226
LABEL = 'faults'
# Seconds one wait may take: jobs queue for the 2 CPUs, and a failed provision is launched again.
TIMEOUT = 600.0


def lifecycle(scenario, watch, name: str) -> Outcome:
    """Create, wait for Ready, change the VM template (a restart), wait for Ready, delete, wait until gone."""
    outcome = Outcome(name)
    try:
        version = scenario.begin(outcome)
        scenario.expect_reconciled(watch, outcome, version, TIMEOUT)
        outcome.did('Ready')
        version = scenario.change(name, cpu_cores=4, memory='4Gi')
        outcome.did(f'spec changed (config version {version})')
        scenario.expect_reconciled(watch, outcome, version, TIMEOUT, spec='the changed spec')
        outcome.did('Ready with the changed spec')
        # Deleted even when a wait above gave up: the delete path is audited too, and nothing may be left either way.
        scenario.delete_instance(name)
        outcome.deleted = True
        outcome.did('deleted')
        scenario.expect_gone(watch, outcome, TIMEOUT)
        outcome.did('gone')
    except Exception as exc:  # pylint: disable=broad-except  # one broken lifecycle must not hide what the others show
        outcome.failed(f'{type(exc).__name__}: {exc}')
    outcome.seconds = time.monotonic() - outcome.started
    return outcome


def refused_writes(stack, since: int) -> dict:
    """Writes the API refused while the faults were on, by client (the write log names each client's User-Agent)."""
    counts = {'jobs': 0, 'operator stand-in': 0, 'KubeVirt stand-in': 0, 'test user': 0}
    for write in stack.api.write_log(since):
        if write['status'] not in FAULTS['error_codes']:
            continue
        agent = write.get('user_agent') or ''
        if 'job/' in agent:
            counts['jobs'] += 1
        elif agent == USER_AGENT:
            counts['test user'] += 1
        elif write['kind'] in ('computeinstances', 'tenants'):
            counts['operator stand-in'] += 1
        else:
            counts['KubeVirt stand-in'] += 1
    return counts


def test_lifecycles_converge_under_api_faults(stack, scenario_in):
    """CLOUDKIT_FAULT_LIFECYCLES lifecycles through AAP Direct under API errors, latency and cut watches: all converge, nothing left, no overlap."""
    scenario = scenario_in('rel-faults')
    # A provision that failed under the faults is launched again 3 s after it ended (the operator's resend_after).
    scenario.use_operator('aap', resend_after=3.0)
    watch = scenario.watch()
    since = (stack.api.write_log() or [{'seq': 0}])[-1]['seq']
    meter = CPUMeter()
    stack.api.faults.set(seed=FAULT_SEED, **FAULTS)
    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            outcomes = list(pool.map(lambda pos: lifecycle(scenario, watch, f'life-{pos:02d}'), range(LIFECYCLES)))
    finally:
        stack.api.faults.clear()
        watch.stop()
    refused = refused_writes(stack, since)
    failures = scenario.audit(outcomes, LABEL)
    scenario.say(f'== {LABEL}: {LIFECYCLES} lifecycles, {PARALLEL} at a time: {meter}; {scenario.job_counts(outcomes)}; '
                 f'writes refused by the fault switch: {refused}')
    scenario.say('   per lifecycle: ' + ', '.join(f'{o.name} {o.seconds:.0f}s' for o in outcomes))
    # The faults must have reached every client, or this test proves nothing about that client.
    assert all(refused.values()), f'a client got no injected fault: {refused}'
    scenario.verdict(failures)
