"""The computeinstances event source against the Kubernetes API under test, driven through main(queue, args)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from unittest.mock import ANY
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client, config

from ansible_collections.cloudkit.provisioning.extensions.eda.plugins.event_source import computeinstances
from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names
from tests.integration.instances import Operator
from tests.stack.kubeapi import DEFAULT_CRD_DIR, KubeAPIServer
from tests.stack.local import free_port

CLOUDKIT = Names()
OSAC = Names("osac.openshift.io")
VERSION = "v1alpha1"
# A safety net for a hung test, not a measurement.
PATIENCE = 60

# Short waits so reconnects and relists happen within a test; rulebooks keep the defaults.
FAST = {"reconnect_delay": 0.05, "reconnect_max_delay": 0.3, "heartbeat": 0.2}


class Events:
    """Everything the source put on its queue, read in order."""

    def __init__(self, queue):
        self.queue = queue

    async def until(self, predicate):
        """Events up to and including the first one matching predicate."""
        collected = []
        async with asyncio.timeout(PATIENCE):
            while True:
                event = await self.queue.get()
                collected.append(event)
                if predicate(event):
                    return collected

    async def action(self, action, name):
        """Events up to the `action` event for instance `name`."""
        return await self.until(lambda e: e.get("action") == action and e["identity"]["name"] == name)

    async def heartbeat(self, predicate):
        return (await self.until(lambda e: "heartbeat" in e and predicate(e["heartbeat"])))[-1]["heartbeat"]


def actions(events):
    """(action, name, desired config version) of the action events."""
    return [(e["action"], e["identity"]["name"], e["identity"]["desired_config_version"]) for e in events if "action" in e]


@contextlib.asynccontextmanager
async def running_source(args):
    """main() as ansible-rulebook runs it; on exit it is cancelled and must stop without loop errors or leaks."""
    loop = asyncio.get_running_loop()
    problems = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context.get("message")))
    queue = asyncio.Queue()
    task = asyncio.create_task(computeinstances.main(queue, args))
    try:
        yield Events(queue)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        gc.collect()  # an unclosed aiohttp session reports itself when collected
        await asyncio.sleep(0)
        assert not problems, problems
    assert task.cancelled(), "main() ended on its own: %r" % (task.exception(),)


def run(scenario):
    asyncio.run(scenario())


def in_thread(func, *args, **kwargs):
    return asyncio.to_thread(func, *args, **kwargs)


@pytest.fixture
def operator(api_client, kube):
    return Operator(api_client, kube.kubeconfig)


def custom_api(api_client):
    return client.CustomObjectsApi(api_client)


def annotate(api_client, namespace, name, annotations, group=CLOUDKIT.api_group, finalizers=None):
    metadata = {"annotations": annotations}
    if finalizers is not None:
        metadata["finalizers"] = finalizers
    return custom_api(api_client).patch_namespaced_custom_object(group, VERSION, namespace, "computeinstances", name, {"metadata": metadata})


def test_lifecycle_create_change_catch_up_delete(kube, api_client, namespace, operator):
    """create → provision; annotation catch-up → nothing; spec change → provision; delete → deprovision; gone → forgotten."""

    async def scenario():
        async with running_source(dict(FAST, kubeconfig=kube.kubeconfig, namespace=namespace)) as events:
            created = await in_thread(operator.create, namespace, "vm1", {"cpu_cores": 2})
            first = created["status"]["desiredConfigVersion"]
            seen = await events.action("provision", "vm1")
            assert actions(seen) == [("provision", "vm1", first)]
            event = seen[-1]
            assert event["payload"] is event["instance"]
            assert event["instance"]["metadata"]["uid"] == created["metadata"]["uid"]
            assert event["identity"]["uid"] == created["metadata"]["uid"] and event["identity"]["api_group"] == CLOUDKIT.api_group

            # The provision job succeeded: our finalizer and the annotation at the provisioned version.
            await in_thread(annotate, api_client, namespace, "vm1", {CLOUDKIT.reconciled_config_version_annotation: first},
                            finalizers=[CLOUDKIT.operator_finalizer, CLOUDKIT.finalizer])
            await in_thread(operator.create, namespace, "marker1")
            assert actions(await events.action("provision", "marker1")) == [("provision", "marker1", ANY)]
            changed = await in_thread(operator.change_spec, namespace, "vm1", parameters={"cpu_cores": 4})
            second = changed["status"]["desiredConfigVersion"]
            assert second != first
            assert actions(await events.action("provision", "vm1")) == [("provision", "vm1", second)]
            await in_thread(annotate, api_client, namespace, "vm1", {CLOUDKIT.reconciled_config_version_annotation: second})

            await in_thread(operator.delete, namespace, "vm1")
            seen = await events.action("deprovision", "vm1")
            assert actions(seen) == [("deprovision", "vm1", second)]
            assert seen[-1]["instance"]["metadata"]["deletionTimestamp"]
            # The delete job removed our finalizer, the operator its own: the object is gone and forgotten.
            await in_thread(annotate, api_client, namespace, "vm1", {}, finalizers=[CLOUDKIT.operator_finalizer])
            await in_thread(operator.release, namespace, "vm1")
            await in_thread(operator.create, namespace, "marker2")
            assert actions(await events.action("provision", "marker2")) == [("provision", "marker2", ANY)]
            beat = await events.heartbeat(lambda h: h["instances"] == 2)
            assert beat["connected"] == {namespace: True} and beat["namespaces"] == [namespace]

    run(scenario)


def test_annotation_catch_up_emits_nothing(kube, api_client, namespace, operator):
    async def scenario():
        async with running_source(dict(FAST, kubeconfig=kube.kubeconfig, namespace=namespace)) as events:
            created = await in_thread(operator.create, namespace, "vm1")
            await events.action("provision", "vm1")
            await in_thread(annotate, api_client, namespace, "vm1",
                            {CLOUDKIT.reconciled_config_version_annotation: created["status"]["desiredConfigVersion"]})
            await in_thread(operator.create, namespace, "marker")
            assert actions(await events.action("provision", "marker")) == [("provision", "marker", ANY)]

    run(scenario)


def test_manual_and_unmanaged_instances_emit_nothing(kube, api_client, namespace, operator):
    async def scenario():
        async with running_source(dict(FAST, kubeconfig=kube.kubeconfig, namespace=namespace, raw_events=True)) as events:
            for name, state in (("hands-off-1", "manual"), ("hands-off-2", "unmanaged")):
                await in_thread(operator.create, namespace, name, annotations={CLOUDKIT.management_state_annotation: state})
            await in_thread(annotate, api_client, namespace, "hands-off-1", {}, finalizers=[CLOUDKIT.operator_finalizer, CLOUDKIT.finalizer])
            await in_thread(operator.delete, namespace, "hands-off-1")
            await in_thread(operator.create, namespace, "marker")
            seen = await events.action("provision", "marker")
            assert actions(seen) == [("provision", "marker", ANY)]
            # Both were seen (listed or watched, depending on when the source started), the deletion too, and ignored.
            raw = [e["instance"] for e in seen if "type" in e]
            assert any(i["metadata"]["name"] == "hands-off-2" and (i.get("status") or {}).get("desiredConfigVersion") for i in raw)
            assert any(i["metadata"]["name"] == "hands-off-1" and i["metadata"].get("deletionTimestamp") for i in raw)

    run(scenario)


def test_missing_desired_version_waits_for_the_operator(kube, api_client, namespace):
    async def scenario():
        async with running_source(dict(FAST, kubeconfig=kube.kubeconfig, namespace=namespace)) as events:
            body = {"apiVersion": CLOUDKIT.api_version, "kind": "ComputeInstance", "metadata": {"name": "fresh"},
                    "spec": {"templateID": "cloudkit.templates.ocp_virt_vm"}}
            await in_thread(custom_api(api_client).create_namespaced_custom_object, CLOUDKIT.api_group, VERSION, namespace, "computeinstances", body)
            await in_thread(custom_api(api_client).patch_namespaced_custom_object_status, CLOUDKIT.api_group, VERSION, namespace,
                            "computeinstances", "fresh", {"status": {"phase": "Progressing"}})
            await in_thread(custom_api(api_client).patch_namespaced_custom_object_status, CLOUDKIT.api_group, VERSION, namespace,
                            "computeinstances", "fresh", {"status": {"desiredConfigVersion": "abc123"}})
            assert actions(await events.action("provision", "fresh")) == [("provision", "fresh", "abc123")]

    run(scenario)


def test_osac_group(kube, api_client, namespace):
    osac = Operator(api_client, kube.kubeconfig, group=OSAC.api_group)
    cloudkit = Operator(api_client, kube.kubeconfig)

    async def scenario():
        async with running_source(dict(FAST, kubeconfig=kube.kubeconfig, namespace=namespace, api_group=OSAC.api_group)) as events:
            await in_thread(cloudkit.create, namespace, "cloudkit-vm")
            await in_thread(osac.create, namespace, "osac-vm")
            seen = await events.action("provision", "osac-vm")
            assert actions(seen) == [("provision", "osac-vm", ANY)]
            assert seen[-1]["instance"]["apiVersion"] == OSAC.api_version and seen[-1]["identity"]["api_group"] == OSAC.api_group
            await in_thread(annotate, api_client, namespace, "osac-vm", {}, group=OSAC.api_group,
                            finalizers=[OSAC.operator_finalizer, OSAC.finalizer])
            await in_thread(osac.delete, namespace, "osac-vm")
            assert actions(await events.action("deprovision", "osac-vm")) == [("deprovision", "osac-vm", ANY)]

    run(scenario)


def test_several_namespaces_and_label_selector(kube, api_client, namespace, operator):
    other = "ct-%s" % uuid.uuid4().hex[:10]
    operator.ensure_namespace(other)

    async def scenario():
        args = dict(FAST, kubeconfig=kube.kubeconfig, namespaces="%s,%s" % (namespace, other), label_selector="team=blue")
        async with running_source(args) as events:
            for target in (namespace, other):
                await in_thread(operator.create, target, "unlabelled")
                created = await in_thread(operator.create, target, "blue")
                await in_thread(custom_api(api_client).patch_namespaced_custom_object, CLOUDKIT.api_group, VERSION, target, "computeinstances",
                                "blue", {"metadata": {"labels": {"team": "blue"}}})
                assert created["metadata"]["namespace"] == target
            seen = await events.action("provision", "blue")
            seen += await events.action("provision", "blue")
            assert sorted(e["identity"]["namespace"] for e in seen if "action" in e) == sorted([namespace, other])
            assert all(e["identity"]["name"] == "blue" for e in seen if "action" in e)
            beat = await events.heartbeat(lambda h: h["instances"] == 2)
            assert beat["namespaces"] == [namespace, other]
    try:
        run(scenario)
    finally:
        client.CoreV1Api(api_client).delete_namespace(other)


def _bulk_instances(operator, namespace, count):
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda number: operator.create(namespace, "vm-%04d" % number), range(count)))


def test_a_thousand_instances(kube, namespace, operator):
    """The initial list emits exactly one provision per instance (paged), and nothing twice afterwards."""
    created = _bulk_instances(operator, namespace, 1000)

    async def scenario():
        async with running_source(dict(FAST, kubeconfig=kube.kubeconfig, namespace=namespace, page_size=150)) as events:
            counted = []
            listed = actions(await events.until(lambda e: "action" in e and counted.append(e) is None and len(counted) == 1000))
            assert sorted(listed) == sorted(("provision", c["metadata"]["name"], c["status"]["desiredConfigVersion"]) for c in created)
            await in_thread(operator.create, namespace, "marker")
            assert actions(await events.action("provision", "marker")) == [("provision", "marker", ANY)]
            assert await events.heartbeat(lambda h: h["instances"] == 1001)

    run(scenario)


def test_relist_after_410_emits_nothing_twice(kube, tmp_path, api_client, caplog):
    """A watch resumed after its history was compacted relists; known needs are not emitted again, gone uids are forgotten."""
    kube.require_stand_in("a 20-event watch history, to reach 410 Expired, is an option of the stand-in (kube-apiserver keeps minutes "
                          "of history and compacts etcd every 5 minutes)")
    server = KubeAPIServer(crd_paths=[DEFAULT_CRD_DIR], history=20, bookmark_interval=30).start()
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        local = config.new_client_from_config(kubeconfig)
        operator = Operator(local, kubeconfig)
        operator.ensure_namespace("tenants")
        core = client.CoreV1Api(local)

        async def scenario():
            caplog.set_level(logging.INFO, logger="cloudkit.provisioning.computeinstances")
            args = dict(FAST, kubeconfig=kubeconfig, namespace="tenants", watch_timeout=1)
            async with running_source(args) as events:
                for name in ("a", "b"):
                    await in_thread(operator.create, "tenants", name)
                    await events.action("provision", name)
                await in_thread(operator.delete, "tenants", "b")  # held by the operator's finalizer
                await events.until(lambda e: "heartbeat" in e)
                # The API refuses this source's reads while the history moves on far past its resourceVersion.
                server.faults.set(error_rate=1.0, error_codes=(500,), methods=("GET",), path_regex="/computeinstances$")  # list and watch only
                await events.heartbeat(lambda h: not h["connected"]["tenants"])
                await in_thread(operator.create, "tenants", "c")
                await in_thread(operator.release, "tenants", "b")
                await in_thread(custom_api(local).patch_namespaced_custom_object_status, CLOUDKIT.api_group, VERSION, "tenants",
                                "computeinstances", "a", {"status": {"phase": "Progressing"}})
                for number in range(30):
                    await in_thread(core.create_namespaced_config_map, "tenants", {"metadata": {"name": "filler-%d" % number}})
                server.faults.clear()
                seen = await events.action("provision", "c")
                await in_thread(operator.create, "tenants", "d")
                seen += await events.action("provision", "d")
                assert [(a, n) for a, n, _v in actions(seen)] == [("provision", "c"), ("provision", "d")]
                assert await events.heartbeat(lambda h: h["instances"] == 3 and h["connected"]["tenants"])
            assert any("expired" in record.getMessage() for record in caplog.records), "the watch never got 410"

        run(scenario)
        local.close()
    finally:
        server.stop()


def test_cut_streams_and_errors_recover_without_duplicates(kube, namespace, operator, instrumented_api, caplog):
    async def scenario():
        caplog.set_level(logging.INFO, logger="cloudkit.provisioning.computeinstances")
        async with running_source(dict(FAST, kubeconfig=kube.kubeconfig, namespace=namespace)) as events:
            await in_thread(operator.create, namespace, "before")
            await events.action("provision", "before")
            instrumented_api.faults.set(cut_watches_after=0.3, error_rate=0.3, error_codes=(500, 429, 503), methods=("GET",), path_regex="computeinstances")
            seen = []
            for number in range(6):
                await in_thread(operator.create, namespace, "during-%d" % number)
                seen += await events.action("provision", "during-%d" % number)
                await asyncio.sleep(0.2)  # let cuts happen between creates
            instrumented_api.faults.clear()
            await in_thread(operator.create, namespace, "after")
            seen += await events.action("provision", "after")
            assert [n for _a, n, _v in actions(seen)] == ["during-%d" % n for n in range(6)] + ["after"]
        assert any("reconnecting" in record.getMessage() for record in caplog.records), "no stream was cut"

    run(scenario)


def test_unauthorized_stops_the_source(instrumented_api):
    async def scenario():
        queue = asyncio.Queue()
        with pytest.raises(RuntimeError, match="401"):
            options = {"host": instrumented_api.url, "api_key": "wrong"}
            if instrumented_api.url.startswith("https"):
                options["ca_cert"] = instrumented_api.ca_file  # the control plane's CA
            await computeinstances.main(queue, options)

    run(scenario)


def _api_network(kubeconfig_path):
    """A CIDR holding the API server's address, read from the kubeconfig file itself."""
    with open(kubeconfig_path, encoding="utf-8") as handle:
        config_file = yaml.safe_load(handle)
    context = next(c["context"] for c in config_file["contexts"] if c["name"] == config_file["current-context"])
    cluster = next(c["cluster"] for c in config_file["clusters"] if c["name"] == context["cluster"])
    address = ipaddress.ip_address(urlsplit(cluster["server"]).hostname)
    return str(ipaddress.ip_network(f"{address}/8", strict=False))


def test_no_proxy_cidr_bypasses_the_proxy(kube, namespace, operator):
    """no_proxy with a CIDR, as the modules read it: the API server's network bypasses the proxy (a dead port here)."""
    kube.require_local("the API server's address must be an IP address")
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    network = _api_network(kube.kubeconfig)

    async def scenario(no_proxy):
        args = dict(FAST, kubeconfig=kube.kubeconfig, namespace=namespace, proxy=dead_proxy, no_proxy=no_proxy)
        async with running_source(args) as events:
            if no_proxy == network:
                await in_thread(operator.create, namespace, "direct")
                assert actions(await events.action("provision", "direct")) == [("provision", "direct", ANY)]
            else:
                # The control: through the dead proxy the source never connects.
                beats = [await events.heartbeat(lambda h: True) for _beat in range(5)]
                assert all(beat["connected"] == {namespace: False} for beat in beats), beats

    run(lambda: scenario("192.0.2.0/24, other.example.com"))
    run(lambda: scenario(network))
