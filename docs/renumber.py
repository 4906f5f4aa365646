"""Rewrites the numbers of the docs pages from docs/figures/numbers.json after a rerun of `make figures`.

    .venv/bin/python docs/renumber.py            rewrite the stale numbers, print each change
    .venv/bin/python docs/renumber.py --check    print what is stale, write nothing (exit 1 if anything is)

The claims are tests/test_docs_numbers.py's (a page's text with ``{}`` where numbers stand, and the
numbers.json keys they show). A number that no longer agrees with numbers.json at the precision shown is
rewritten at that same precision (decimals, thousands commas, the page's minus sign); a bound (``{<}``,
``{>}``) that no longer holds is printed for a person to rewrite, with the sentence it is in. Words are never
changed: read each printed sentence, since a comparison in the prose ("as often as", a bold best value) may
have turned. Then `python notebooks/editions.py --sync` carries the translations over with the new numbers,
and `make editions` writes the editions.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def claims_module():
    """tests/test_docs_numbers.py, whose claims and reading of numbers.json are the one definition."""
    spec = importlib.util.spec_from_file_location("docs_numbers", ROOT / "tests" / "test_docs_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shown_like(shown: str, kind: str, actual: float) -> str:
    """``actual`` written as ``shown`` is: the same decimals (``~``: the same last significant place), commas
    if it had them, its minus sign."""
    digits = shown.split(".")[1] if "." in shown else ""
    if kind == "~":
        integer = shown.lstrip("−-").replace(",", "")
        places = -(len(integer) - len(integer.rstrip("0"))) if not digits else len(digits.rstrip("0"))
    else:
        places = len(digits)
    rounded = round(actual, places)
    text = f"{abs(rounded):,.{max(places, 0)}f}" if "," in shown else f"{abs(rounded):.{max(places, 0)}f}"
    minus = "-" if shown.startswith("-") else "−"
    return (minus if rounded < 0 and not math.isclose(rounded, 0.0) else "") + text


def renumber(page: str, text: str, claims: list, numbers) -> tuple[str, list[str]]:
    """The page's text with its stale numbers rewritten, and one line per change or per bound to rewrite."""
    notes = []
    for template, keys in claims:
        parts = re.split(r"\{([~<>]?)\}", " ".join(template.split()))
        regex = "".join(r"\s+".join(map(re.escape, p.split(" "))) if i % 2 == 0 else f"({numbers.NUMBER})"
                        for i, p in enumerate(parts))
        match = re.search(regex, text)
        if not match:
            notes.append(f"{page}: no longer says {template!r}: update the claim in tests/test_docs_numbers.py")
            continue
        edits = []
        for group, (shown, kind, key) in enumerate(zip(match.groups(), parts[1::2], keys), start=1):
            actual = numbers.value(key)
            if numbers.agrees(shown, kind, actual):
                continue
            if kind in ("<", ">"):
                notes.append(f"{page}: {key} = {actual:.4g} breaks the bound {kind} {shown} in {template!r}: rewrite it")
                continue
            edits.append((match.start(group), match.end(group), shown_like(shown, kind, actual)))
            notes.append(f"{page}: {key}: {shown} → {edits[-1][2]}   in {template!r}")
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]
    return text, notes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print what is stale and write nothing")
    args = parser.parse_args(argv)
    numbers = claims_module()
    stale = False
    for page, claims in numbers.CHECKED.items():
        path = ROOT / "docs" / page
        text, notes = renumber(page, path.read_text(), claims, numbers)
        for note in notes:
            print(note)
        stale |= bool(notes)
        if not args.check and text != path.read_text():
            path.write_text(text)
    return int(stale and args.check)


if __name__ == "__main__":
    sys.exit(main())
