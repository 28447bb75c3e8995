"""B3 scale: many ComputeInstances created at once through the webhook rulebook and the controller stand-in, then deleted.

Run from the repo root: ``.venv/bin/python bench/scale_bench.py [--instances 50]``. The whole local stack runs in this
process (tests/stack/local.py); the operator stand-in, in EDA mode, POSTs every instance to ansible-rulebook, whose
rule launches the create (later the delete) job template on the controller stand-in, which runs this collection's
playbooks for real. Printed: the time until every instance is Ready and reconciled, the jobs launched per instance
(target: 1), overlapping provision/deprovision writes (target: 0), the time until every instance is gone and the
objects left (target: 0). The baseline, measured first in the same run, is one instance alone: the ratio
``all / (N x one)`` says how much of the work ran in parallel (1.0 = none). Then the same number of instances again with
the operator in AAP Direct mode (it launches the job templates itself), and the latency report's per-phase p50/p95
(module_utils/latency.py, docs/latency.md) of both rounds side by side, so a change in either mode shows which phase
moved. ``--instances`` (or ``B3_INSTANCES``) sizes both rounds. Nothing is asserted; exit status 0.
"""
from __future__ import annotations

import argparse
import datetime
import io
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / '.build'):
    sys.path.insert(0, str(path))

from tests.stack.local import LocalStack  # noqa: E402  pylint: disable=wrong-import-position
from tests.stack.scenarios import VERSION, Scenario  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import ControllerClient  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kube import KubeClient  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cloudkit.provisioning.plugins.module_utils.latency import (  # noqa: E402  pylint: disable=wrong-import-position
    DEPROVISION, PHASE_LABELS, PHASES, PROVISION, LatencyReport, summarize,
)
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names  # noqa: E402  pylint: disable=wrong-import-position


def wait_until(check, timeout: float) -> float | None:
    """Seconds until ``check()`` held (polled every 0.5 s), None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def instances(scenario: Scenario) -> list[dict]:
    """Every ComputeInstance of the scenario's namespace."""
    return scenario.custom.list_namespaced_custom_object(scenario.group, VERSION, scenario.namespace, 'computeinstances')['items']


def run_round(scenario: Scenario, names: list[str], timeout: float) -> dict:
    """Create ``names`` at once, wait until all are reconciled, delete them at once, wait until all are gone."""
    jobs_before = {job.id for job in scenario.jobs_of_all()}
    with ThreadPoolExecutor(16) as pool:
        uids = [created['metadata']['uid'] for created in pool.map(scenario.create_instance, names)]
    wanted = set(names)
    ready = wait_until(lambda: sum(scenario.reconciled(obj) for obj in instances(scenario) if obj['metadata']['name'] in wanted) == len(names),
                       timeout)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(scenario.delete_instance, names))
    gone = wait_until(lambda: not any(obj['metadata']['name'] in wanted for obj in instances(scenario)), timeout)
    scenario.stack.controller.wait_idle(timeout)
    jobs = [job for job in scenario.jobs_of_all() if job.id not in jobs_before and job.uid in set(uids)]
    provisions = Counter(job.uid for job in jobs if job.action == 'provision')
    return {'ready': ready, 'gone': gone, 'provisions_per_instance': [provisions.get(uid, 0) for uid in uids],
            'failed_jobs': [f'{job.id} ({job.action}, {job.status})' for job in jobs if job.status != 'successful'], 'overlaps': scenario.overlaps() or [],
            'orphans': scenario.orphans()}


def phase_summary(stack: LocalStack, scenario: Scenario, since: datetime.datetime) -> list[dict]:
    """The latency report's p50/p95 per phase, kind of run and mode, for the runs of the scenario's namespace since ``since``."""
    report = LatencyReport(KubeClient.from_options({'kubeconfig': stack.kubeconfig}), Names(scenario.group),
                           controller=ControllerClient(stack.controller.gateway_url, token=stack.controller.token),
                           controller_host=stack.controller.gateway_url, organization=stack.organization, since=since,
                           templates={PROVISION: stack.template_name('create'), DEPROVISION: stack.template_name('delete')})
    return summarize(report.collect(namespace=scenario.namespace))


