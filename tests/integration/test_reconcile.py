"""A create job makes the live objects exactly what the spec asks for, or refuses what cannot be done in place.

"Reconciled" (the reconciled-config-version annotation naming the spec's version) must mean the live objects equal the
spec: after every create job below, an independent check (tests/integration/live_check.py, which derives its
expectations from the spec and imports nothing of the collection) compares the Service's ports, the keys in the VM and
the Secrets, cores and memory, the disks' image and size, and cloud-init with the spec; the annotation may name the
spec's version only when it finds nothing. Every template parameter is added, changed and removed in turn.

Changes that cannot be made in place (a new image, a smaller disk, a larger disk on a StorageClass without volume
expansion, another StorageClass) must fail the job naming the field, show condition Progressing False ChangeRefused,
keep the annotation, and write nothing at all (the API stand-in's write log): nothing deleted, even when the same spec
change also removes a key.
"""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from tests.integration.conftest import failed, ok
from tests.integration.instances import envelope
from tests.integration.live_check import differences

GROUP = "cloudkit.openshift.io"
RECONCILED = GROUP + "/reconciled-config-version"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/ first@example.com"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEBBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f second@example.com"
EXPANDABLE = "expandable"
REMOVE = object()
# The kinds whose writes count as "changing the instance's objects" in the write log.
OBJECT_KINDS = ("secrets", "services", "datavolumes", "virtualmachines", "virtualmachineinstances", "persistentvolumeclaims")


@pytest.fixture(scope="module")
def expandable_class(api_client):
    """A StorageClass that allows volume expansion (the stand-in's default 'standard' does not)."""
    storage = client.StorageV1Api(api_client)
    try:
        storage.create_storage_class({"metadata": {"name": EXPANDABLE}, "provisioner": "kubevirt.io.hostpath-provisioner", "allowVolumeExpansion": True})
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    return EXPANDABLE


class Instance:
    """One instance driven through create jobs, checked after each."""

    def __init__(self, operator, run_job, api_client, kube, namespace, name, storage_class=None):
        self.operator, self.run_job, self.api_client, self.kube = operator, run_job, api_client, kube
        self.namespace, self.name = namespace, name
        self.extra = {"compute_instance_storage_class": storage_class} if storage_class else {}
        self.jobs = 0
        self.applied_spec = None  # the spec the live objects were last made to match

    def live(self):
        return self.operator.get(self.namespace, self.name)

    def create(self, parameters, **spec_fields):
        self.operator.create(self.namespace, self.name, parameters, **spec_fields)
        return self.job()

    def change(self, **changes):
        self.operator.change_spec(self.namespace, self.name, **changes)

    def job(self, env=None, **extra):
        self.jobs += 1
        job_id = "%s-%d" % (self.name, self.jobs)
        log = self.kube.server.write_log() if self.kube.server is not None else []
        mark = log[-1]["seq"] if log else 0
        result = self.run_job("create_compute_instance.yml", dict(envelope(self.live()), **dict(self.extra, **extra)), job_id=job_id, **(env or {}))
        result.writes = None
        if self.kube.server is not None:
            result.writes = [w for w in self.kube.server.write_log(since_seq=mark)
                             if "job/%s" % job_id in (w.get("user_agent") or "").split() and w["status"] < 300 and w["kind"] in OBJECT_KINDS]
        return result

    def vmi_uid(self):
        try:
            vmi = client.CustomObjectsApi(self.api_client).get_namespaced_custom_object(
                "kubevirt.io", "v1", self.operator.vm_namespace, "virtualmachineinstances", self.name)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return vmi["metadata"]["uid"]

    def differences(self, spec=None):
        return differences(self.api_client, self.live(), self.operator.vm_namespace, GROUP, spec)

    def expect_applied(self, result):
        """The job succeeded, the annotation names the spec's version, and the live objects match the spec."""
        ok(result)
        live = self.live()
        assert live["metadata"]["annotations"].get(RECONCILED) == live["status"]["desiredConfigVersion"]
        assert live["status"]["phase"] == "Ready"
        wrong = self.differences()
        assert wrong == [], "the live objects differ from the reconciled spec: %s\n%s" % (wrong, result.stdout[-3000:])
        self.applied_spec = live["spec"]
        return live

    def expect_refused(self, result, field, before):
        """The job failed naming the field; ChangeRefused; the annotation and every object as they were; no write."""
        assert result.returncode != 0, "the job succeeded instead of refusing %s; live objects against the new spec: %s\n%s" % (
            field, self.differences(), result.stdout[-3000:])
        failed(result)
        assert field in result.stdout, result.stdout[-4000:]
        assert "Traceback" not in result.stdout + result.stderr
        live = self.live()
        assert (live["metadata"].get("annotations") or {}).get(RECONCILED) == before["metadata"]["annotations"][RECONCILED]
        assert live["status"]["phase"] == "Failed"
        progressing = next(c for c in live["status"]["conditions"] if c["type"] == "Progressing")
        assert progressing["status"] == "False" and progressing["reason"] == "ChangeRefused" and field in progressing["message"]
        assert live["status"]["desiredConfigVersion"] in progressing["message"]
        assert self.differences(self.applied_spec) == [], "the objects still match the last reconciled spec"
        if result.writes is not None:
            assert result.writes == [], "a refused change writes nothing: %s" % result.writes
        return live


