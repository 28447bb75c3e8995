"""roles/eda_config produces the EDA objects and the operator's environment from a few names."""

from __future__ import annotations


def test_eda_config_role(run_playbook):
    result = run_playbook("eda_config.yml", "unused")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert result.stdout.count("All assertions passed") == 3
