"""`make demo` end to end: the operator stand-in drives the jobs through EDA, then AAP Direct (tests/stack/scenarios.py).

Runs the very command `make demo` runs (tools/demo.sh) with --json, and checks every step of the report; and the choice of
the cluster: only DEMO_KUBECONFIG, never an exported KUBECONFIG.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.stack import scenarios

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(bool(os.environ.get("CLOUDKIT_TEST_KUBECONFIG")), reason="the demo runs on the local stand-ins here")
def test_make_demo_converges_in_both_modes(tmp_path):
    environment = dict(os.environ)
    environment.pop("KUBECONFIG", None)  # a developer's cluster must not take the demo over
    result = subprocess.run([str(ROOT / "tools" / "demo.sh"), "--json", "--work-dir", str(tmp_path)], capture_output=True, text=True,
                            timeout=900, check=False, cwd=ROOT, env=environment)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    report = json.loads(result.stdout)
    assert report["converged"] is True
    steps = dict(((step["mode"], step["step"]), step) for step in report["steps"])
    assert list(steps) == [("EDA", "create"), ("EDA", "spec change"), ("EDA", "delete during provision"),
                           ("AAP Direct", "create"), ("AAP Direct", "delete during provision")]
    for step in report["steps"]:
        assert step["converged"] and step["overlaps"] == 0 and step["objects_left"] == 0, step
    actions = dict((key, [(job["action"], job["status"]) for job in step["jobs"]]) for key, step in steps.items())
    assert actions[("EDA", "create")] == [("provision", "successful")]
    assert actions[("EDA", "spec change")] == [("provision", "successful")]
    # The running provision ends before the deprovision: it sees the deletionTimestamp and stands aside (failed,
    # no Ready written), unless the delete job (EDA) or the operator (AAP Direct) canceled it first.
    stood_aside_or_canceled = ([("provision", "failed"), ("deprovision", "successful")],
                               [("provision", "canceled"), ("deprovision", "successful")])
    assert actions[("EDA", "delete during provision")] in stood_aside_or_canceled
    assert actions[("AAP Direct", "create")] == [("provision", "successful")]
    assert actions[("AAP Direct", "delete during provision")] in stood_aside_or_canceled
    # Each step shows where its time went: the latency report's table of the step's runs, joined with the controller's
    # job ids (the same ids the step's job records have).
    for key, step in steps.items():
        table = step["latency"]
        assert table and table[0].split()[:4] == ["instance", "run", "mode", "job"], (key, table)
        # The run rows (the notes below the table say "<instance> <run> ...: missing ..." and contain ": ").
        rows = [line.split() for line in table[1:] if line.startswith("cloudkit-demo/") and ": " not in line]
        mode = key[0].split()
        assert {row[len(mode) + 2] for row in rows} >= {str(job["id"]) for job in step["jobs"] if job["status"] == "successful"}, (key, table)
        assert all(row[2:2 + len(mode)] == mode for row in rows), (key, table)
    assert "where the time went (seconds):" in result.stderr
    # The person watching sees the progress and the story on stderr.
    assert "phase=Progressing" in result.stderr and "deleting it now, while the provision job works" in result.stderr
    assert "job" in result.stderr and "deprovision: successful" in result.stderr


def test_summary_table():
    """The table a person reads, rendered from step results (no stack needed)."""
    from tests.stack.scenarios import StepResult, table

    good = StepResult("create", "EDA", "vm", seconds=12.34, jobs_launched=1, converged=True)
    bad = StepResult("delete during provision", "AAP Direct", "vm", seconds=240.0, jobs_launched=2, objects_left=3, converged=False)
    text = table([good, bad]).splitlines()
    assert text[0].split() == ["step", "mode", "time", "jobs", "launched", "overlaps", "objects", "left", "result"]
    assert text[2].split() == ["create", "EDA", "12.3s", "1", "0", "0", "ok"]
    assert text[3].split()[-5:] == ["2", "0", "3", "NOT", "CONVERGED"]


def test_an_exported_kubeconfig_never_chooses_the_demos_cluster():
    """`make demo` runs on the local stack unless DEMO_KUBECONFIG names a cluster: a KUBECONFIG or K8S_AUTH_* the user
    exported for other work neither chooses the cluster nor reaches the demo's jobs and clients."""
    inherited = {"KUBECONFIG": "/home/user/.kube/prod", "K8S_AUTH_KUBECONFIG": "/home/user/.kube/prod",
                 "K8S_AUTH_HOST": "https://prod.example:6443", "K8S_AUTH_API_KEY": "t", "PATH": "/usr/bin"}
    environ = dict(inherited)
    assert scenarios.demo_cluster(environ) is None
    assert environ == {"PATH": "/usr/bin"}
    environ = dict(inherited, DEMO_KUBECONFIG="~/.kube/lab")
    assert scenarios.demo_cluster(environ) == os.path.expanduser("~/.kube/lab")
    assert environ == {"PATH": "/usr/bin", "DEMO_KUBECONFIG": "~/.kube/lab"}
    assert scenarios.demo_cluster({"DEMO_KUBECONFIG": ""}) is None
