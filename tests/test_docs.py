"""docs/ stands on its own (issue 10 part 9): the policy map is what the code says today, and
the README and docs link only to files in the repository."""

import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from orders.policy_map import cited_clauses, naming_tests, policy_document, render_policy_map

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE_PATH = re.compile(r"`((?:\.\./)+[\w./-]+)`")


def test_the_committed_policy_map_is_a_fresh_generation():
    committed = (ROOT / "docs" / "policy-map.md").read_text(encoding="utf-8")
    assert committed == render_policy_map(), "docs/policy-map.md is out of date: run `make docs`"


def test_the_policy_map_lists_every_clause_of_both_texts():
    committed = (ROOT / "docs" / "policy-map.md").read_text(encoding="utf-8")
    clause_ids = policy_document().clause_ids()
    assert len(clause_ids) == 38
    for clause in clause_ids:
        assert f"\n### {clause}\n" in committed


def test_policy_map_names_the_implementing_function_and_the_tests():
    committed = (ROOT / "docs" / "policy-map.md").read_text(encoding="utf-8")
    l61 = committed.split("\n### L-6.1\n", 1)[1].split("\n### ", 1)[0]
    assert "- `refunds.policy.late_auto_refund_decision` (refunds/policy.py)" in l61
    assert "tests/refunds/" in l61


def test_the_command_checks_and_writes(tmp_path):
    target = tmp_path / "policy-map.md"
    call_command("policy_map", output=str(target), stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert target.read_text(encoding="utf-8") == render_policy_map()
    call_command("policy_map", output=str(target), check=True, stdout=open("/dev/null", "w"))  # noqa: SIM115
    target.write_text("stale", encoding="utf-8")
    with pytest.raises(CommandError, match="out of date"):
        call_command("policy_map", output=str(target), check=True)


def test_cited_clauses_reads_ranges_and_sentence_ends():
    assert cited_clauses("L-2.1, K-B1..3 and K-OV; see L-9. Not D-7 or BANK-E2E.") == {
        "L-2.1",
        "K-B1",
        "K-B2",
        "K-B3",
        "K-OV",
        "L-9",
    }


def test_a_test_named_after_a_clause_counts(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_x.py").write_text(
        "def test_refused_citing_l_8_1():\n    pass\n\ndef test_k_ov_case():\n    pass\n"
    )
    assert naming_tests(tmp_path) == {
        "L-8.1": ["tests/test_x.py::test_refused_citing_l_8_1"],
        "K-OV": ["tests/test_x.py::test_k_ov_case"],
    }


def test_readme_and_docs_link_only_to_files_in_the_repository():
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        assert "../shared" not in text, doc.name
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # an external URL
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
        assert CODE_PATH.findall(text) == [], doc.name
