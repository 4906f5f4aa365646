"""Writes the translated editions (Russian, Chinese, Polish) of the notebooks and of docs/lecture.md.

    .venv/bin/python notebooks/editions.py          rewrite every edition (make editions)
    .venv/bin/python notebooks/editions.py --check  exit 1 if an edition is stale; write nothing
    .venv/bin/python notebooks/editions.py --sync   add the untranslated texts to the translation files

One source, one translation file per language per document (notebooks/i18n/README.md says how to translate):

    notebooks/NN_name.ipynb + notebooks/i18n/LANG/NN_name.json  →  notebooks/LANG/NN_name.ipynb
    docs/lecture.md         + docs/i18n/LANG/lecture.json       →  docs/LANG/lecture.md

A translation file maps the key of each English text (the first 16 hex digits of its SHA-256) to
``{"en": English lines, "text": translated lines}``. The texts are a notebook's markdown cells, and a page's
blocks (paragraphs, lists, tables, headings, between blank lines). An edition's code cells, cell ids and
cell metadata (tags) are the English notebook's, copied; so are a page's fenced code blocks, rules and pure
formulas (a ``$$`` block without ``\\text``). A relative link or image of a translated text gets ``../``,
because the edition sits one folder deeper. A changed English text has a new key, so its translation is
missing until someone translates it again: the editions are then not written (exit 2, one line).
tests/test_editions.py fails when a translation is missing, when code differs, or when an edition is stale.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = {"ru": "Русский", "zh": "中文", "pl": "Polski"}
PAGES = [ROOT / "docs" / "lecture.md"]
RELATIVE_LINK = re.compile(r"(\]\()(?!https?:|mailto:|#|/)([^)\s]+\))")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")  # as tests/test_editions.py counts the numbers a translation keeps


class MissingTranslation(Exception):
    """An English text of a source has no translation in a language's file."""


class Untranslated(Exception):
    """Some editions can't be written: their one-line reason, for the command's stderr."""


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def sources() -> list[Path]:
    return notebooks() + PAGES


def key(text: str) -> str:
    """The first 16 hex digits of the SHA-256 of an English text: its key in a translation file."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def translation_file(source: Path, language: str) -> Path:
    return source.parent / "i18n" / language / f"{source.stem}.json"


def edition_file(source: Path, language: str) -> Path:
    return source.parent / language / source.name


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text())


def dump_notebook(notebook: dict) -> str:
    """The notebook as Jupyter writes it (one-space indent, non-ASCII kept), so a saved edition diffs cleanly."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def cell_text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def cell_source(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def blocks(page: str) -> list[str]:
    """A markdown page cut at blank lines, a fenced code block kept whole (blank lines and all)."""
    out, current, fenced = [], [], False
    for line in page.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        if not line.strip() and not fenced:
            if current:
                out.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        out.append("\n".join(current))
    return out


def verbatim(block: str) -> bool:
    """Whether a page's block is the same in every language: code, a rule, a formula without words."""
    return block.startswith("```") or block.strip() == "---" or (block.startswith("$$") and "\\text" not in block)


def texts(source: Path) -> list[str]:
    """The English texts of a source that need a translation, in document order."""
    if source.suffix == ".ipynb":
        return [cell_text(c) for c in read_notebook(source)["cells"] if c["cell_type"] == "markdown"]
    return [b for b in blocks(source.read_text()) if not verbatim(b)]


def load_translations(source: Path, language: str) -> dict:
    path = translation_file(source, language)
    return json.loads(path.read_text()) if path.is_file() else {}


def translate(text: str, table: dict) -> str:
    """A text's translation, with its relative links one folder up (the edition sits one folder deeper)."""
    entry = table.get(key(text))
    if not entry or entry.get("text") is None:
        raise MissingTranslation(text)
    translated = entry["text"]
    translated = "\n".join(translated) if isinstance(translated, list) else translated
    return RELATIVE_LINK.sub(r"\1../\2", translated)


def render(source: Path, language: str) -> str:
    """The edition of ``source`` in ``language``, as its file's text; MissingTranslation if a text has none."""
    table = load_translations(source, language)
    rel = lambda path: Path("..", path.relative_to(source.parent)).as_posix()  # noqa: E731
    if source.suffix == ".ipynb":
        notebook = copy.deepcopy(read_notebook(source))
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                cell["source"] = cell_source(translate(cell_text(cell), table))
        notebook["metadata"]["edition"] = {"language": language, "source": rel(source),
                                           "translation": rel(translation_file(source, language)),
                                           "generated_by": "notebooks/editions.py (make editions)"}
        return dump_notebook(notebook)
    page = source.read_text()
    parts = [b if verbatim(b) else translate(b, table) for b in blocks(page)]
    header = (f"<!-- Generated by notebooks/editions.py from {rel(source)} and "
              f"{rel(translation_file(source, language))}: edit those, then run `make editions`. -->")
    return header + "\n\n" + "\n\n".join(parts) + "\n"


