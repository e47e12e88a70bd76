"""`make bench` (D-11): performance figures as ratios against baselines from the same run.
Run with `python -m tests.bench.run`; nothing here is collected by pytest (no test_*.py)."""
