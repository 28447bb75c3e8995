"""`make demo`'s script runs the create and delete jobs end to end on the local stack."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(bool(os.environ.get("CLOUDKIT_TEST_KUBECONFIG")), reason="the demo always runs on the local stand-ins")
def test_demo_script():
    result = subprocess.run([str(ROOT / "tools" / "demo.sh")], capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    out = result.stdout
    assert "action: provision (desired config version" in out
    assert "phase=Ready" in out and "conditions=Accepted=True, Progressing=False, Available=True" in out
    assert "VirtualMachine/demo-vm Running" in out
    assert "instance gone: True; objects left: none" in out
    assert out.count("failed=0") == 2
