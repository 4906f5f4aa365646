"""Student editions of the notebooks: the worked solutions taken out, an empty cell left for each exercise.

    .venv/bin/python notebooks/student.py      (or `make student`) writes notebooks/student/

A notebook marks its exercise prompts with the cell tag ``exercise`` and every cell of a worked solution
(its heading included) with the tag ``solution``. The student edition keeps every other cell as it is and
puts, where each solution was, one code cell tagged ``placeholder``: "# Exercise N: your code here", N read
from the solution's heading ("### Solution 2", which starts a solution), else counted. Every notebook under notebooks/
gets one (the translated editions too), at the same path under notebooks/student/.

The editions are generated, not committed: each is a pure function of its source notebook, so a committed
copy could only fall behind it. tests/test_student_notebooks.py builds them and checks that no solution
remains and that each runs up to its exercises.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent
STUDENT = NOTEBOOKS / "student"
SOLUTION, EXERCISE, PLACEHOLDER = "solution", "exercise", "placeholder"


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def placeholder(number: int, position: int) -> dict:
    """The empty code cell a student writes exercise ``number`` into, as cell ``position`` of the edition."""
    return {"cell_type": "code", "execution_count": None, "id": f"placeholder-{position}",
            "metadata": {"tags": [PLACEHOLDER]}, "outputs": [],
            "source": [f"# Exercise {number}: your code here\n"]}


def student_edition(notebook: dict) -> dict:
    """``notebook`` without its ``solution`` cells, one placeholder cell for each run of them."""
    edition = copy.deepcopy(notebook)
    cells, count, inside = [], 0, False
    for cell in edition["cells"]:
        if SOLUTION not in tags(cell):
            cells.append(cell)
            inside = False
            continue
        heading = re.match(r"#+\D*(\d+)", text(cell)) if cell["cell_type"] == "markdown" else None
        if heading or not inside:  # a solution starts: its heading ("### Solution 2") gives the number
            count = int(heading.group(1)) if heading else count + 1
            cells.append(placeholder(count, len(cells)))
        inside = True
    edition["cells"] = cells
    edition["metadata"]["pyro_vae"] = {"edition": "student"}
    return edition


def sources() -> list[Path]:
    """Every notebook under notebooks/, the student editions and Jupyter's checkpoints excepted."""
    return sorted(path for path in NOTEBOOKS.rglob("*.ipynb")
                  if STUDENT not in path.parents and ".ipynb_checkpoints" not in path.parts)


def write(path: Path, notebook: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def build(out: Path = STUDENT) -> list[Path]:
    """Writes the student edition of every notebook under ``out``; returns their paths."""
    written = []
    for source in sources():
        target = out / source.relative_to(NOTEBOOKS)
        write(target, student_edition(json.loads(source.read_text(encoding="utf-8"))))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STUDENT, help="folder for the editions (default notebooks/student)")
    args = parser.parse_args(argv)
    for path in build(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
