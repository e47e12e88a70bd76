"""The disputes API (D-10), one module per capability."""
