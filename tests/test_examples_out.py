"""Examples write where they are told (``--out``, by default under runs/), never into docs/ on their own."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if p.stem != "common")


def tree_digest(folder: Path) -> dict:
    """{relative path: sha256} of every file under folder."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_example_takes_out_and_defaults_under_runs(script):
    source = script.read_text()
    assert "--out" in source or f'cli(main, "{script.stem}")' in source, f"{script.name} has no --out"
    assert "docs/figures" not in source.replace("--out docs/figures", ""), \
        f"{script.name} names docs/figures outside a usage line"


def test_each_lecture_examples_main_defaults_to_runs_examples_name():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import lecture

        for name in lecture.ORDER:
            default = inspect.signature(__import__(name).main).parameters["figures"].default
            assert Path(default) == Path("runs") / "examples" / name, (name, default)
    finally:
        sys.path.remove(str(EXAMPLES))


def test_an_example_run_writes_only_into_its_out_folder(tmp_path):
    """Runs examples/pca.py as a user would, with --out, from the repository root: docs/ stays unchanged."""
    before = tree_digest(ROOT / "docs")
    out = tmp_path / "pca"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    subprocess.run([sys.executable, str(EXAMPLES / "pca.py"), "--out", str(out), "--quick"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)
    assert sorted(p.name for p in out.iterdir()) == ["numbers.json", "pca.png", "pca.svg"]
    assert json.loads((out / "numbers.json").read_text())["pca"]["direction"] == [0.8578, 0.514]
    assert tree_digest(ROOT / "docs") == before


def test_a_lecture_figure_is_saved_as_png_and_svg_and_small_legends_are_refused(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(EXAMPLES))
    try:
        import common
    finally:
        sys.path.remove(str(EXAMPLES))
    fig, ax = plt.subplots()
    ax.plot([0, 1], label="a line")
    ax.legend()  # matplotlib's default, 10 pt
    common.save(fig, tmp_path / "ok.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png", "ok.svg"]
    assert (tmp_path / "ok.svg").read_text().lstrip().startswith("<?xml")
    fig, ax = plt.subplots()
    ax.plot([0, 1], label="a line")
    ax.legend(fontsize=7)
    with pytest.raises(ValueError, match="under 9 pt"):
        common.save(fig, tmp_path / "small.png")
    assert not (tmp_path / "small.png").exists()
