"""The published policy texts as a structured reference (K-UP, D-9): titles, sections with
their clause ids, paragraphs, lists; pure (plain text in, frozen dataclasses out).

The texts (`orders/policy_texts/`) are plain lines, no markup; a version's `text` holds them
one after the other, separated by a blank line. Their shapes:

- a text starts with its title line ("Refund Policy", "Kajet's Cancellation Policy"); a
  "Last updated: <date>" line anywhere is the text's own date;
- the lojix Refund Policy numbers its sections: "2. Order Cancellation" is L-2 and
  "2.1 Customer-Initiated Cancellation" is L-2.1;
- Kajet's Cancellation Policy titles them ("Order Cancellation by Buyer") and numbers the
  clauses inside ("1. Cancellation Window: Buyers have ..."): K-B is the section, K-B1 the
  clause; the section ids are the platform's shorthand (`KAJET_SECTION_IDS`);
- "- item" lines are lists; a short title-cased line ending in ":" (or "Step 1: Contact Us") is
  a subheading; every other line is a paragraph.

A text whose first line is not a known title (a small test version) is read as untitled
paragraphs and lists, with no clause ids.
"""

import datetime as dt
import re
from dataclasses import dataclass, field

# The prefix of each text's clause ids, by its title line.
TITLE_PREFIXES = {"refund policy": "L", "kajet's cancellation policy": "K"}
# The platform's shorthand for the sections of Kajet's text (D-6: K-B1..3, K-S1..3, K-OV ...).
KAJET_SECTION_IDS = {
    "order cancellation by buyer": "B",
    "cancellation by seller": "S",
    "kajet's cancellation oversight": "OV",
    "dispute resolution": "DR",
    "cancellation policy updates": "UP",
}
SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "in", "of", "on", "or", "the", "to"}
MAX_HEADING_LENGTH = 60

_SECTION = re.compile(r"^(\d+)\.\s+(\S.*)$")
_SUBSECTION = re.compile(r"^(\d+)\.(\d+)\s+(\S.*)$")
_NUMBERED_CLAUSE = re.compile(r"^(\d+)\.\s+([^:]{1,60}):\s+(\S.*)$")
_LIST_ITEM = re.compile(r"^[-•*]\s+(.*)$")
_LAST_UPDATED = re.compile(r"^last updated:\s*(.+)$", re.IGNORECASE)
_DATE_FORMATS = ("%B %d, %Y", "%d %B %Y", "%Y-%m-%d")


