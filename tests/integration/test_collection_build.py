"""The collection builds into a tarball that installs offline and documents every module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))
ACTION_GROUPS = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]


def run(command, **env):
    environment = dict(os.environ, ANSIBLE_NOCOLOR="1", **env)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=environment, cwd=ROOT)
    assert result.returncode == 0, " ".join(command) + "\n" + result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_build_install_offline_and_document(tmp_path):
    run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(tmp_path / "dist"), str(ROOT)])
    tarball = tmp_path / "dist" / "cloudkit-provisioning-0.1.0.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "MANIFEST.json" in names and "plugins/modules/finalizer.py" in names
    assert not [n for n in names if n.startswith((".venv", ".build", ".cache", "tests/output")) or "__pycache__" in n]

    # Offline: the dependency (kubernetes.core) is already on the collections path, as in an execution environment.
    target = tmp_path / "collections"
    (target / "ansible_collections" / "kubernetes").mkdir(parents=True)
    (target / "ansible_collections" / "kubernetes" / "core").symlink_to(ROOT / ".build" / "ansible_collections" / "kubernetes" / "core")
    run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", str(tarball), "-p", str(target)], ANSIBLE_COLLECTIONS_PATH=str(target))
    manifest = json.loads((target / "ansible_collections" / "cloudkit" / "provisioning" / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["dependencies"] == {"kubernetes.core": ">=5.0.0"}

    docs = json.loads(run([str(BIN / "ansible-doc"), "--json", "-t", "module"] + ["cloudkit.provisioning." + m for m in MODULES],
                          ANSIBLE_COLLECTIONS_PATH=str(target)))
    assert sorted(docs) == ["cloudkit.provisioning." + m for m in MODULES]
    for name, doc in docs.items():
        assert doc["doc"]["description"] and doc["examples"] and doc["return"], name
    assert sorted(m for group in ACTION_GROUPS.values() for m in group) == MODULES, "every module is in an action group"
    for module in ACTION_GROUPS["kube"]:
        assert "kubeconfig" in docs["cloudkit.provisioning." + module]["doc"]["options"], module + " lacks the Kubernetes connection options"
    for module in ACTION_GROUPS["controller"]:
        assert "controller_host" in docs["cloudkit.provisioning." + module]["doc"]["options"], module + " lacks the controller options"
