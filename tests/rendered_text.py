"""What a person reads on a rendered page, and the checks D-9 asks of it: every money value
with two decimals and the currency, no design reference (D-7) and no status code
(`partial_refund`) in front of a buyer or a partner.

The checkers take the visible text (`visible_text`) and return the offending snippets, so a
failing test names what it found and where."""

import re
from html.parser import HTMLParser

# Elements whose content is never read as text by a person.
_INVISIBLE = {"script", "style", "template", "noscript", "head"}

# A decimal number standing on its own: not part of a clause id (L-2.1, K-B1), a word, a
# dotted version or date (1.2.3, 30.11.2026) or a longer number.
_DECIMAL = re.compile(r"(?<![\w.,])(?<![A-Za-z]-)-?\d[\d,]*\.\d+(?:\.\d+)*(?![\w.,]*\d)")
_MONEY = re.compile(r"-?\d{1,3}(?:,\d{3})*\.\d{2}")
_DESIGN_REFERENCE = re.compile(r"\bD-\d+\b")
_STATUS_CODE = re.compile(r"(?<![\w/.@:=-])[a-z]+(?:_[a-z]+)+(?![\w/@-]|\.\w)")
_CONTEXT = 30


class _TextCollector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in _INVISIBLE:
            self._hidden_depth += 1
        elif tag in {"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "dt", "dd"}:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _INVISIBLE and self._hidden_depth:
            self._hidden_depth -= 1
        else:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._hidden_depth:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The text of an HTML page as a person reads it: tags stripped, scripts, styles and the
    head left out, runs of white space (non-breaking spaces included) collapsed to one space."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    return re.sub(r"\s+", " ", "".join(collector.parts).replace("\xa0", " "))


def _snippet(text: str, match: re.Match) -> str:
    """ "'2.56' in: ...get 23.03 back (2.56 fee)...": the offending value and its context."""
    around = text[max(0, match.start() - _CONTEXT) : match.end() + _CONTEXT].strip()
    return f"{match.group()!r} in: ...{around}..."


def money_problems(text: str, currency: str) -> list[str]:
    """Money written any other way than "1,234.50 USD": a decimal number with other than two
    decimals or without the currency after it, and a number before the currency that is not
    such an amount ("6 USD", "47.7600000000000 USD"). Percentages ("15.5 %") are not money.
    Returns a snippet around each offending value."""
    problems = []
    for match in _DECIMAL.finditer(text):
        number, after = match.group(), text[match.end() :]
        if number.count(".") > 1 or re.match(r"\s?%", after):
            continue
        if not (_MONEY.fullmatch(number) and re.match(rf"\s{currency}\b", after)):
            problems.append(_snippet(text, match))
    for match in re.finditer(rf"(?<![\w.,-])(-?[\d.,]*\d)\s{currency}\b", text):
        if not _MONEY.fullmatch(match.group(1)):
            problems.append(_snippet(text, match))
    return sorted(set(problems))


def reference_problems(text: str, *, status_codes: bool = True) -> list[str]:
    """Design references (D-7), and unless `status_codes` is false (admin, where agents read
    the state machine's names) snake_case codes (`partial_refund`, `window_passed`), in a text
    meant for people; a snippet around each."""
    found = [*_DESIGN_REFERENCE.finditer(text)]
    found += _STATUS_CODE.finditer(text) if status_codes else []
    return sorted({_snippet(text, match) for match in found})