@dataclass(frozen=True)
class Block:
    """A paragraph (`text`), a subheading (`text`) or a list (`items`)."""

    kind: str  # "paragraph" | "subheading" | "list"
    text: str = ""
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A heading with its clause id (`anchor`, e.g. "L-2.1"; None in an untitled text), its
    number as printed ("2.1", "1", "" for Kajet's titled sections), its blocks and its
    subsections (`level` 2 for sections, 3 for clauses inside one)."""

    anchor: str | None
    number: str
    title: str
    level: int
    blocks: tuple[Block, ...] = ()
    sections: tuple["Section", ...] = ()


@dataclass(frozen=True)
class PolicyText:
    """One published text: its title, the slug its element id uses, its own "Last updated"
    (as printed, and as a date when it reads as one), the blocks before its first section, and
    its sections."""

    title: str
    slug: str
    last_updated: str = ""
    last_updated_on: dt.date | None = None
    blocks: tuple[Block, ...] = ()
    sections: tuple[Section, ...] = ()


@dataclass(frozen=True)
class PolicyDocument:
    texts: tuple[PolicyText, ...]

    def sections(self) -> list[Section]:
        """Every section and clause, depth first, in the order of the texts."""
        found = []
        for text in self.texts:
            for section in text.sections:
                found += [section, *section.sections]
        return found

    def clause_ids(self) -> list[str]:
        """Every clause id, in reading order: ["L-1", "L-2", "L-2.1", ..., "K-B", "K-B1", ...]."""
        return [section.anchor for section in self.sections() if section.anchor]

    def clause_texts(self) -> dict[str, str]:
        """Clause id -> the clause as one line of plain text, title first (for tooltips)."""
        return {s.anchor: section_plain_text(s) for s in self.sections() if s.anchor}


# -- parsing ---------------------------------------------------------------------------------


def parse_policy(text: str) -> PolicyDocument:
    """Split a version's text into its published texts and parse each (see the module)."""
    chunks, current = [], []
    for line in [line.strip() for line in text.splitlines()]:
        if line and not current and chunks and _title_prefix(line) is None:
            # A blank line inside a text (not before a new title) keeps the text together.
            current = chunks.pop()
        if line:
            current.append(line)
        elif current:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return PolicyDocument(texts=tuple(_parse_text(lines) for lines in chunks))


def _title_prefix(line: str) -> str | None:
    return TITLE_PREFIXES.get(line.strip().lower())


def _parse_text(lines: list[str]) -> PolicyText:
    prefix = _title_prefix(lines[0])
    title, body = (lines[0], lines[1:]) if prefix else ("", lines)
    last_updated = ""
    builder = _TextBuilder(prefix)
    for line in body:
        match = _LAST_UPDATED.match(line)
        if match and prefix:
            last_updated = match.group(1).strip()
        else:
            builder.add(line)
    return PolicyText(
        title=title,
        slug=_slug(title) if title else "policy-text",
        last_updated=last_updated,
        last_updated_on=_parse_date(last_updated),
        blocks=builder.intro(),
        sections=builder.sections(),
    )


@dataclass
class _Draft:
    anchor: str | None
    number: str
    title: str
    level: int
    lines: list[str] = field(default_factory=list)
    children: list["_Draft"] = field(default_factory=list)

    def freeze(self) -> Section:
        return Section(
            anchor=self.anchor,
            number=self.number,
            title=self.title,
            level=self.level,
            blocks=_blocks(self.lines),
            sections=tuple(child.freeze() for child in self.children),
        )


class _TextBuilder:
    """Reads a text's lines in order into sections, subsections and their lines."""

    def __init__(self, prefix: str | None):
        self.prefix = prefix
        self.intro_lines: list[str] = []
        self.drafts: list[_Draft] = []

    def add(self, line: str) -> None:
        if self.prefix and self._heading(line):
            return
        if self.drafts:
            self._target().lines.append(line)
        else:
            self.intro_lines.append(line)

    def intro(self) -> tuple[Block, ...]:
        return _blocks(self.intro_lines)

    def sections(self) -> tuple[Section, ...]:
        return tuple(draft.freeze() for draft in self.drafts)

    def _target(self) -> _Draft:
        last = self.drafts[-1]
        return last.children[-1] if last.children else last

    def _heading(self, line: str) -> bool:
        """Start a section or clause if the line is a heading; True if it was one."""
        if match := _SUBSECTION.match(line):
            major, minor, title = match.groups()
            if self.drafts and self.drafts[-1].number == major:
                anchor = f"{self.prefix}-{major}.{minor}"
                self.drafts[-1].children.append(_Draft(anchor, f"{major}.{minor}", title, 3))
                return True
        if (match := _SECTION.match(line)) and _is_heading(match.group(2)):
            number, title = match.groups()
            self.drafts.append(_Draft(f"{self.prefix}-{number}", number, title, 2))
            return True
        if _is_heading(line) and ":" not in line:
            code = KAJET_SECTION_IDS.get(line.lower()) or _initials(line)
            self.drafts.append(_Draft(f"{self.prefix}-{code}", "", line, 2))
            return True
        if (match := _NUMBERED_CLAUSE.match(line)) and self.drafts and not self.drafts[-1].number:
            number, title, body = match.groups()
            parent = self.drafts[-1]
            parent.children.append(_Draft(f"{parent.anchor}{number}", number, title, 3, [body]))
            return True
        return False


def _blocks(lines: list[str]) -> tuple[Block, ...]:
    blocks: list[Block] = []
    for line in lines:
        if match := _LIST_ITEM.match(line):
            if blocks and blocks[-1].kind == "list":
                blocks[-1] = Block("list", items=(*blocks[-1].items, match.group(1)))
            else:
                blocks.append(Block("list", items=(match.group(1),)))
        elif _is_subheading(line):
            blocks.append(Block("subheading", text=line.rstrip(":")))
        else:
            blocks.append(Block("paragraph", text=line))
    return tuple(blocks)


def _is_heading(line: str) -> bool:
    """Short, title-cased, not a sentence: "Dispute Resolution", "Introduction"."""
    return (
        len(line) <= MAX_HEADING_LENGTH
        and not line.endswith((".", "!", "?", ","))
        and _is_title_case(line.rstrip(":"))
    )


def _is_subheading(line: str) -> bool:
    """ "Before Restaurant Accepts Order:" or "Step 1: Contact Us"; not "Email: support@..."."""
    return _is_heading(line) and (line.endswith(":") or bool(re.match(r"^Step \d+:", line)))


def _is_title_case(line: str) -> bool:
    words = [word for word in re.split(r"[\s:]+", line) if word]
    if not words or not words[0][0].isupper():
        return False
    return all(w[0].isupper() or w[0].isdigit() or w.lower() in SMALL_WORDS for w in words)


def _initials(title: str) -> str:
    return "".join(word[0] for word in title.split() if word[0].isupper()) or "X"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower().replace("'", "")).strip("-")


def _parse_date(text: str) -> dt.date | None:
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


# -- plain text ------------------------------------------------------------------------------


def section_plain_text(section: Section) -> str:
    """The section as one line: "Title. Paragraph. Subheading: item; item. ..."; its
    subsections included (a tooltip for L-2 shows L-2.1 and L-2.2 too)."""
    parts = [section.title.rstrip(":.") + "."]
    parts += [_block_plain_text(block) for block in section.blocks]
    parts += [section_plain_text(child) for child in section.sections]
    return " ".join(part for part in parts if part)


def _block_plain_text(block: Block) -> str:
    if block.kind == "list":
        return "; ".join(item.rstrip(".;") for item in block.items) + "."
    if block.kind == "subheading":
        return block.text + ":"
    return block.text
