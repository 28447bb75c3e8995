"""Template roles: a user's own template (tests/integration/collections, acme.templates.small_vm) through the jobs, and
templateIDs that must run nothing. Judged by the API's write log and direct reads, never by the collection's code."""

from __future__ import annotations

import json
import os

import yaml
from cryptography.hazmat.primitives import serialization
from kubernetes import client

from tests.integration.conftest import ROOT, failed, ok, recap_changed
from tests.integration.instances import envelope
from tests.reliability_report import check
from tests.stack.fulfillment import FulfillmentServer
from tests.stack.pki import Authority

GROUP = "cloudkit.openshift.io"
RECONCILED = GROUP + "/reconciled-config-version"
OURS = GROUP + "/computeinstance-aap"
USER_COLLECTIONS = ROOT / "tests" / "integration" / "collections"
# The jobs find the user's collection where the controller finds collections (an EE has it installed).
ENV = {"ANSIBLE_COLLECTIONS_PATH": os.pathsep.join([str(ROOT / ".build"), str(USER_COLLECTIONS)])}
CONFIG = {"compute_instance_template_collections": ["cloudkit.provisioning", "acme.templates"]}
SMALL_VM = "acme.templates.small_vm"


def job_vars(obj, **extra):
    return dict(envelope(obj), **CONFIG, **extra)


def last_seq(server):
    log = server.write_log()
    return log[-1]["seq"] if log else 0


def ok_writes(server, since):
    return [w for w in server.write_log(since) if w["status"] < 300]


def brief(write):
    return "%s %s %s/%s%s" % (write["method"], write["kind"], write["namespace"], write["name"],
                              "/" + write["subresource"] if write.get("subresource") else "")


def vm(api_client, namespace, name):
    return client.CustomObjectsApi(api_client).get_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachines", name)


def leases(api_client, namespace):
    return client.CustomObjectsApi(api_client).list_namespaced_custom_object("coordination.k8s.io", "v1", namespace, "leases")["items"]


def expect_reconciled(operator, namespace, name, api_client):
    """The invariants of a successful create: reconciled = desired, Ready, our finalizer, the lock released."""
    live = operator.get(namespace, name)
    reconciled = (live["metadata"].get("annotations") or {}).get(RECONCILED)
    check("reconciled version equals the desired one after success", reconciled == live["status"]["desiredConfigVersion"],
          "%s != %s" % (reconciled, live["status"]["desiredConfigVersion"]))
    assert live["status"]["phase"] == "Ready" and OURS in live["metadata"]["finalizers"]
    assert live["status"]["virtualMachineReference"]["namespace"] == operator.vm_namespace
    held = [lease for lease in leases(api_client, namespace) if (lease.get("spec") or {}).get("holderIdentity")]
    check("the lock is released when a job ends", held == [], str(held))
    return live


def expect_annotation_last(server, since, instance_namespace, vm_namespace):
    """The reconciled version is written only after every write of the template."""
    writes = ok_writes(server, since)
    template_writes = [w["seq"] for w in writes if w["namespace"] == vm_namespace]
    instance_writes = [w["seq"] for w in writes if w["namespace"] == instance_namespace and w["kind"] == "computeinstances"]
    check("the reconciled version only after the template's work", template_writes and instance_writes
          and max(instance_writes) > max(template_writes), "%s / %s" % (template_writes, instance_writes))


