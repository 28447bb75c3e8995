"""Hostile Unicode in every text parameter, through the create job, on the API under test (kube-apiserver in make test).

The text parameters a spec carries are cloud_init (free text, passed through) and the SSH key's comment (printable text
on one line); the others are refused unless they match their grammar. Text a user may give must arrive byte for byte:
right-to-left overrides, line and paragraph separators inside YAML strings, NEL, zero-width characters, combining marks,
astral-plane emoji and CJK. Text that is refused must be refused naming the field, and the failure must still reach the
operator whole: a condition within the CRD's 32768 characters and a PhaseFailed Event within kube-apiserver's 1024-byte
note limit (a value of three-byte characters once made the Event 422 and disappear).
"""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from tests.integration.conftest import refused
from tests.integration.instances import envelope
from tests.integration.test_reconcile import GROUP, Instance

HOSTILE = "h\u00e9llo \u4e16\u754c \u202eevil\u202c zero\u200bwidth e\u0301 \U0001f600 \u0627\u0644\u0639\u0631\u0628\u064a\u0629"
# A cloud-config whose strings hold characters YAML treats as line breaks (U+2028, U+2029, NEL) when unquoted.
CLOUD_INIT = ("#cloud-config\nwrite_files:\n  - path: /etc/motd\n    content: \"%s \\u2028 \\u2029 \\x85\"\n"
              "runcmd:\n  - [echo, \"%s\"]\n" % (HOSTILE, HOSTILE))
KEY_BODY = "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"


def _secret_values(api_client, namespace, name):
    secrets = client.CoreV1Api(api_client).list_namespaced_secret(namespace).items
    return {s.metadata.name: {k: base64.b64decode(v).decode("utf-8") for k, v in (s.data or {}).items()} for s in secrets if name in s.metadata.name}


@pytest.mark.parametrize("parameters", [
    {"cloud_init": CLOUD_INIT, "ssh_public_key": "ssh-ed25519 %s %s" % (KEY_BODY, HOSTILE.replace("\u202e", "").replace("\u202c", "").replace("\u200b", ""))},
    {"ssh_public_key": "ssh-ed25519 %s Jos\u00e9 \u4e16\u754c \U0001f600 e\u0301" % KEY_BODY},
], ids=["cloud-init-and-key", "key-into-generated-cloud-config"])
def test_hostile_text_arrives_byte_for_byte(parameters, operator, run_job, api_client, kube, namespace):
    instance = Instance(operator, run_job, api_client, kube, namespace, "uni")
    instance.expect_applied(instance.create(parameters))
    values = _secret_values(api_client, operator.vm_namespace, "uni")
    stored = [value for data in values.values() for value in data.values()]
    if "cloud_init" in parameters:
        assert parameters["cloud_init"] in stored, "cloud_init was not stored byte for byte: %r" % values
    assert any(parameters["ssh_public_key"] in value for value in stored), "the key was not stored whole: %r" % values


@pytest.mark.parametrize("key, value", [
    ("memory", "\u4e16" * 3000 + "Gi"),
    ("image", "quay.io/fedora:\u202e04" + "\u4e16" * 2000),
    ("ssh_public_key", "ssh-ed25519 %s me\u2028ssh_pwauth: true %s" % (KEY_BODY, "\u4e16" * 100)),
    ("exposed_ports", "22/tcp,\u0662\u0662/tcp"),
    ("disk_size", "\U0001f600" * 5000),
])
def test_refused_hostile_text_reaches_the_operator_whole(key, value, operator, run_job, api_client, namespace):
    name = "bad-%s" % key.replace("_", "-")
    created = operator.create(namespace, name, {key: value})
    refused(run_job("create_compute_instance.yml", envelope(created)), "spec.templateParameters." + key)
    live = operator.get(namespace, name)
    progressing = next(c for c in live["status"]["conditions"] if c["type"] == "Progressing")
    assert live["status"]["phase"] == "Failed" and progressing["status"] == "False"
    assert "spec.templateParameters." + key in progressing["message"] and len(progressing["message"]) <= 32768
    assert GROUP + "/reconciled-config-version" not in (live["metadata"].get("annotations") or {})
    events = client.CoreV1Api(api_client).list_namespaced_event(namespace, field_selector="involvedObject.name=%s" % name).items
    failed = [e for e in events if e.reason == "PhaseFailed"]
    assert failed, "no PhaseFailed Event: %s" % [(e.reason, e.message) for e in events]
    assert all(len(e.message.encode("utf-8")) <= 1024 for e in failed)
