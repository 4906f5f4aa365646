"""The README's Python blocks run as written, and what they write opens with ``pyro-vae evaluate``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pyro_vae import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readmes_python_blocks_run_as_written_and_their_run_folder_opens(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    capsys.readouterr()
    assert cli.main(["evaluate", "runs/mine", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test_examples"] == 1000 and report["test_elbo"] < 0



def fenced(text: str) -> list[list[str]]:
    """The lines of each fenced block of a markdown text that has no language (commands and their output)."""
    blocks, current, language = [], None, None
    for line in text.split("\n"):
        if line.startswith("```") and current is None:
            current, language = [], line[3:].strip()
        elif line.startswith("```"):
            blocks += [current] if not language else []
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_the_readmes_command_outputs_are_lines_of_the_checked_pages():
    """The README's topic and IRT outputs are shortened copies of docs/topics.md's and docs/irt.md's, whose
    numbers tests/test_docs_numbers.py checks against the recorded runs: the command and each shown line are
    in the page's fenced blocks ("..." marks what was left out)."""
    shown = {page: block for block in fenced(README.read_text()) for page in ("irt", "topics")
             if block[0].startswith(f"$ pyro-vae {page} ")}
    assert sorted(shown) == ["irt", "topics"]
    for page, (command, *lines) in shown.items():
        on_page = {line for block in fenced((README.parent / "docs" / f"{page}.md").read_text()) for line in block}
        assert command in on_page or command[2:] in on_page, f"docs/{page}.md does not run README's {command!r}"
        missing = [line for line in lines if line != "..." and line not in on_page]
        assert not missing, f"README's output of {command!r} differs from docs/{page}.md's: {missing[:2]}"
