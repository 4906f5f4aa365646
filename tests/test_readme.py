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