def print_phases(summary: list[dict]) -> None:
    """Per phase, p50 / p95 seconds of EDA and AAP Direct side by side, provisions then deprovisions."""
    groups = dict(((group['run'], group['mode']), group) for group in summary)
    for kind in (PROVISION, DEPROVISION):
        columns = [(kind.lower(), mode) for mode in ('EDA', 'AAP Direct')]
        heads = [f'{mode} ({groups[(run, mode)]["runs"] if (run, mode) in groups else 0} runs)' for run, mode in columns]
        print(f'  {kind.lower()} phases, p50 / p95 seconds   ' + '   '.join(f'{head:>22}' for head in heads))
        for name, _start, _end in PHASES[kind] + (('total', None, None),):
            cells = []
            for column in columns:
                stats = (groups[column]['total'] if name == 'total' else groups[column]['phases'][name]) if column in groups else {}
                cells.append('-' if not stats.get('count') else f'{stats["p50"]:.1f} / {stats["p95"]:.1f}')
            print(f'    {PHASE_LABELS.get(name, name):<34}' + '   '.join(f'{cell:>22}' for cell in cells))
        slowest = [PHASE_LABELS.get(groups[column]['slowest'], '-') if column in groups else '-' for column in columns]
        print(f'    {"slowest (by p50)":<34}' + '   '.join(f'{name:>22}' for name in slowest))


def seconds(value: float | None) -> str:
    """A duration, or 'timeout'."""
    return 'timeout' if value is None else f'{value:.1f} s'


def main(argv=None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--instances', type=int, default=int(os.environ.get('B3_INSTANCES', '50')),
                        help='how many instances are created at once, in each mode (default 50, or B3_INSTANCES)')
    parser.add_argument('--ready-delay', type=float, default=1.0, help='seconds until a started VM is Ready (KubeVirt stand-in)')
    parser.add_argument('--timeout', type=float, default=1800.0, help='seconds each wait may take')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='scale-bench-') as work, \
            LocalStack(work, ready_delay=args.ready_delay, import_delay=0.2) as stack:
        scenario = Scenario(stack, out=io.StringIO(), timeout=args.timeout)
        scenario.prepare()
        scenario.use_operator('eda', resend_after=args.timeout)
        try:
            baseline = run_round(scenario, ['scale-baseline'], args.timeout)
            since = datetime.datetime.now(datetime.timezone.utc)
            result = run_round(scenario, [f'scale-{pos:03d}' for pos in range(args.instances)], args.timeout)
            scenario.use_operator('aap', resend_after=args.timeout)
            direct = run_round(scenario, [f'scale-aap-{pos:03d}' for pos in range(args.instances)], args.timeout)
            phases = phase_summary(stack, scenario, since)
        finally:
            scenario.close()
    count = args.instances
    print(f'B3 scale: {count} instances at once through the webhook rulebook (EDA) and the controller stand-in')
    print(f'  baseline: one instance alone   ready {seconds(baseline["ready"])}   gone {seconds(baseline["gone"])}')
    for phase in ('ready', 'gone'):
        ours, one = result[phase], baseline[phase]
        ratio = f'{ours / (count * one):.2f}' if ours is not None and one else 'n/a'
        print(f'  all {phase:<5}  {seconds(ours):>9}   vs {count} x one alone {seconds(None if one is None else count * one):>9}   ratio {ratio}'
              '   (1.00 = no parallelism)')
    per_instance = Counter(result['provisions_per_instance'])
    worst = max(result['provisions_per_instance'] or [0])
    print(f'  provision jobs per instance   {dict(sorted(per_instance.items()))} (jobs: instances)   target 1   {"ok" if worst == 1 else "MISSED"}')
    print(f'  failed jobs                   {len(result["failed_jobs"])}   target 0   {"ok" if not result["failed_jobs"] else "MISSED"}')
    print(f'  overlaps                      {len(result["overlaps"])}   target 0   {"ok" if not result["overlaps"] else "MISSED"}')
    print(f'  objects left                  {len(result["orphans"])}   target 0   {"ok" if not result["orphans"] else "MISSED"}')
    print(f'  AAP Direct, {count} at once: all ready {seconds(direct["ready"])}   all gone {seconds(direct["gone"])}   failed jobs '
          f'{len(direct["failed_jobs"])} {" ".join(direct["failed_jobs"])}   overlaps {len(direct["overlaps"])}   objects left {len(direct["orphans"])}')
    print_phases(phases)
    return 0


if __name__ == '__main__':
    sys.exit(main())
