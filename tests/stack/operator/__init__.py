"""A stand-in for the cloudkit operator (a Go controller): drives ComputeInstances through EDA webhooks or AAP Direct, over HTTP only.

``Operator(kubeconfig, mode='eda'|'aap', ...).start()`` runs it on background threads; ``python -m tests.stack.operator`` runs it
standalone. See README.md for the rules it follows.
"""
from __future__ import annotations

from .contract import Names, desired_config_version, map_aap_status
from .controller import MODES, VARIANTS, Operator

__all__ = ['Operator', 'Names', 'MODES', 'VARIANTS', 'desired_config_version', 'map_aap_status']
