"""Delete during provisioning, through the AAP controller stand-in (the seed's critical bug, jobs 7265/7267).

Create and delete jobs of the same instances are launched in both orders and at
random moments. The delete job cancels the instance's running provision jobs,
waits until they are finished, then takes the instance's lock. From the API
server's write log (each write names its job) no deprovision write happens
before the last provision write of that instance; every instance and every
object made for it ends up gone; no job is left running.

CLOUDKIT_OVERLAP_RUNS sets the number of runs (default 24, sized for make test's hour on 2 CPUs; raise it for long runs).
"""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes
import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.aap import ControllerClient
from tests.integration.instances import Operator
from tests.stack.controller import ControllerServer

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("CLOUDKIT_OVERLAP_RUNS", "24"))
PARALLEL = 4
TERMINAL = ("successful", "failed", "error", "canceled")
OURS = "cloudkit.openshift.io/computeinstance-aap"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, kube):
    """API and KubeVirt stand-ins (VMs Ready after 4 s) and a controller whose jobs run our playbooks."""
    from tests.stack.kubevirt import KubeVirtController

    with kube.new_api() as api:  # the backend under test, with the write log to audit
        kubeconfig = str(api.write_kubeconfig(tmp_path_factory.mktemp("ddp") / "kubeconfig"))
        with KubeVirtController(kubeconfig, ready_delay=4.0, import_delay=0.3), ControllerServer([], project_dir=ROOT / "playbooks") as controller:
            yield api, kubeconfig, _templates(controller, kubeconfig)


def _templates(controller, kubeconfig):
    """The two job templates, running this collection's playbooks against the stand-ins."""
    environment = {
        "K8S_AUTH_KUBECONFIG": kubeconfig,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".build"),
        "CONTROLLER_HOST": controller.gateway_url,
        "CONTROLLER_OAUTH_TOKEN": controller.token,
    }
    for action in ("create", "delete"):
        controller.add_template({"name": "innabox-%s-compute-instance" % action, "organization": "innabox", "type": "job",
                                 "playbook": "%s_compute_instance.yml" % action, "allow_simultaneous": True,
                                 "ask_variables_on_launch": True, "environment": environment})
    return controller


def _brief(write):
    return "#%d %s %s/%s%s %s" % (write["seq"], write["method"], write["kind"], write["name"], "/" + write["subresource"] if write["subresource"] else "",
                                  write["user_agent"])


def job_writes(log, job_id):
    marker = "job/%s" % job_id
    return [w for w in log if marker in (w.get("user_agent") or "").split() and w["status"] < 300 and w["kind"] != "leases"]


def test_delete_during_provision(stack):
    api, kubeconfig, controller = stack
    operator = Operator(kubernetes.config.new_client_from_config(config_file=kubeconfig), kubeconfig)
    operator.ensure_namespace("tenants")
    operator.tenant("tenants", "acme", "tenant-acme")
    aap = ControllerClient(controller.gateway_url, token=controller.token)
    templates = {action: aap.find_template("innabox-%s-compute-instance" % action, "innabox") for action in ("create", "delete")}
    rng = random.Random(7265)
    # Most runs delete while the create job is somewhere in its work (it takes several seconds, the VM 4 s of it).
    plans = [("vm-%02d" % i, rng.choice(["create-first"] * 4 + ["create-starting", "delete-first"]), rng.uniform(0, 5)) for i in range(RUNS)]
    jobs = {}
    lock = threading.Lock()

    def run(plan):
        name, order, delay = plan
        created = operator.create("tenants", name, {})
        uid = created["metadata"]["uid"]
        launched = {}
        if order in ("create-first", "create-starting"):
            launched["create"] = aap.launch(templates["create"], {"ansible_eda": {"event": {"payload": created}}})["id"]
            controller.wait_status(launched["create"], ("running",) + TERMINAL, timeout=120)
            if order == "create-first":
                # Once the create owns the instance (its finalizer), at a random moment of its provisioning.
                deadline = time.monotonic() + 60
                while OURS not in (operator.get("tenants", name)["metadata"].get("finalizers") or []) and time.monotonic() < deadline:
                    time.sleep(0.1)
            time.sleep(delay)
            operator.delete("tenants", name)
            launched["delete"] = aap.launch(templates["delete"], {"ansible_eda": {"event": {"payload": operator.get("tenants", name)}}})["id"]
        else:
            # The delete arrives first (or the create is slow to start): the create must then do nothing harmful.
            launched["delete"] = aap.launch(templates["delete"], {"ansible_eda": {"event": {"payload": created}}})["id"]
            time.sleep(delay / 4)
            launched["create"] = aap.launch(templates["create"], {"ansible_eda": {"event": {"payload": created}}})["id"]
            controller.wait_status(launched["create"], ("running",) + TERMINAL, timeout=120)
            time.sleep(delay)
            operator.delete("tenants", name)
            launched["delete-again"] = aap.launch(templates["delete"], {"ansible_eda": {"event": {"payload": operator.get("tenants", name)}}})["id"]
        with lock:
            jobs[name] = (uid, order, launched)

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(run, plans))
    assert controller.wait_idle(timeout=900), "jobs still running"
    log = api.write_log()

    report = {"create-first": 0, "create-starting": 0, "delete-first": 0, "provisions canceled": 0}
    for name, (uid, order, launched) in sorted(jobs.items()):
        report[order] += 1
        states = dict((key, controller.job(job_id)["status"]) for key, job_id in launched.items())
        assert all(state in TERMINAL for state in states.values()), (name, states)
        final_delete = launched.get("delete-again", launched["delete"])
        assert states["delete-again" if "delete-again" in launched else "delete"] == "successful", (name, controller.job(final_delete)["stdout"][-3000:])
        report["provisions canceled"] += states["create"] == "canceled"
        if os.environ.get("CLOUDKIT_OVERLAP_DEBUG"):
            print(name, order, states, controller.job(launched["delete"])["stdout"][-2500:])  # noqa: T201
        provision_writes = job_writes(log, launched["create"])
        deprovision_writes = [w for key in ("delete", "delete-again") if key in launched for w in job_writes(log, launched[key])]
        if provision_writes and deprovision_writes:
            first_deprovision = min(deprovision_writes, key=lambda w: w["seq"])
            late = [w for w in provision_writes if w["seq"] > first_deprovision["seq"]]
            assert not late, "%s (%s, jobs %s): deprovision write %s came before provision writes %s" % (
                name, order, states, _brief(first_deprovision), [_brief(w) for w in late])
        operator.release("tenants", name)
        assert operator.get("tenants", name) is None, name
        assert operator.objects("tenant-acme", uid) == [], "%s left objects behind" % name
    print("delete during provision: %d runs, %s" % (len(jobs), report))  # noqa: T201
    assert not [j for j in controller.jobs() if j["status"] not in TERMINAL]
