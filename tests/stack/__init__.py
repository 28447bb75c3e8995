"""Local stand-ins (Kubernetes API server and friends) used by tests and demos."""
