"""Which Kubernetes API the local stack runs on: the embedded stand-in or the real control plane.

- ``stand-in``: tests/stack/kubeapi, an API server written in this repo (in process, no build, starts in milliseconds);
- ``kube-apiserver``: kube-apiserver, kube-controller-manager and etcd built from their Go modules (tools/k8s), behind the
  fault-switch proxy (tests/stack/controlplane.py, tests/stack/proxy.py); about 4 s to start.

``CLOUDKIT_TEST_API`` chooses (``make test`` sets ``kube-apiserver``; unset means ``stand-in``). Both give an object with
the same interface: ``start()``/``stop()`` (and a context manager), ``url``, ``token``, ``faults``, ``write_log()``,
``clear_write_log()``, ``write_kubeconfig(path)``, ``load_crds(path)``.
"""
from __future__ import annotations

import os

from .kubeapi import DEFAULT_CRD_DIR, KubeAPIServer

STAND_IN = 'stand-in'
KUBE_APISERVER = 'kube-apiserver'
BACKENDS = (STAND_IN, KUBE_APISERVER)
ENV = 'CLOUDKIT_TEST_API'


def selected(default: str = STAND_IN) -> str:
    """The backend ``CLOUDKIT_TEST_API`` names (``default`` when unset); raises ValueError for an unknown name."""
    backend = os.environ.get(ENV) or default
    if backend not in BACKENDS:
        raise ValueError(f'{ENV}={backend!r}: choose one of {", ".join(BACKENDS)}')
    return backend


def new_api(backend: str | None = None, crd_paths=None, work_dir=None, **stand_in_options):
    """A new, not yet started API of ``backend`` (default: ``selected()``) serving ``crd_paths`` (default tests/stack/crds).

    ``stand_in_options`` go to ``KubeAPIServer`` (``history``, ``bookmark_interval``, ``fault_seed``, ``write_log_size``,
    ``port``, ``token``); on kube-apiserver only ``fault_seed``, ``write_log_size`` and ``port`` mean something (the
    proxy's), and the others are refused.
    """
    backend = backend or selected()
    crd_paths = [DEFAULT_CRD_DIR] if crd_paths is None else crd_paths
    if backend == STAND_IN:
        return KubeAPIServer(crd_paths=crd_paths, **stand_in_options)
    from .controlplane import ControlPlaneAPI  # pylint: disable=import-outside-toplevel  # only when used

    unknown = sorted(set(stand_in_options) - {'fault_seed', 'write_log_size', 'port'})
    if unknown:
        raise ValueError(f'kube-apiserver has no {", ".join(unknown)} option (the stand-in has)')
    return ControlPlaneAPI(crd_paths=crd_paths, work_dir=work_dir, **stand_in_options)
