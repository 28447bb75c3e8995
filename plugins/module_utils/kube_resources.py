# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Where each kind lives in the REST API: the static table of the kinds this collection uses (no discovery)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional
from urllib.parse import quote

from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import (
    API_VERSION,
    COMPUTE_INSTANCE_KIND,
    COMPUTE_INSTANCE_PLURAL,
    TENANT_KIND,
    TENANT_PLURAL,
)

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.cloudkit.provisioning.plugins.module_utils.names import Names


class Resource:
    """Where a kind lives in the REST API."""

    __slots__ = ("api_version", "kind", "plural", "namespaced", "has_status")

    def __init__(self, api_version: str, kind: str, plural: str, namespaced: bool = True, has_status: bool = True):
        self.api_version = api_version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
        self.has_status = has_status

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def __repr__(self) -> str:
        return f"Resource({self.api_version}, {self.kind})"

    def path(
        self, namespace: Optional[str] = None, name: Optional[str] = None, subresource: Optional[str] = None
    ) -> str:
        """REST path: /api/v1/namespaces/ns/secrets/name/status and the like."""
        prefix = "/apis/" if "/" in self.api_version else "/api/"
        parts = [prefix + self.api_version]
        if self.namespaced and namespace:
            parts.append("namespaces/" + quote(namespace, safe=""))
        elif self.namespaced and name:
            raise ValueError(f"{self.kind} {name!r} is namespaced: a namespace is required")
        parts.append(self.plural)
        if name:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


# Every kind this collection touches; anything else is found by discovery once.
_STATIC_RESOURCES = [
    Resource("v1", "Namespace", "namespaces", namespaced=False),
    Resource("v1", "Secret", "secrets", has_status=False),
    Resource("v1", "ConfigMap", "configmaps", has_status=False),
    Resource("v1", "Service", "services"),
    Resource("v1", "Event", "events", has_status=False),
    Resource("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    Resource("coordination.k8s.io/v1", "Lease", "leases", has_status=False),
    Resource("storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False, has_status=False),
    Resource("kubevirt.io/v1", "VirtualMachine", "virtualmachines"),
    Resource("kubevirt.io/v1", "VirtualMachineInstance", "virtualmachineinstances"),
    Resource("cdi.kubevirt.io/v1beta1", "DataVolume", "datavolumes"),
    Resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False),
]
STATIC_RESOURCES: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in _STATIC_RESOURCES}


def contract_resources(names: Names) -> list[Resource]:
    """ComputeInstance and Tenant resources for the group of `names` (a Names)."""
    api_version = f"{names.api_group}/{API_VERSION}"
    return [
        Resource(api_version, COMPUTE_INSTANCE_KIND, COMPUTE_INSTANCE_PLURAL),
        Resource(api_version, TENANT_KIND, TENANT_PLURAL),
    ]
