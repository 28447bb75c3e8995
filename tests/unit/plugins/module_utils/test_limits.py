"""Unit tests for plugins/module_utils/limits.py: Kubernetes' name, label and size limits; strict SSH public keys."""

from __future__ import annotations

import base64
import struct

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.computeinstance import ParameterError, vm_parameters
from ansible_collections.cloudkit.provisioning.plugins.module_utils.kubevirt import default_user_data, object_names
from ansible_collections.cloudkit.provisioning.plugins.module_utils.limits import (
    derived_name_problems,
    shorten,
    size_problem,
    ssh_public_key_problems,
)
from ansible.module_utils.common.yaml import yaml_load

ED25519 = base64.b64encode(struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(range(32))).decode()
RSA = base64.b64encode(struct.pack(">I", 7) + b"ssh-rsa" + struct.pack(">I", 3) + b"\x01\x00\x01").decode()


def problems_for(name, disks=0):
    return derived_name_problems(name, object_names(name), disks)


def test_names_within_the_limits_pass():
    assert problems_for("vm1") == []
    assert problems_for("a" * 48) == []  # a-...-ssh-public-key is 63


@pytest.mark.parametrize("name, expected", [
    ("a" * 49, "the SSH key Secret's name would be '%s-ssh-public-key', 64 characters; a DNS-1123 label has at most 63" % ("a" * 49)),
    ("a" * 50, "the LoadBalancer Service's name"),
    ("1vm", "a DNS-1035 label (a Service name) must start with a letter"),
    ("my.vm", "the VirtualMachine's name would be 'my.vm'"),
    ("b" * 64, "the value of the instance label would be"),
])
def test_names_kubernetes_would_refuse_are_named_with_the_limit(name, expected):
    problems = problems_for(name)
    assert problems and all(p.startswith("metadata.name: ") for p in problems)
    assert any(expected in p for p in problems), problems


def test_additional_disk_names_count():
    assert not any("additional disk" in p for p in problems_for("a" * 40, 2))
    assert any("additional disk 10's DataVolume name" in p for p in problems_for("a" * 56, 10))


def test_a_strict_ssh_key_passes():
    assert ssh_public_key_problems("ssh-ed25519 %s me@host" % ED25519, "f") == []
    assert ssh_public_key_problems("ssh-rsa %s" % RSA, "f") == []
    assert ssh_public_key_problems("ssh-ed25519 %s Jörg's laptop (ノಠ益ಠ)ノ" % ED25519, "f") == []


@pytest.mark.parametrize("key, expected", [
    ("ssh-dss %s" % ED25519, "key type 'ssh-dss' is not one of"),
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7", "not base64"),
    ("ssh-rsa %s" % ED25519, "not a ssh-rsa key"),
    ("ssh-ed25519 %s me\u2028ssh_pwauth: true" % ED25519, "U+2028"),
    ("ssh-ed25519 %s me\u2029x" % ED25519, "U+2029"),
    ("ssh-ed25519 %s me\rssh_pwauth: true" % ED25519, "U+000D"),
    ("ssh-ed25519 %s a\x00b" % ED25519, "U+0000"),
    ("ssh-ed25519 %s \u202eevil" % ED25519, "U+202E"),
    ("ssh-ed25519 %s me\u0085x" % ED25519, "U+0085"),
    ("ssh-ed25519 %s %s" % (ED25519, "x" * 300), "at most 256"),
    ("ssh-ed25519", "must be an OpenSSH public key line"),
])
def test_hostile_ssh_keys_are_refused_naming_the_field(key, expected):
    problems = ssh_public_key_problems(key, "spec.sshKey")
    assert problems and all(p.startswith("spec.sshKey") for p in problems)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("comment", ["me: x", "#x", "a' b\" c", "x\n- evil", "&anchor *alias", "{a: b}", "[x]", "!!python/object x", "- y"])
def test_the_cloud_config_document_has_no_key_a_user_could_add(comment):
    key = "ssh-ed25519 %s %s" % (ED25519, comment)
    text = default_user_data({"ssh_public_key": key})
    assert text.startswith("#cloud-config\n")
    assert yaml_load(text) == {"ssh_pwauth": False, "ssh_authorized_keys": [key]}


def test_sizes_over_the_limits_fail_before_any_write():
    assert size_problem("x" * 10, "f", 10, "a Secret") == []
    assert size_problem("é" * 6, "f", 10, "a Secret") == ["f is 12 bytes; a Secret holds at most 10"]
    # templateParameters must fit the annotation limit, so a cloud_init over the Secret limit is refused by the former first.
    big_user_data = "#cloud-config\n" + "#" * (1024 * 1024)
    with pytest.raises(ParameterError, match=r"spec.templateParameters is \d+ bytes; the annotations of an object"):
        vm_parameters({"templateParameters": '{"cloud_init": "%s"}' % big_user_data.replace("\n", "\\n")})
    with pytest.raises(ParameterError, match=r"spec.templateParameters is \d+ bytes; the annotations of an object"):
        vm_parameters({"templateParameters": '{"image": "%s"}' % ("x" * 300000)})


def test_a_hostile_key_makes_no_parameters():
    with pytest.raises(ParameterError, match="U[+]2028"):
        vm_parameters({"sshKey": "ssh-ed25519 %s me\u2028ssh_pwauth: true" % ED25519})


@pytest.mark.parametrize("text, limit, in_bytes, expected", [
    ("short", 10, False, "short"),
    ("abcdefghij", 10, False, "abcdefghij"),
    ("abcdefghijk", 10, False, "abcdefghi\u2026"),
    ("\u00e9" * 6, 12, True, "\u00e9" * 6),
    # 7 two-byte characters do not fit 12 bytes: 9 bytes of room before the 3-byte ellipsis keep 4 whole characters.
    ("\u00e9" * 7, 12, True, "\u00e9" * 4 + "\u2026"),
    ("\U0001f600" * 3, 8, True, "\U0001f600\u2026"),
])
def test_shorten_cuts_at_a_character_boundary(text, limit, in_bytes, expected):
    assert shorten(text, limit, in_bytes) == expected
    assert (len(expected.encode("utf-8")) if in_bytes else len(expected)) <= limit
