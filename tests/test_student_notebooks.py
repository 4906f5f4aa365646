"""The student editions (notebooks/student.py, ``make student``): no solution left, and each runs up to its exercises.

Each edition is built here from its source notebook. Its code cells before the first placeholder are the
source's code cells before its first solution, unchanged and in the same order, and after the first
placeholder there is no code but placeholders: so an edition runs exactly as far as tests/test_notebooks.py
runs its source, which it executes top to bottom. The English student editions are also executed here for
real, in fast mode; a translated one differs from its English edition only in markdown (tests/test_editions.py)
(``PYRO_VAE_STUDENT_NOTEBOOKS=all`` executes all 60).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
import student  # noqa: E402  (notebooks/student.py: a script, not part of the package)
import test_notebooks as series  # noqa: E402  (its run of a notebook; imported as a module, so not collected twice)
from test_notebooks import kernel_dir  # noqa: E402, F401  (the fixture: the series' kernel)

SOURCES = student.sources()


def _code(cells) -> list[str]:
    return [student.text(cell) for cell in cells if cell["cell_type"] == "code"]


def _before(cells, tag: str) -> list[dict]:
    """The cells before the first one tagged ``tag``."""
    first = next((i for i, cell in enumerate(cells) if tag in student.tags(cell)), len(cells))
    return cells[:first]


@pytest.fixture(scope="module")
def editions(tmp_path_factory) -> dict[Path, dict]:
    out = tmp_path_factory.mktemp("student")
    student.build(out)
    return {source: json.loads((out / source.relative_to(student.NOTEBOOKS)).read_text()) for source in SOURCES}


def test_the_series_has_student_editions():
    assert any(source.parent == student.NOTEBOOKS for source in SOURCES)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(student.NOTEBOOKS)))
def test_solutions_are_tagged(source):
    """A cell after the exercises is a solution (or another prompt); a "Solution" heading is tagged."""
    cells = json.loads(source.read_text())["cells"]
    exercise = len(_before(cells, student.EXERCISE))
    untagged = [student.text(cell)[:60] for cell in cells[exercise + 1:]
                if not {student.SOLUTION, student.EXERCISE} & set(student.tags(cell))]
    untagged += [student.text(cell)[:60] for cell in cells if cell["cell_type"] == "markdown"
                 and re.match(r"#+\s*Solution", student.text(cell)) and student.SOLUTION not in student.tags(cell)]
    assert not untagged, f"{source.name}: tag these cells 'solution' (cell metadata): {untagged}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(student.NOTEBOOKS)))
def test_no_solution_remains(source, editions):
    import nbformat

    edition, cells = editions[source], json.loads(source.read_text())["cells"]
    nbformat.validate(nbformat.reads(json.dumps(edition), as_version=4))
    assert not [cell for cell in edition["cells"] if student.SOLUTION in student.tags(cell)]
    kept = "\n".join(student.text(cell) for cell in edition["cells"])
    solutions = [student.text(cell) for cell in cells if student.SOLUTION in student.tags(cell)]
    assert not [s for s in solutions if s.strip() and s.strip() in kept]
    headings = [student.text(cell) for cell in cells if student.SOLUTION in student.tags(cell)
                and cell["cell_type"] == "markdown" and re.match(r"#+\D*\d", student.text(cell))]
    placeholders = [cell for cell in edition["cells"] if student.PLACEHOLDER in student.tags(cell)]
    assert len(placeholders) == len(headings), "one placeholder per solution"
    assert [student.text(cell) for cell in edition["cells"] if cell["cell_type"] == "markdown"] == \
        [student.text(cell) for cell in cells if cell["cell_type"] == "markdown" and student.SOLUTION not in student.tags(cell)]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(student.NOTEBOOKS)))
def test_a_student_edition_runs_as_far_as_its_source(source, editions):
    """Up to its first placeholder an edition is its source up to the first solution; after it, only placeholders."""
    edition, cells = editions[source]["cells"], json.loads(source.read_text())["cells"]
    assert _code(_before(edition, student.PLACEHOLDER)) == _code(_before(cells, student.SOLUTION))
    after = edition[len(_before(edition, student.PLACEHOLDER)):]
    assert all(student.PLACEHOLDER in student.tags(cell) for cell in after if cell["cell_type"] == "code"), \
        f"{source.name}: code after a solution may use its names: tag it 'solution' too"


@pytest.mark.slow
@pytest.mark.parametrize("source", [s for s in SOURCES if os.environ.get("PYRO_VAE_STUDENT_NOTEBOOKS") == "all"
                                    or s.parent == student.NOTEBOOKS], ids=lambda p: str(p.relative_to(student.NOTEBOOKS)))
def test_a_student_edition_executes(source, editions, kernel_dir, monkeypatch, tmp_path):
    """Executed as tests/test_notebooks.py executes the series: no error, a figure inline, in time."""
    path = tmp_path / "student" / source.name
    student.write(path, editions[source])
    series.test_notebook_runs(path, kernel_dir, monkeypatch, tmp_path)