def _step(instance, parameters, key, value):
    if value is REMOVE:
        parameters.pop(key, None)
    else:
        parameters[key] = value
    instance.change(parameters=parameters)


# Parameters whose every applied change must restart a running VM (template, or the Secrets read at boot); the others
# must not restart it.
RESTARTS = {"cpu_cores", "memory", "ssh_public_key", "cloud_init", "additionalDisks", "userDataSecretRef"}


def check_restart(instance, key, vmi_before):
    """A running VM was restarted (new VMI) exactly when the change needs it (runStrategy starts and stops it instead)."""
    if key == "runStrategy" or vmi_before is None:
        return
    vmi_after = instance.vmi_uid()
    if key in RESTARTS:
        assert vmi_after != vmi_before, "a change of %s reaches the running VM only by a restart" % key
    else:
        assert vmi_after == vmi_before, "a change of %s needs no restart" % key


# key -> [(value or REMOVE, None when applied else the field named by the refusal)]
SEED_STEPS = {
    "cpu_cores": [(4, None), (1, None), (REMOVE, None)],
    "memory": [("3Gi", None), ("1Gi", None), (REMOVE, None)],
    "disk_size": [("12Gi", None), ("14Gi", None), (REMOVE, "spec.templateParameters.disk_size")],
    "image": [("quay.io/containerdisks/centos:9", "spec.templateParameters.image"),
              ("quay.io/containerdisks/ubuntu:22.04", "spec.templateParameters.image"), (REMOVE, None)],
    "ssh_public_key": [(KEY, None), (OTHER_KEY, None), (REMOVE, None)],
    "cloud_init": [("#cloud-config\nruncmd: [echo one]\n", None), ("#cloud-config\nruncmd: [echo two]\n", None), (REMOVE, None)],
    "exposed_ports": [("22/tcp,8080/tcp", None), ("443/tcp,53/udp", None), (REMOVE, None), ([], None)],
}


@pytest.mark.parametrize("key", sorted(SEED_STEPS))
def test_every_template_parameter_added_changed_and_removed(operator, run_job, api_client, kube, namespace, expandable_class, key):
    instance = Instance(operator, run_job, api_client, kube, namespace, "p-" + key.replace("_", "-"), expandable_class)
    instance.expect_applied(instance.create({}))
    parameters = {}
    for value, refused_field in SEED_STEPS[key]:
        before, vmi_before = instance.live(), instance.vmi_uid()
        _step(instance, parameters, key, value)
        result = instance.job()
        if refused_field is None:
            instance.expect_applied(result)
            check_restart(instance, key, vmi_before)
        else:
            instance.expect_refused(result, refused_field, before)


TYPED_STEPS = {
    "additionalDisks": [([{"sizeGiB": 2}], None), ([{"sizeGiB": 3}, {"sizeGiB": 1}], None), ([{"sizeGiB": 1}], "spec.additionalDisks[0].sizeGiB"),
                        (REMOVE, None)],
    "runStrategy": [("Halted", None), ("Always", None), (REMOVE, None)],
    "userDataSecretRef": [({"name": "user-data-one"}, None), ({"name": "user-data-two"}, None), (REMOVE, None)],
    "bootDisk": [({"sizeGiB": 11}, None), ({"sizeGiB": 9}, "spec.bootDisk.sizeGiB"), (REMOVE, "spec.templateParameters.disk_size"),
                 ({"sizeGiB": 11}, None)],
}