def missing(source: Path, language: str) -> list[str]:
    table = load_translations(source, language)
    return [t for t in texts(source) if not table.get(key(t)) or table[key(t)].get("text") is None]


def renumbered(was_en: str, was_text: str, english: str) -> str | None:
    """The translation ``was_text`` of ``was_en`` with its numbers replaced by ``english``'s, when the two
    English texts differ only in their numbers (a rerun of ``make figures``). Where the translation holds the
    old numbers in the English order (a table), the k-th number becomes the k-th new one; else each old number
    becomes its one new value. None when the words changed too, or when the translation reorders numbers and
    one old number became two different new ones (they could not be told apart), or when the translation does
    not hold each old number as often as the English did."""
    old, new = NUMBER.findall(was_en), NUMBER.findall(english)
    if NUMBER.sub("#", was_en) != NUMBER.sub("#", english) or len(old) != len(new):
        return None
    if NUMBER.findall(was_text) == old:
        replaced = iter(new)
        return NUMBER.sub(lambda m: next(replaced), was_text)
    mapping = {}
    for a, b in zip(old, new):
        if mapping.setdefault(a, b) != b:
            return None
    if sorted(NUMBER.findall(was_text)) != sorted(old):
        return None
    return NUMBER.sub(lambda m: mapping[m.group()], was_text)


def sync(source: Path, language: str) -> int:
    """Rewrites a translation file in the source's order: a new text gets ``"text": null`` (and, where the
    cell or block at its place had a translation, that old pair as ``"was"``, to edit rather than redo); a
    text the source no longer has is dropped. Where only the numbers of the text at that place changed, its
    translation is kept with the new numbers (``renumbered``). Returns how many texts still need a translation."""
    table = load_translations(source, language)
    old = list(table.values())
    english = texts(source)
    out = {}
    for i, text in enumerate(english):
        entry = table.get(key(text))
        if entry and entry.get("text") is not None:
            out[key(text)] = {"en": text.split("\n"), "text": entry["text"]}
            continue
        out[key(text)] = {"en": text.split("\n"), "text": None}
        if i < len(old) and old[i].get("text") is not None and old[i]["en"] != text.split("\n"):
            was_en, was_text = "\n".join(old[i]["en"]), "\n".join(old[i]["text"])
            carried = renumbered(was_en, was_text, text)
            if carried is not None:
                out[key(text)]["text"] = carried.split("\n")
            else:
                out[key(text)]["was"] = {"en": old[i]["en"], "text": old[i]["text"]}
    path = translation_file(source, language)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    return sum(entry["text"] is None for entry in out.values())


def render_all() -> dict[Path, str]:
    """Every edition's path and text; Untranslated (one line) if any translation is missing, before any is written."""
    gaps = [(translation_file(s, lang), len(missing(s, lang))) for s in sources() for lang in LANGUAGES]
    gaps = [(path, n) for path, n in gaps if n]
    if gaps:
        listed = ", ".join(f"{p.relative_to(ROOT)} ({n})" for p, n in gaps[:3]) + (", …" if len(gaps) > 3 else "")
        raise Untranslated(f"editions.py: error: {sum(n for _, n in gaps)} texts have no translation, in "
                           f"{len(gaps)} files ({listed}): run `python notebooks/editions.py --sync`, translate the entries whose "
                           "\"text\" is null, then `make editions`")
    return {edition_file(s, lang): render(s, lang) for s in sources() for lang in LANGUAGES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if an edition is stale; write nothing")
    mode.add_argument("--sync", action="store_true",
                      help="add each untranslated text to its translation file with \"text\": null")
    args = parser.parse_args()
    if args.sync:
        for source in sources():
            for language in LANGUAGES:
                n = sync(source, language)
                if n:
                    print(f"{translation_file(source, language).relative_to(ROOT)}: {n} to translate")
        return 0
    try:
        editions = render_all()
    except Untranslated as error:
        print(error, file=sys.stderr)
        return 2
    stale = [p for p, text in editions.items() if not p.is_file() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run `make editions`")
        return int(bool(stale))
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(editions[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
