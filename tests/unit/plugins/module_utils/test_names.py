"""Unit tests for plugins/module_utils/names.py."""

from __future__ import annotations

import pytest

from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import DEFAULT_API_GROUP, Names


def test_default_group_names_match_the_contract():
    names = Names()
    assert names.api_group == DEFAULT_API_GROUP == "cloudkit.openshift.io"
    assert names.api_version == "cloudkit.openshift.io/v1alpha1"
    assert names.finalizer == "cloudkit.openshift.io/computeinstance-aap"
    assert names.operator_finalizer == "cloudkit.openshift.io/computeinstance"
    assert names.reconciled_config_version_annotation == "cloudkit.openshift.io/reconciled-config-version"
    assert names.management_state_annotation == "cloudkit.openshift.io/management-state"
    assert names.floating_ip_address_annotation == "cloudkit.openshift.io/floating-ip-address"
    assert names.instance_label == "cloudkit.openshift.io/computeinstance"
    assert names.instance_uid_label == "cloudkit.openshift.io/computeinstance-uuid"
    assert names.compute_instance_crd == "computeinstances.cloudkit.openshift.io"
    assert names.tenant_crd == "tenants.cloudkit.openshift.io"


@pytest.mark.parametrize("group", ["cloudkit.openshift.io", "osac.openshift.io"])
def test_every_name_is_derived_from_the_one_group(group):
    names = Names(group)
    values = names.as_dict()
    assert values["api_group"] == group
    other = "osac.openshift.io" if group == "cloudkit.openshift.io" else "cloudkit.openshift.io"
    for key, value in values.items():
        if key.endswith("_kind"):
            continue
        assert value.startswith(group), key
        assert other not in value, key


def test_instance_labels_and_selector():
    names = Names("osac.openshift.io")
    assert names.instance_labels("vm1", "1234") == {
        "osac.openshift.io/computeinstance": "vm1",
        "osac.openshift.io/computeinstance-uuid": "1234",
    }
    assert names.instance_label_selector("1234") == "osac.openshift.io/computeinstance-uuid=1234"


@pytest.mark.parametrize("bad", ["", "nodots", "UPPER.case.io", "-lead.example.com", "trail-.example.com", "a..b", 42, b"bytes.example.com"])
def test_bad_groups_are_refused_with_the_option_name(bad):
    with pytest.raises(ValueError, match="api_group"):
        Names(bad)


def test_names_compare_by_group():
    assert Names("osac.openshift.io") == Names("osac.openshift.io")
    assert Names() != Names("osac.openshift.io")
    assert len({Names(), Names(DEFAULT_API_GROUP)}) == 1