@pytest.mark.parametrize("field", sorted(TYPED_STEPS))
def test_every_typed_field_added_changed_and_removed(operator, run_job, api_client, kube, namespace, expandable_class, field):
    """The later operator's typed spec fields, the same way (removing bootDisk after growing it is a shrink back to the default
    10Gi of templateParameters.disk_size: refused, naming that field)."""
    core = client.CoreV1Api(api_client)
    for secret in ("user-data-one", "user-data-two"):
        core.create_namespaced_secret(operator.vm_namespace, {"metadata": {"name": secret}, "stringData": {"userdata": "#cloud-config\n"}})
    instance = Instance(operator, run_job, api_client, kube, namespace, "t-" + field.lower(), expandable_class)
    instance.expect_applied(instance.create({}))
    for value, refused_field in TYPED_STEPS[field]:
        before, vmi_before = instance.live(), instance.vmi_uid()
        instance.change(**{field: None if value is REMOVE else value})
        result = instance.job()
        if refused_field is None:
            instance.expect_applied(result)
            check_restart(instance, field, vmi_before)
        else:
            instance.expect_refused(result, refused_field, before)
    assert core.read_namespaced_secret("user-data-one", operator.vm_namespace), "a user's own Secret is never deleted"


def test_removing_the_key_and_closing_the_ports_removes_them(operator, run_job, api_client, kube, namespace):
    """The issue's own steps: provision with a key and ports 22 and 8080, then templateParameters {cpu_cores: 1, exposed_ports: []}."""
    instance = Instance(operator, run_job, api_client, kube, namespace, "vm-sec")
    first = instance.expect_applied(instance.create({"ssh_public_key": KEY, "exposed_ports": "22/tcp,8080/tcp"}))
    vms = operator.vm_namespace
    core = client.CoreV1Api(api_client)
    assert core.read_namespaced_service("vm-sec-load-balancer", vms) and core.read_namespaced_secret("vm-sec-ssh-public-key", vms)
    instance.change(parameters={"cpu_cores": 1, "exposed_ports": []})
    result = instance.job()
    live = instance.expect_applied(result)
    assert live["metadata"]["annotations"][RECONCILED] != first["metadata"]["annotations"][RECONCILED]
    assert [s.metadata.name for s in core.list_namespaced_service(vms).items if s.metadata.name.startswith("vm-sec")] == []
    assert [s.metadata.name for s in core.list_namespaced_secret(vms).items if s.metadata.name.startswith("vm-sec")] == ["vm-sec-cloud-init"]
    vm = client.CustomObjectsApi(api_client).get_namespaced_custom_object("kubevirt.io", "v1", vms, "virtualmachines", "vm-sec")
    assert "accessCredentials" not in vm["spec"]["template"]["spec"]
    assert "deleted Secret %s/vm-sec-ssh-public-key" % vms in result.stdout and "deleted Service %s/vm-sec-load-balancer" % vms in result.stdout


