# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Every name of the operator contract, derived from ONE API group.

The operator's group was renamed (cloudkit.openshift.io -> osac.openshift.io);
nothing else in this collection spells a finalizer, annotation or label, so
both groups work by changing a single setting.
"""

from __future__ import annotations

import os
import re
from typing import Optional

DEFAULT_API_GROUP = "cloudkit.openshift.io"
API_VERSION = "v1alpha1"
COMPUTE_INSTANCE_KIND = "ComputeInstance"
COMPUTE_INSTANCE_PLURAL = "computeinstances"
TENANT_KIND = "Tenant"
TENANT_PLURAL = "tenants"

# How this collection names itself to the Kubernetes API and the controller. AAP exports JOB_ID to every
# job; naming it lets the API's audit log and the controller's access log tell which job called.
USER_AGENT = "cloudkit.provisioning" + (" job/{}".format(os.environ["JOB_ID"]) if os.environ.get("JOB_ID") else "")

# Values of the management-state annotation that mean "hands off".
UNMANAGED_STATES = ("manual", "unmanaged")

# A DNS subdomain, as Kubernetes requires of an API group.
_API_GROUP_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")


class Names:
    """The contract's names for one API group (docs/contract.md, Names)."""

    __slots__ = ("api_group",)

    def __init__(self, api_group: Optional[str] = None):
        group = DEFAULT_API_GROUP if api_group is None else api_group
        if not isinstance(group, str) or not _API_GROUP_RE.match(group):
            raise ValueError(
                f"api_group must be a DNS subdomain such as {DEFAULT_API_GROUP!r}, got {group!r}"
            )
        self.api_group = group

    def __repr__(self):
        return f"Names({self.api_group!r})"

    def __eq__(self, other):
        return isinstance(other, Names) and other.api_group == self.api_group

    def __hash__(self):
        return hash(self.api_group)

    def _qualified(self, name):
        return f"{self.api_group}/{name}"

    @property
    def api_version(self) -> str:
        """apiVersion of ComputeInstance and Tenant, e.g. cloudkit.openshift.io/v1alpha1."""
        return self._qualified(API_VERSION)

    @property
    def compute_instance_crd(self) -> str:
        """Name of the ComputeInstance CustomResourceDefinition."""
        return f"{COMPUTE_INSTANCE_PLURAL}.{self.api_group}"

    @property
    def tenant_crd(self) -> str:
        """Name of the Tenant CustomResourceDefinition."""
        return f"{TENANT_PLURAL}.{self.api_group}"

    @property
    def operator_finalizer(self) -> str:
        """The operator's own finalizer; this collection never touches it."""
        return self._qualified("computeinstance")

    @property
    def finalizer(self) -> str:
        """The finalizer owned by the Ansible side."""
        return self._qualified("computeinstance-aap")

    @property
    def reconciled_config_version_annotation(self) -> str:
        """Annotation written after a fully successful provision."""
        return self._qualified("reconciled-config-version")

    @property
    def management_state_annotation(self) -> str:
        """Annotation whose manual/unmanaged values mean: do not touch."""
        return self._qualified("management-state")

    @property
    def floating_ip_address_annotation(self) -> str:
        """Annotation carrying the external IP address, when one exists."""
        return self._qualified("floating-ip-address")

    @property
    def requested_storage_annotation(self) -> str:
        """Annotation on a DataVolume whose disk was grown in place: the size now requested (its spec keeps the
        first one)."""
        return self._qualified("requested-storage")

    @property
    def boot_inputs_annotation(self) -> str:
        """Annotation on a VM's template: a hash of the cloud-init and SSH key Secrets it boots with."""
        return self._qualified("boot-inputs")

    @property
    def instance_label(self) -> str:
        """Label carrying the ComputeInstance name on every object made for it."""
        return self._qualified("computeinstance")

    @property
    def instance_uid_label(self) -> str:
        """Label carrying the ComputeInstance metadata.uid on every object made for it."""
        return self._qualified("computeinstance-uuid")

    def instance_labels(self, name: str, uid: str) -> dict[str, str]:
        """The labels every object created for an instance carries."""
        return {self.instance_label: name, self.instance_uid_label: uid}

    def instance_label_selector(self, uid: str) -> str:
        """Label selector that finds every object created for an instance."""
        return f"{self.instance_uid_label}={uid}"

    def as_dict(self) -> dict[str, str]:
        """All names, for module results and templates."""
        return {
            "api_group": self.api_group,
            "api_version": self.api_version,
            "compute_instance_kind": COMPUTE_INSTANCE_KIND,
            "tenant_kind": TENANT_KIND,
            "operator_finalizer": self.operator_finalizer,
            "finalizer": self.finalizer,
            "reconciled_config_version_annotation": self.reconciled_config_version_annotation,
            "management_state_annotation": self.management_state_annotation,
            "floating_ip_address_annotation": self.floating_ip_address_annotation,
            "requested_storage_annotation": self.requested_storage_annotation,
            "boot_inputs_annotation": self.boot_inputs_annotation,
            "instance_label": self.instance_label,
            "instance_uid_label": self.instance_uid_label,
        }
