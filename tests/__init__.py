"""Test suites and local stand-ins for the cloudkit.provisioning collection."""