def test_a_user_template_goes_through_create_change_and_delete(operator, run_job, namespace, api_client, instrumented_api):
    operator.create(namespace, "sv1", {"small_vm_cores": 1, "small_vm_user_data": "#cloud-config\nhostname: sv1\n"}, templateID=SMALL_VM)
    since = last_seq(instrumented_api)
    ok(run_job("create_compute_instance.yml", job_vars(operator.get(namespace, "sv1")), **ENV))
    live = expect_reconciled(operator, namespace, "sv1", api_client)
    expect_annotation_last(instrumented_api, since, namespace, operator.vm_namespace)
    uid = live["metadata"]["uid"]
    assert operator.objects(operator.vm_namespace, uid) == ["Secret/sv1-small-vm-user-data", "VirtualMachine/sv1", "VirtualMachineInstance/sv1"]
    made = vm(api_client, operator.vm_namespace, "sv1")
    assert made["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] == 1
    assert made["spec"]["template"]["spec"]["domain"]["memory"]["guest"] == "1Gi", "the argument spec's default"
    assert made["metadata"]["labels"] == {GROUP + "/computeinstance": "sv1", GROUP + "/computeinstance-uuid": uid}
    writes = [w for w in ok_writes(instrumented_api, since) if w["kind"] == "computeinstances"]
    assert any(w["subresource"] != "status" for w in writes), "the finalizer and annotation were written by the job"

    again = ok(run_job("create_compute_instance.yml", job_vars(operator.get(namespace, "sv1")), **ENV))
    assert recap_changed(again) == 0, again.stdout[-4000:]

    operator.change_spec(namespace, "sv1", parameters={"small_vm_cores": 2, "small_vm_memory": "2Gi"})
    since = last_seq(instrumented_api)
    ok(run_job("create_compute_instance.yml", job_vars(operator.get(namespace, "sv1")), **ENV))
    expect_reconciled(operator, namespace, "sv1", api_client)
    expect_annotation_last(instrumented_api, since, namespace, operator.vm_namespace)
    domain = vm(api_client, operator.vm_namespace, "sv1")["spec"]["template"]["spec"]["domain"]
    assert (domain["cpu"]["cores"], domain["memory"]["guest"]) == (2, "2Gi")

    operator.delete(namespace, "sv1")
    ok(run_job("delete_compute_instance.yml", job_vars(operator.get(namespace, "sv1")), **ENV))
    check("no objects left after a delete", operator.objects(operator.vm_namespace, uid) == [], str(operator.objects(operator.vm_namespace, uid)))
    assert operator.leftovers(operator.vm_namespace) == []
    gone = operator.get(namespace, "sv1")
    assert OURS not in gone["metadata"]["finalizers"] and gone["status"]["phase"] == "Deleting"


def test_templates_that_may_not_be_selected_run_nothing(operator, run_job, namespace, instrumented_api):
    cases = {
        "off-list": ("acme.extra.canary_vm", None, "spec.templateID"),  # a template, of a collection not configured
        "helper-role": ("acme.templates.not_a_template", None, "spec.templateID"),  # in a configured collection
        "collection-role": ("cloudkit.provisioning.eda_config", None, "spec.templateID"),
        "job-role": ("cloudkit.provisioning.compute_instance", None, "spec.templateID"),
        "bad-parameter": (SMALL_VM, {"small_vm_cores": 3, "small_vm_disks": 2}, "spec.templateParameters.small_vm_cores"),
    }
    for index, (label, (template_id, parameters, field)) in enumerate(sorted(cases.items())):
        name = "bad%d" % index
        operator.create(namespace, name, parameters, templateID=template_id)
        since = last_seq(instrumented_api)
        result = failed(run_job("create_compute_instance.yml", job_vars(operator.get(namespace, name)), **ENV))
        assert field in result.stdout, "%s: %s" % (label, result.stdout[-3000:])
        # The lock, the Failed status and its Event are the job's own; nothing else may be written (no finalizer, no object).
        others = [brief(w) for w in ok_writes(instrumented_api, since)
                  if not (w["namespace"] == namespace and w["kind"] in ("leases", "events"))
                  and not (w["kind"] == "computeinstances" and w["name"] == name and w.get("subresource") == "status")]
        check("a refused template runs and writes nothing", others == [], "%s: %s" % (label, others))
        live = operator.get(namespace, name)
        assert OURS not in live["metadata"]["finalizers"] and live["status"]["phase"] == "Failed"
        assert field in next(c for c in live["status"]["conditions"] if c["type"] == "Progressing")["message"]


def test_template_info_lists_the_builtin_and_the_user_template(run_playbook, namespace, tmp_path):
    out = tmp_path / "catalogue.json"
    ok(run_playbook("template_info.yml", namespace, TEMPLATE_INFO_OUT=str(out), **ENV))
    listed = dict((t["id"], t) for t in json.loads(out.read_text()))
    assert sorted(listed) == ["acme.templates.small_vm", "cloudkit.provisioning.ocp_virt_vm"], "no helper role, no unconfigured collection"
    for template_id, role in (("acme.templates.small_vm", USER_COLLECTIONS / "ansible_collections/acme/templates/roles/small_vm"),
                              ("cloudkit.provisioning.ocp_virt_vm", ROOT / "roles" / "ocp_virt_vm")):
        metadata = yaml.safe_load((role / "meta" / "cloudkit.yaml").read_text())
        options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["create"]["options"]
        entry = listed[template_id]
        assert (entry["title"], entry["description"], entry["type"]) == (metadata["title"], metadata["description"], "compute_instance")
        assert [p["name"] for p in entry["parameters"]] == sorted(options)
        for parameter in entry["parameters"]:
            option = options[parameter["name"]]
            assert parameter["title"] == metadata["parameters"][parameter["name"]]["title"] and parameter["type"] == option["type"]
            assert parameter["default"] == option.get("default") and parameter["required"] == option.get("required", False)
        published = entry["published"]
        assert published["id"] == template_id and [p["name"] for p in published["parameters"]] == sorted(options)
    cores = next(p for p in listed[SMALL_VM]["published"]["parameters"] if p["name"] == "small_vm_cores")
    assert cores["type"] == "type.googleapis.com/google.protobuf.Int64Value"
    assert cores["default"] == {"@type": "type.googleapis.com/google.protobuf.Int64Value", "value": 1}


def _tls_files(tmp_path):
    authority = Authority("fulfillment-test-ca")
    key, certificate = authority.issue("fulfillment", server=True)
    paths = dict((name, tmp_path / name) for name in ("ca.crt", "tls.crt", "tls.key"))
    paths["ca.crt"].write_bytes(authority.cert.public_bytes(serialization.Encoding.PEM))
    paths["tls.crt"].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths["tls.key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def test_publishing_twice_changes_nothing_the_second_time(run_job, tmp_path):
    tls = _tls_files(tmp_path)
    outdated = {"id": "cloudkit.provisioning.ocp_virt_vm", "title": "an older title", "description": "", "parameters": []}
    with FulfillmentServer(token="s3cret", templates=[outdated], certificate=str(tls["tls.crt"]), key=str(tls["tls.key"])) as server:
        variables = {"publish_templates_collections": ["cloudkit.provisioning", "acme.templates"]}
        env = dict(ENV, FULFILLMENT_URL=server.url, FULFILLMENT_TOKEN="s3cret", FULFILLMENT_CA_PATH=str(tls["ca.crt"]))

        ok(run_job("publish_templates.yml", variables, **env))
        first = [(r["method"], r["path"].rsplit("/", 1)[-1], r["status"]) for r in server.requests()]
        assert first == [("GET", "compute_instance_templates", 200), ("POST", "compute_instance_templates", 201),
                         ("PATCH", "cloudkit.provisioning.ocp_virt_vm", 200)], first
        stored = server.templates()
        assert sorted(stored) == ["acme.templates.small_vm", "cloudkit.provisioning.ocp_virt_vm"]
        assert stored["cloudkit.provisioning.ocp_virt_vm"]["title"] == "OpenShift Virtualization VM"
        cores = next(p for p in stored[SMALL_VM]["parameters"] if p["name"] == "small_vm_cores")
        assert cores == {"name": "small_vm_cores", "title": "CPU cores", "description": "Virtual CPU cores.", "required": False,
                         "type": "type.googleapis.com/google.protobuf.Int64Value",
                         "default": {"@type": "type.googleapis.com/google.protobuf.Int64Value", "value": 1}}
        assert all(r["authorized"] for r in server.requests()), "every request carried the token"

        again = ok(run_job("publish_templates.yml", variables, **env))
        second = [(r["method"], r["status"]) for r in server.requests()[len(first):]]
        assert second == [("GET", 200)], "the second publish only reads: %s" % second
        assert recap_changed(again) == 0

        untrusted = failed(run_job("publish_templates.yml", variables, **dict(env, FULFILLMENT_CA_PATH="")))
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stdout or "certificate verify failed" in untrusted.stdout
        wrong = failed(run_job("publish_templates.yml", variables, **dict(env, FULFILLMENT_TOKEN="wrong")))
        assert "HTTP 401" in wrong.stdout
        assert [r["method"] for r in server.requests()[len(first) + len(second):]] == ["GET"], "only the unauthorized read"
