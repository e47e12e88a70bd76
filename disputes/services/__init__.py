"""Dispute services, one module per capability (D-3)."""
