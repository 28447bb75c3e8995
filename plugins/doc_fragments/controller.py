# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Connection options shared by every module that talks to the automation controller."""

from __future__ import annotations


class ModuleDocFragment:
    """The options of plugins/module_utils/aap.py, documented once (awx.awx's names)."""

    DOCUMENTATION = r"""
options:
  controller_host:
    description:
      - URL of the automation controller. With a path, for example the AAP 2.5 platform gateway's
        C(https://aap.example.com/api/controller), the API is under that path; a bare host such as
        C(https://controller.example.com) means C(/api/).
      - A host name without a scheme gets C(https://).
      - Can also be set with the E(CONTROLLER_HOST), E(TOWER_HOST) or E(AAP_HOSTNAME) environment variables;
        modules that talk to the controller fail when it is set nowhere.
    type: str
    aliases: [tower_host]
  controller_oauthtoken:
    description:
      - Bearer token of the controller (or the platform gateway). Preferred over O(controller_username).
      - A dictionary with a C(token) key, as M(awx.awx.token) returns, is accepted too.
      - Can also be set with the E(CONTROLLER_OAUTH_TOKEN), E(TOWER_OAUTH_TOKEN) or E(AAP_TOKEN) environment variables.
    type: raw
    aliases: [tower_oauthtoken]
  controller_username:
    description:
      - User for basic authentication, used when no O(controller_oauthtoken) is given.
      - Can also be set with the E(CONTROLLER_USERNAME), E(TOWER_USERNAME) or E(AAP_USERNAME) environment variables.
    type: str
    aliases: [tower_username]
  controller_password:
    description:
      - Password of O(controller_username).
      - Can also be set with the E(CONTROLLER_PASSWORD), E(TOWER_PASSWORD) or E(AAP_PASSWORD) environment variables.
    type: str
    aliases: [tower_password]
  validate_certs:
    description:
      - Whether to verify the controller's TLS certificate. Defaults to V(true).
      - Can also be set with the E(CONTROLLER_VERIFY_SSL), E(TOWER_VERIFY_SSL) or E(AAP_VALIDATE_CERTS) environment
        variables.
    type: bool
    aliases: [tower_verify_ssl]
  request_timeout:
    description:
      - Seconds to wait for each HTTP answer. Defaults to 10.
      - Can also be set with the E(CONTROLLER_REQUEST_TIMEOUT) or E(AAP_REQUEST_TIMEOUT) environment variables.
    type: float
notes:
  - These are the connection options of the awx.awx collection, with the same names, aliases and
    environment variables, so the AAP "Red Hat Ansible Automation Platform" credential type works unchanged.
  - Tokens and passwords never appear in results or error messages.
  - Reads that the controller answers with 429, 502, 503 or 504, and connection failures, are tried up to
    three times; launches and cancels are sent once.
"""

    # For modules that also talk to Kubernetes: validate_certs is the Kubernetes API's there (kubernetes.core's name).
    WITH_KUBE = r"""
options:
  controller_host:
    description:
      - Automation controller to ask (see M(cloudkit.provisioning.aap_job) for the URL forms); unset skips what needs
        it.
      - Can also be set with the E(CONTROLLER_HOST), E(TOWER_HOST) or E(AAP_HOSTNAME) environment variables.
    type: str
  controller_oauthtoken:
    description:
      - Token for the controller.
      - Can also be set with the E(CONTROLLER_OAUTH_TOKEN), E(TOWER_OAUTH_TOKEN) or E(AAP_TOKEN) environment variables.
    type: raw
  controller_username:
    description:
      - User for the controller, with O(controller_password), when no token is given.
      - Can also be set with the E(CONTROLLER_USERNAME), E(TOWER_USERNAME) or E(AAP_USERNAME) environment variables.
    type: str
  controller_password:
    description:
      - Password of O(controller_username).
      - Can also be set with the E(CONTROLLER_PASSWORD), E(TOWER_PASSWORD) or E(AAP_PASSWORD) environment variables.
    type: str
  controller_validate_certs:
    description:
      - Whether to verify the controller's TLS certificate (O(validate_certs) is the Kubernetes API's).
      - Can also be set with the E(CONTROLLER_VERIFY_SSL), E(TOWER_VERIFY_SSL) or E(AAP_VALIDATE_CERTS) environment
        variables.
    type: bool
"""
