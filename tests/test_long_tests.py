"""`make test-long` runs the tests marked `long` by the paths in the Makefile's LONG_TESTS, and
a plain `pytest` deselects them: a module marked `long` missing from that list would never run.
Proven here: the list names exactly the modules marked `long`, and each exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"^\s*@?pytest\.mark\.long\b", re.MULTILINE)  # a decorator or in pytestmark


def test_the_makefile_lists_every_long_test_module():
    makefile = (ROOT / "Makefile").read_text()
    listed = re.search(r"^LONG_TESTS := ((?:.*\\\n)*.*)$", makefile, re.MULTILINE).group(1)
    listed_paths = set(listed.replace("\\\n", " ").split())
    marked = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if MARKED.search(path.read_text())
    }

    assert listed_paths == marked
    assert len(marked) >= 3