REFUSALS = {
    "image": ({"image": "quay.io/containerdisks/centos:9"}, {}, "spec.templateParameters.image"),
    "smaller disk": ({"disk_size": "8Gi"}, {}, "spec.templateParameters.disk_size"),
    "larger disk, fixed class": ({"disk_size": "20Gi"}, {}, "spec.templateParameters.disk_size"),
    "another class": ({}, {"compute_instance_storage_class": EXPANDABLE}, "storage_class"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_change_that_cannot_be_made_in_place_is_refused_before_any_write(operator, run_job, api_client, kube, namespace, expandable_class, case):
    """Refused with the key's removal in the same spec change: the key Secret and the Service stay, nothing is written."""
    del expandable_class
    changes, extra, field = REFUSALS[case]
    name = "r-" + case.replace(" ", "-").replace(",", "")
    instance = Instance(operator, run_job, api_client, kube, namespace, name)
    before = instance.expect_applied(instance.create({"ssh_public_key": KEY, "exposed_ports": "22/tcp,8080/tcp"}))
    uids = objects_by_uid(api_client, operator.vm_namespace, before["metadata"]["uid"])
    instance.change(parameters=dict(changes, exposed_ports=[]))
    result = instance.job(**extra)
    instance.expect_refused(result, field, before)
    assert objects_by_uid(api_client, operator.vm_namespace, before["metadata"]["uid"]) == uids, "nothing deleted or re-created"
    assert "cannot be made in place" in result.stdout
    again = instance.job(**extra)
    instance.expect_refused(again, field, before)


def objects_by_uid(api_client, namespace, instance_uid):
    selector = "%s/computeinstance-uuid=%s" % (GROUP, instance_uid)
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    found = {("Secret", s.metadata.name): s.metadata.uid for s in core.list_namespaced_secret(namespace, label_selector=selector).items}
    found.update({("Service", s.metadata.name): s.metadata.uid for s in core.list_namespaced_service(namespace, label_selector=selector).items})
    for kind, group, version, plural in (("DataVolume", "cdi.kubevirt.io", "v1beta1", "datavolumes"),
                                         ("VirtualMachine", "kubevirt.io", "v1", "virtualmachines")):
        found.update({(kind, o["metadata"]["name"]): o["metadata"]["uid"]
                      for o in custom.list_namespaced_custom_object(group, version, namespace, plural, label_selector=selector)["items"]})
    return found


def test_fields_of_other_writers_survive_and_the_job_log_shows_the_reconcile(operator, run_job, api_client, kube, namespace):
    """KubeVirt's, CDI's and the API server's fields stay; the log lists every object; --diff shows old and new values;
    Secret data never appears in clear."""
    vms = operator.vm_namespace
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    instance = Instance(operator, run_job, api_client, kube, namespace, "vm-log")
    instance.expect_applied(instance.create({"ssh_public_key": KEY, "exposed_ports": "22/tcp,8080/tcp", "cloud_init": "#cloud-config\npassword: hunter2\n"}))
    custom.patch_namespaced_custom_object("kubevirt.io", "v1", vms, "virtualmachines", "vm-log", {
        "metadata": {"annotations": {"kubevirt.io/latest-observed-api-version": "v1"}, "labels": {"team": "blue"}},
        "spec": {"template": {"spec": {"domain": {"machine": {"type": "q35"}, "cpu": {"model": "host-model"}}}}}})
    custom.patch_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", vms, "datavolumes", "vm-log-root-disk",
                                          {"metadata": {"annotations": {"cdi.kubevirt.io/storage.usePopulator": "true"}}})
    node_port = {p.name: p.node_port for p in core.read_namespaced_service("vm-log-load-balancer", vms).spec.ports}["tcp-22"]
    assert node_port
    instance.change(parameters={"cpu_cores": 1, "ssh_public_key": KEY, "exposed_ports": "22/tcp,443/tcp", "cloud_init": "#cloud-config\npassword: hunter3\n"})
    result = ok(instance.job())
    vm = custom.get_namespaced_custom_object("kubevirt.io", "v1", vms, "virtualmachines", "vm-log")
    domain = vm["spec"]["template"]["spec"]["domain"]
    assert domain["machine"] == {"type": "q35"} and domain["cpu"] == {"model": "host-model", "cores": 1}
    assert vm["metadata"]["annotations"]["kubevirt.io/latest-observed-api-version"] == "v1" and vm["metadata"]["labels"]["team"] == "blue"
    dv = custom.get_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", vms, "datavolumes", "vm-log-root-disk")
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/storage.usePopulator"] == "true"
    ports = {p.name: p.node_port for p in core.read_namespaced_service("vm-log-load-balancer", vms).spec.ports}
    assert ports["tcp-22"] == node_port and set(ports) == {"tcp-22", "tcp-443"}, "the kept port keeps its node port"
    assert instance.differences() == []
    stdout = result.stdout
    vm_line = next((line for line in stdout.splitlines() if '"updated VirtualMachine %s/vm-log: ' % vms in line), "")
    assert "spec.template.spec.domain.cpu.cores 2 -> 1" in vm_line and "boot-inputs" in vm_line, stdout[-3000:]
    assert "updated Service %s/vm-log-load-balancer: spec.ports changed" % vms in stdout
    assert "updated Secret %s/vm-log-cloud-init: data changed" % vms in stdout
    assert "unchanged DataVolume %s/vm-log-root-disk" % vms in stdout and "unchanged Secret %s/vm-log-ssh-public-key" % vms in stdout, stdout[-5000:]
    assert ("VirtualMachineInstance %s/vm-log ran an older template (spec.template.spec.domain.cpu.cores, "
            'spec.template.metadata.annotations[\\"cloudkit.openshift.io/boot-inputs\\"]): restarted to apply it' % vms) in stdout, stdout[-3000:]

    instance.change(parameters={"cpu_cores": 3, "ssh_public_key": KEY, "exposed_ports": "22/tcp,443/tcp", "cloud_init": "#cloud-config\npassword: hunter4\n"})
    diffed = ok(instance.job(env={"ANSIBLE_DIFF_ALWAYS": "1"}))
    assert "--- before: VirtualMachine %s/vm-log" % vms in diffed.stdout
    assert '-    "spec.template.spec.domain.cpu.cores": 1' in diffed.stdout and '+    "spec.template.spec.domain.cpu.cores": 3' in diffed.stdout
    assert "--- before: Secret %s/vm-log-cloud-init" % vms in diffed.stdout
    secrets = ["#cloud-config\npassword: hunter%d\n" % n for n in (2, 3, 4)]
    for text in (stdout, diffed.stdout):
        assert "hunter" not in text, "Secret data is shown as size and hash only"
        assert not [s for s in secrets if base64.b64encode(s.encode()).decode() in text]
    assert instance.differences() == []
