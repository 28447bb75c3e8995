# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Options that say which ComputeInstance a module works on, and in which API group."""

from __future__ import annotations


class ModuleDocFragment:
    """name/namespace (and uid) or payload, and api_group."""

    DOCUMENTATION = r"""
options:
  name:
    description: Name of the ComputeInstance. Use with O(namespace), or use O(payload) instead.
    type: str
  namespace:
    description: Namespace of the ComputeInstance.
    type: str
  uid:
    description:
      - With O(name), the C(metadata.uid) of the instance the job was launched for. A namesake that replaced it
        (deleted and re-created under the same name) counts as gone and is never written to. O(payload) carries
        its own uid.
    type: str
  payload:
    description:
      - The extra vars as the job received them, or the ComputeInstance object itself.
      - Recognised envelopes, in order of precedence, are C(ansible_eda.event.payload) (EDA
        C(run_job_template), and AAP Direct), C(osac_job_vars.resource) (later operator versions) and
        C(compute_instance) (hand runs). Several may be present only if they name the same instance.
      - Only which instance it is (name, namespace, uid) is taken from it; the live object is read.
      - A JSON string is decoded first.
    type: raw
  api_group:
    description:
      - API group of the cloudkit operator's resources. Every finalizer, annotation and label name
        (C(<group>/computeinstance-aap), C(<group>/reconciled-config-version), ...) is derived from it.
      - When unset, the group of the payload's C(apiVersion) is used if there is one,
        else C(cloudkit.openshift.io). Later operator versions use C(osac.openshift.io).
      - Can also be set with the E(CLOUDKIT_API_GROUP) environment variable.
    type: str
"""
