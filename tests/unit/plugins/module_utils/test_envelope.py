"""Unit tests for plugins/module_utils/envelope.py: every envelope of docs/contract.md (Envelopes), and bad input."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.envelope import EnvelopeError, identify


def instance(name="vm1", namespace="tenants", uid="u-1", api_version="cloudkit.openshift.io/v1alpha1"):
    obj = {"kind": "ComputeInstance", "metadata": {"name": name, "namespace": namespace, "uid": uid}, "spec": {"templateID": "t"}}
    if api_version:
        obj["apiVersion"] = api_version
    return obj


@pytest.mark.parametrize(
    "extra_vars, source",
    [
        ({"ansible_eda": {"event": {"payload": instance()}}}, "ansible_eda.event.payload"),
        ({"osac_job_vars": {"resource": instance()}}, "osac_job_vars.resource"),
        ({"compute_instance": instance()}, "compute_instance"),
        (instance(), "object"),
    ],
)
def test_each_envelope_identifies_the_instance(extra_vars, source):
    identity = identify(extra_vars)
    assert identity.as_dict() == {"name": "vm1", "namespace": "tenants", "uid": "u-1", "api_group": "cloudkit.openshift.io", "source": source}


def test_json_strings_are_decoded_at_any_level():
    extra_vars = json.dumps({"ansible_eda": {"event": {"payload": json.dumps(instance())}}})
    assert identify(extra_vars).name == "vm1"


def test_absent_and_null_envelopes_are_skipped():
    extra_vars = {"ansible_eda": None, "osac_job_vars": {}, "compute_instance": instance(name="hand")}
    identity = identify(extra_vars)
    assert identity.source == "compute_instance" and identity.name == "hand"


def test_precedence_when_several_agree():
    extra_vars = {"compute_instance": instance(), "ansible_eda": {"event": {"payload": instance()}}}
    assert identify(extra_vars).source == "ansible_eda.event.payload"


def test_disagreeing_envelopes_are_refused():
    extra_vars = {"compute_instance": instance(name="a"), "osac_job_vars": {"resource": instance(name="b")}}
    with pytest.raises(EnvelopeError, match="one job is about one ComputeInstance"):
        identify(extra_vars)
    same_name_other_uid = {"compute_instance": instance(uid="x"), "osac_job_vars": {"resource": instance(uid="y")}}
    with pytest.raises(EnvelopeError):
        identify(same_name_other_uid)


def test_api_group_comes_from_the_payload_and_must_agree():
    assert identify({"compute_instance": instance(api_version="osac.openshift.io/v1alpha1")}).api_group == "osac.openshift.io"
    assert identify({"compute_instance": instance(api_version=None)}, api_group="osac.openshift.io").api_group == "osac.openshift.io"
    assert identify({"compute_instance": instance(api_version=None)}).api_group is None
    with pytest.raises(EnvelopeError, match="apiVersion is in group cloudkit.openshift.io, but api_group is osac.openshift.io"):
        identify({"compute_instance": instance()}, api_group="osac.openshift.io")


@pytest.mark.parametrize(
    "extra_vars, field",
    [
        ({}, "no ComputeInstance"),
        ([], "extra vars must be a mapping"),
        ("{not json", "not valid JSON"),
        ({"ansible_eda": {"event": "[1, 2]"}}, "ansible_eda.event must be a mapping"),
        ({"ansible_eda": "nope"}, "not valid JSON"),
        ({"compute_instance": [1]}, "compute_instance must be a ComputeInstance object"),
        ({"compute_instance": dict(instance(), kind="Secret")}, "compute_instance.kind must be ComputeInstance"),
        ({"compute_instance": {"spec": {}}}, "compute_instance.metadata is missing"),
        ({"compute_instance": instance(name="Bad_Name")}, "compute_instance.metadata.name"),
        ({"compute_instance": instance(namespace=None)}, "compute_instance.metadata.namespace"),
        ({"compute_instance": instance(namespace="a.b")}, "compute_instance.metadata.namespace"),
        ({"compute_instance": instance(uid=5)}, "compute_instance.metadata.uid must be a string"),
        ({"compute_instance": instance(api_version="v1")}, "compute_instance.apiVersion"),
    ],
)
def test_bad_input_names_the_field(extra_vars, field):
    with pytest.raises(EnvelopeError, match=field.replace(".", r"\.")):
        identify(extra_vars)
