"""The Russian, Chinese and Polish editions (notebooks/LANG/*.ipynb, docs/LANG/lecture.md) are the English
source with its words translated: every text has a translation, code and cell metadata are the English
notebook's, LaTeX, code spans and numbers are kept, links resolve, and the committed files are what
``make editions`` writes now (regenerated in memory and compared). Executing the editions is
tests/test_notebooks.py's job."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "notebooks"))  # notebooks/editions.py is a script (make editions), not a package module
import editions as E  # noqa: E402
PAIRS = [(s, lang) for s in E.sources() for lang in E.LANGUAGES]
IDS = [f"{lang}/{s.name}" for s, lang in PAIRS]
NOTEBOOK_PAIRS = [(s, lang) for s, lang in PAIRS if s.suffix == ".ipynb"]
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
CODE = re.compile(r"`[^`\n]+`")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
TEXT = re.compile(r"\\text\{[^{}]*\}")


@pytest.mark.parametrize("source, language", PAIRS, ids=IDS)
def test_every_text_has_a_translation(source, language):
    entries = E.load_translations(source, language)
    assert all(E.key("\n".join(entry["en"])) == key for key, entry in entries.items()), \
        "an entry's \"en\" is not the English its key was made from: run `python notebooks/editions.py --sync`"
    untranslated = E.missing(source, language)
    assert not untranslated, (f"{E.translation_file(source, language).relative_to(ROOT)}: {len(untranslated)} "
                              f"texts untranslated, the first: {untranslated[0][:80]!r}: see notebooks/i18n/README.md")


@pytest.mark.parametrize("source, language", PAIRS, ids=IDS)
def test_the_committed_edition_is_current(source, language):
    edition = E.edition_file(source, language)
    assert edition.is_file() and edition.read_text() == E.render(source, language), \
        f"{edition.relative_to(ROOT)} is stale: run `make editions`"


@pytest.mark.parametrize("source, language", NOTEBOOK_PAIRS, ids=[f"{lang}/{s.name}" for s, lang in NOTEBOOK_PAIRS])
def test_code_cells_and_metadata_are_the_english_ones(source, language):
    english, edition = (json.loads(p.read_text()) for p in (source, E.edition_file(source, language)))
    assert len(edition["cells"]) == len(english["cells"])
    for ours, theirs in zip(edition["cells"], english["cells"]):
        assert (ours["cell_type"], ours.get("id"), ours["metadata"]) == \
               (theirs["cell_type"], theirs.get("id"), theirs["metadata"])
        if theirs["cell_type"] == "code":
            assert ours == theirs, f"{language}/{source.name}: cell {theirs.get('id')} differs from the English code"
    assert {k: v for k, v in edition["metadata"].items() if k != "edition"} == english["metadata"]
    assert (edition["nbformat"], edition["nbformat_minor"]) == (english["nbformat"], english["nbformat_minor"])


@pytest.mark.parametrize("source, language", NOTEBOOK_PAIRS, ids=[f"{lang}/{s.name}" for s, lang in NOTEBOOK_PAIRS])
def test_an_edition_is_a_valid_notebook(source, language):
    import nbformat
    nbformat.validate(nbformat.read(E.edition_file(source, language), as_version=4))


@pytest.mark.parametrize("source, language", PAIRS, ids=IDS)
def test_math_code_and_numbers_are_kept(source, language):
    """A translation keeps each formula (words inside \\text{} aside), each code span and each number."""
    for entry in E.load_translations(source, language).values():
        english, translated = "\n".join(entry["en"]), "\n".join(entry["text"])
        for pattern, what in ((MATH, "formulas"), (CODE, "code spans")):
            ours = sorted(TEXT.sub("", m) for m in pattern.findall(translated))
            theirs = sorted(TEXT.sub("", m) for m in pattern.findall(english))
            assert ours == theirs, f"{language}/{source.name}: {what} differ in {english[:60]!r}"
        outside = lambda text: CODE.sub(" ", MATH.sub(" ", text))  # noqa: E731
        assert sorted(NUMBER.findall(outside(translated))) == sorted(NUMBER.findall(outside(english))), \
            f"{language}/{source.name}: numbers differ in {english[:60]!r}"


@pytest.mark.parametrize("page", E.PAGES, ids=lambda p: p.name)
@pytest.mark.parametrize("language", E.LANGUAGES)
def test_links_and_figures_of_a_page_edition_resolve(page, language):
    edition = E.edition_file(page, language)
    targets = re.findall(r"\]\(([^)\s#]+)\)", edition.read_text())
    relative = [t for t in targets if not t.startswith(("http:", "https:", "mailto:"))]
    assert relative and all((edition.parent / t).exists() for t in relative), \
        [t for t in relative if not (edition.parent / t).exists()]


def test_a_changed_english_cell_needs_a_new_translation(tmp_path, monkeypatch, capsys):
    """Editing the English makes its translation missing: make editions then writes nothing and exits 2."""
    source = E.notebooks()[0]
    shutil.copy(source, tmp_path / source.name)
    for language in E.LANGUAGES:
        (tmp_path / "i18n" / language).mkdir(parents=True)
        shutil.copy(E.translation_file(source, language), tmp_path / "i18n" / language)
    copy = tmp_path / source.name
    notebook = json.loads(copy.read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "markdown")
    before = E.cell_text(cell)
    cell["source"] = ["# A new title\n"] + cell["source"][1:]
    copy.write_text(E.dump_notebook(notebook))
    assert E.missing(copy, "ru") == [E.cell_text(cell)]
    with pytest.raises(E.MissingTranslation):
        E.render(copy, "ru")

    monkeypatch.setattr(E, "ROOT", tmp_path)
    monkeypatch.setattr(E, "sources", lambda: [copy])
    monkeypatch.setattr("sys.argv", ["editions.py"])
    assert E.main() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3 texts have no translation" in err and "--sync" in err
    assert not (tmp_path / "ru").exists()

    monkeypatch.setattr("sys.argv", ["editions.py", "--sync"])
    assert E.main() == 0
    entry = json.loads((tmp_path / "i18n" / "ru" / source.with_suffix(".json").name).read_text())[E.key(E.cell_text(cell))]
    assert entry["text"] is None and entry["was"]["en"] == before.split("\n") and entry["was"]["text"]


def test_a_text_whose_numbers_changed_keeps_its_translation_with_the_new_numbers():
    """After a rerun of `make figures` only numbers move: --sync carries the translation over (renumbered);
    a change of words, or an old number that became two different ones, still needs a translator."""
    was_en = "The judge is sure of 89.1% of 1,000 digits; blends: 24.0% (`--epochs 30`)."
    was_ru = "Судья уверен в 89.1% из 1,000 цифр; смеси: 24.0% (`--epochs 30`)."
    now = "The judge is sure of 90.6% of 1,000 digits; blends: 27.2% (`--epochs 30`)."
    assert E.renumbered(was_en, was_ru, now) == "Судья уверен в 90.6% из 1,000 цифр; смеси: 27.2% (`--epochs 30`)."
    assert E.renumbered(was_en, was_ru, now.replace("sure", "certain")) is None
    assert E.renumbered("| 2 | 2 |", "| 2 | 2 |", "| 2 | 3 |") == "| 2 | 3 |"  # same order: k-th number to k-th
    assert E.renumbered("a 2 and a 5, 2", "5 и 2, 2", "a 2 and a 5, 3") is None  # reordered, and 2 became 2 and 3
    assert E.renumbered(was_en, "Судья уверен в 89.1% цифр", now) is None  # the translation lost a number
