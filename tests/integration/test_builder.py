"""ansible-builder turns execution-environment.yml and decision-environment.yml into build contexts, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "definition, expected",
    [
        ("execution-environment.yml", ["cloudkit.provisioning", "kubernetes.core", "kubernetes>=24.2.0", "jsonpatch"]),
        ("decision-environment.yml", ["cloudkit.provisioning", "ansible-rulebook", "java-17-openjdk-headless", "aiohttp"]),
    ],
)
def test_builder_creates_a_context(tmp_path, definition, expected):
    context = tmp_path / "context"
    builder = str(Path(sys.executable).with_name("ansible-builder"))
    command = [builder, "create", "-f", str(ROOT / definition), "-c", str(context), "--output-filename", "Containerfile", "-v", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy" in containerfile or "install-from-bindep" in containerfile
    build_files = "\n".join(p.read_text() for p in (context / "_build").rglob("*") if p.is_file() and p.suffix in (".txt", ".yml", ".yaml"))
    for item in expected:
        assert item in build_files, "%s missing from the %s build context" % (item, definition)
