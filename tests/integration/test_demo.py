"""`make demo`'s script runs end to end on the stand-in and shows the seeded instance."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(bool(os.environ.get("CLOUDKIT_TEST_KUBECONFIG")), reason="the demo always runs on the local stand-in")
def test_demo_script():
    result = subprocess.run([str(ROOT / "tools" / "demo.sh")], capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "action: provision (desired config version" in result.stdout
    assert "VM objects would go to namespace tenant-acme" in result.stdout
    assert "cloudkit-demo/demo-vm uid=" in result.stdout
    assert "Nothing has been provisioned" in result.stdout
