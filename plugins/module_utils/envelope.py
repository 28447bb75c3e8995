# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The ComputeInstance out of whichever extra-vars envelope delivered it.

The one place that knows the shapes of docs/contract.md, Envelopes:
  ansible_eda.event.payload   EDA run_job_template, and AAP Direct which wraps it the same way
  osac_job_vars.resource      later operator versions
  compute_instance            hand runs
The object found is only a hint of WHICH instance: callers read the live one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Optional

# (name, path of keys from the extra vars to the object), in order of precedence.
ENVELOPES = (
    ("ansible_eda.event.payload", ("ansible_eda", "event", "payload")),
    ("osac_job_vars.resource", ("osac_job_vars", "resource")),
    ("compute_instance", ("compute_instance",)),
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class EnvelopeError(ValueError):
    """The extra vars do not identify one ComputeInstance; the message names the field."""


class Identity:
    """Which ComputeInstance a job is about, and where that was read from."""

    __slots__ = ("name", "namespace", "uid", "api_group", "source", "payload")

    def __init__(self, name, namespace, uid, api_group, source, payload):
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.api_group = api_group
        self.source = source
        self.payload = payload

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "api_group": self.api_group,
            "source": self.source,
        }


def _decode(value, field):
    """Envelopes may arrive JSON-encoded (AAP passes some extra vars as strings)."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            raise EnvelopeError(f"{field} is a string but not valid JSON: {exc}") from exc
    return value


def _dig(extra_vars, keys, name):
    """The object at `keys`, None when the envelope is absent (or explicitly null/empty)."""
    value = extra_vars
    walked = []
    for key in keys:
        value = _decode(value, ".".join(walked) or "extra vars")
        if value is None:
            return None
        if not isinstance(value, dict):
            raise EnvelopeError(
                "{} must be a mapping, got {}".format(".".join(walked) or "extra vars", type(value).__name__)
            )
        value = value.get(key)
        walked.append(key)
    value = _decode(value, name)
    return value or None


def identify(extra_vars: Mapping[str, Any], api_group: Optional[str] = None) -> Identity:
    """Identity of the ComputeInstance carried by `extra_vars` (any envelope).

    `extra_vars` may also be the ComputeInstance object itself. Several
    envelopes may be present only if they name the same instance.
    `api_group`, when given, must agree with the object's apiVersion.
    """
    extra_vars = _decode(extra_vars, "extra vars")
    if not isinstance(extra_vars, dict):
        raise EnvelopeError(f"extra vars must be a mapping, got {type(extra_vars).__name__}")
    found = []
    if extra_vars.get("kind") == "ComputeInstance" or ("metadata" in extra_vars and "spec" in extra_vars):
        found.append(("object", extra_vars))
    for name, keys in ENVELOPES:
        obj = _dig(extra_vars, keys, name)
        if obj is not None:
            found.append((name, obj))
    if not found:
        raise EnvelopeError(
            "no ComputeInstance in the extra vars: expected one of {}".format(
                ", ".join(name for name, _keys in ENVELOPES)
            )
        )
    identities = [_identity(source, obj, api_group) for source, obj in found]
    first = identities[0]
    for other in identities[1:]:
        if (other.namespace, other.name) != (first.namespace, first.name) or (
            other.uid and first.uid and other.uid != first.uid
        ):
            raise EnvelopeError(
                f"{first.source} names {first.namespace}/{first.name} but {other.source} names "
                f"{other.namespace}/{other.name}: one job is about one ComputeInstance"
            )
    return first


def _identity(source, obj, api_group):
    if not isinstance(obj, dict):
        raise EnvelopeError(f"{source} must be a ComputeInstance object (a mapping), got {type(obj).__name__}")
    kind = obj.get("kind")
    if kind is not None and kind != "ComputeInstance":
        raise EnvelopeError(f"{source}.kind must be ComputeInstance, got {kind!r}")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise EnvelopeError(f"{source}.metadata is missing or not a mapping")
    name = metadata.get("name")
    namespace = metadata.get("namespace")
    if not isinstance(name, str) or not _DNS_SUBDOMAIN.fullmatch(name) or len(name) > 253:
        raise EnvelopeError(f"{source}.metadata.name must be a DNS subdomain name, got {name!r}")
    if not isinstance(namespace, str) or not _DNS_LABEL.fullmatch(namespace) or len(namespace) > 63:
        raise EnvelopeError(f"{source}.metadata.namespace must be a DNS label, got {namespace!r}")
    uid = metadata.get("uid")
    if uid is not None and not isinstance(uid, str):
        raise EnvelopeError(f"{source}.metadata.uid must be a string, got {type(uid).__name__}")
    group = None
    api_version = obj.get("apiVersion")
    if api_version is not None:
        if not isinstance(api_version, str) or "/" not in api_version:
            raise EnvelopeError(f"{source}.apiVersion must look like <group>/<version>, got {api_version!r}")
        group = api_version.split("/", 1)[0]
        if api_group and group != api_group:
            raise EnvelopeError(f"{source}.apiVersion is in group {group}, but api_group is {api_group}")
    return Identity(name, namespace, uid or None, group or api_group, source, obj)
