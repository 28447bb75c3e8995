"""No writer's finalizer or label is ever lost under concurrent writers (docs/contract.md, Upstream defects).

Two processes toggle their own finalizer on one object with the finalizer
module's logic; a third toggles its own finalizer and rewrites a label. Each
writer checks before every round that the object still shows what it left;
anything else is a lost write. The same harness with naive read-modify-write
writers must lose writes, which proves the check can fail.
"""

from __future__ import annotations

import multiprocessing
import random
import time

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils import guarded, kube, kube_resources
from ansible_collections.cloudkit.provisioning.plugins.module_utils.metadata import set_finalizer

ROUNDS = 1000
NAIVE_ROUNDS = 300
OBJECT = "contended"


def _client(kubeconfig):
    return kube.KubeClient.from_options({"kubeconfig": kubeconfig})


def _naive_set_finalizer(client, resource, namespace, finalizer, present):
    """The upstream role's way: read the list, change it, write the whole list back unguarded."""
    live = client.get(resource, OBJECT, namespace)
    finalizers = [f for f in live["metadata"].get("finalizers") or [] if f != finalizer]
    if present:
        finalizers.append(finalizer)
    time.sleep(random.uniform(0, 0.002))  # the window a slow playbook leaves between its read and its write
    client.patch(resource, OBJECT, {"metadata": {"finalizers": finalizers}}, namespace, patch_type="merge")


def _naive_set_label(client, resource, namespace, value):
    live = client.get(resource, OBJECT, namespace)
    live["metadata"].setdefault("labels", {})["writer-c"] = value
    del live["metadata"]["resourceVersion"]  # an unconditional replace, like a template re-applied blindly
    time.sleep(random.uniform(0, 0.002))
    client.replace(resource, live, namespace)


def _guarded_set_label(client, resource, namespace, value):
    patch = [{"op": "add", "path": guarded.json_pointer("metadata", "labels", "writer-c"), "value": value}]
    client.patch(resource, OBJECT, patch, namespace, patch_type="json")


def writer(kubeconfig, namespace, finalizer, edits_labels, naive, rounds, seed, results):
    """Toggle `finalizer` (and the writer-c label) `rounds` times; report lost writes and the final state."""
    random.seed(seed)
    client = _client(kubeconfig)
    resource = kube_resources.STATIC_RESOURCES[("v1", "ConfigMap")]
    present, label, lost = False, None, []
    for round_number in range(rounds):
        live = client.get(resource, OBJECT, namespace)["metadata"]
        if (finalizer in (live.get("finalizers") or [])) != present:
            lost.append("round %d: %s should be %s" % (round_number, finalizer, "present" if present else "absent"))
            present = not present
        if edits_labels and (live.get("labels") or {}).get("writer-c") != label:
            lost.append("round %d: label writer-c should be %r, is %r" % (round_number, label, (live.get("labels") or {}).get("writer-c")))
        present = not present
        if naive:
            _naive_set_finalizer(client, resource, namespace, finalizer, present)
        else:
            set_finalizer(client, resource, OBJECT, namespace, finalizer, present)
        if edits_labels:
            label = "r%d" % round_number
            (_naive_set_label if naive else _guarded_set_label)(client, resource, namespace, label)
    results.put({"finalizer": finalizer, "present": present, "label": label if edits_labels else None, "lost": lost})


def run_writers(kube, namespace, naive, rounds):
    client = _client(kube.kubeconfig)
    resource = kube_resources.STATIC_RESOURCES[("v1", "ConfigMap")]
    client.create(resource, {"metadata": {"name": OBJECT, "namespace": namespace, "labels": {"keep": "me"}}, "data": {"k": "v"}})
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    specs = [("a.example.com/writer", False), ("b.example.com/writer", False), ("c.example.com/writer", True)]
    processes = [
        context.Process(target=writer, args=(kube.kubeconfig, namespace, finalizer, labels, naive, rounds, index, results))
        for index, (finalizer, labels) in enumerate(specs)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=600) for _process in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    final = client.get(resource, OBJECT, namespace)["metadata"]
    for report in reports:
        if (report["finalizer"] in (final.get("finalizers") or [])) != report["present"]:
            report["lost"].append("final: %s should be %s" % (report["finalizer"], "present" if report["present"] else "absent"))
        if report["label"] is not None and (final.get("labels") or {}).get("writer-c") != report["label"]:
            report["lost"].append("final: label writer-c should be %r" % report["label"])
    assert (final.get("labels") or {}).get("keep") == "me"
    return [line for report in reports for line in report["lost"]]


@pytest.fixture
def contention(kube):
    """A little latency on the stand-in widens every read-to-write window, as a busy API server does."""
    if kube.server is not None:
        kube.server.faults.set(latency=0.0005)
    yield
    if kube.server is not None:
        kube.server.faults.clear()


def test_guarded_writers_lose_nothing(kube, namespace, contention):
    lost = run_writers(kube, namespace, naive=False, rounds=ROUNDS)
    assert lost == []


def test_naive_writers_lose_writes(kube, namespace, contention):
    """The detector works: the upstream read-modify-write loses writes under the same load."""
    lost = run_writers(kube, namespace, naive=True, rounds=NAIVE_ROUNDS)
    assert lost, "naive read-modify-write lost nothing: the harness cannot detect lost writes"
