# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudkit.provisioning contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Connection options shared by every module that talks to the Kubernetes API."""

from __future__ import annotations


class ModuleDocFragment:
    """The options of plugins/module_utils/kube.py, documented once."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig itself as a dictionary.
      - When neither this, O(context) nor O(host) with O(api_key) is given, the in-cluster
        service account is used, and outside a cluster C(~/.kube/config).
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: raw
  context:
    description:
      - The kubeconfig context to use instead of its current context.
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the Kubernetes API server, for example C(https://api.example.com:6443).
      - Overrides the server of the kubeconfig; with O(api_key) no kubeconfig is read.
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token used to authenticate with the API.
      - Can also be set with the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate.
      - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to the CA certificate (full chain) that signed the API server's certificate.
      - Can also be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate used to authenticate with the API.
      - Can also be set with the E(K8S_AUTH_CERT_FILE) environment variable.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the key of O(client_cert).
      - Can also be set with the E(K8S_AUTH_KEY_FILE) environment variable.
    type: path
    aliases: [key_file]
  proxy:
    description:
      - URL of an HTTP proxy for the API connection. E(HTTP_PROXY) and friends are not read.
      - Can also be set with the E(K8S_AUTH_PROXY) environment variable.
    type: str
  no_proxy:
    description:
      - Comma separated hosts, domains and CIDRs that bypass O(proxy).
      - Can also be set with the E(K8S_AUTH_NO_PROXY) environment variable.
    type: str
notes:
  - These are the connection options of M(kubernetes.core.k8s), with the same names, aliases and
    E(K8S_AUTH_*) variables, so one C(module_defaults) group can serve both collections.
  - Requests that the API answers with 429 or 5xx, and connection failures, are retried a bounded
    number of times with jittered backoff, honouring C(Retry-After).
requirements:
  - urllib3
  - PyYAML (to read a kubeconfig file; it comes with ansible-core)
  - kubernetes >= 24.2.0 (the Python client), only for a kubeconfig whose user authenticates with C(exec) or
    C(auth-provider),
    or for several kubeconfig files merged through E(KUBECONFIG)
"""
