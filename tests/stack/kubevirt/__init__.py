"""A KubeVirt + CDI stand-in for tests: a controller that drives VirtualMachines, VMIs and DataVolumes through the API only.

``KubeVirtController(kubeconfig).start()`` runs it on background threads; ``python -m tests.stack.kubevirt`` runs it standalone.
"""
from __future__ import annotations

from .controller import KubeVirtController
from .model import ANNOTATION_FAIL, ANNOTATION_IMPORT_DELAY, ANNOTATION_READY_DELAY

__all__ = ['KubeVirtController', 'ANNOTATION_FAIL', 'ANNOTATION_IMPORT_DELAY', 'ANNOTATION_READY_DELAY']
