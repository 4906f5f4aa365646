"""Exam data: a 0/1 answer matrix (students × items) with a mask of the answers actually given.

``load(name)`` is the one entry point: ``lsat`` (shipped), a CSV answer matrix, or py-irt JSON lines.

    CSV    rows are students, columns are items, cells 0 (wrong), 1 (right) or empty (missing); an
           optional header row names the items, and a first column headed subject_id / student / id
           names the students.
    JSONL  (.jsonlines, .jsonl or .json) one student a line, as py-irt reads it:
           {"subject_id": "s1", "responses": {"q1": 1, "q2": 0}};
           an item absent from a line is missing for that student.

``synthetic(kind, ...)`` draws answers from one of the IRT models with known parameters.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from pyro_vae.errors import UserError

NAMES = ("lsat",)
JSON_LINES = (".jsonlines", ".jsonl", ".json")  # py-irt writes .jsonlines
ID_COLUMNS = ("subject_id", "student", "student_id", "id", "")


@dataclass(frozen=True)
class ExamData:
    """answers (N, J) float 0/1 with 0 where missing; mask (N, J) bool, True where an answer was given."""

    name: str
    answers: torch.Tensor
    mask: torch.Tensor
    items: list[str]
    students: list[str]
    truth: dict = field(default_factory=dict)  # known parameters of synthetic data

    @property
    def shape(self) -> tuple[int, int]:
        """(students, items)."""
        return tuple(self.answers.shape)

    def proportions(self) -> torch.Tensor:
        """Per-item proportion correct among the students who answered it."""
        return (self.answers * self.mask).sum(0) / self.mask.sum(0).clamp(min=1)

    def tensors(self, with_index: bool = False) -> tuple[torch.Tensor, ...]:
        """(answers, mask) or (answers, mask, student index): the rows ``fit`` batches together."""
        index = (torch.arange(self.answers.shape[0], device=self.answers.device),) if with_index else ()
        return (self.answers, self.mask, *index)


def load(name: str) -> ExamData:
    """``lsat``, or a path to a ``.csv`` answer matrix or a py-irt ``.jsonlines`` file; bad input is a UserError."""
    if name == "lsat":
        return lsat()
    path = Path(name)
    if not path.is_file():
        raise UserError(f"unknown exam data {name!r}: use --data lsat, or a path to a .csv answer matrix "
                        "(0/1/empty) or py-irt .jsonlines file")
    if path.suffix.lower() in JSON_LINES:
        return _from_jsonl(path)
    return _from_csv(path)


def lsat() -> ExamData:
    """LSAT Section 6 (Bock & Lieberman 1970): 1,000 examinees, 5 items, expanded from 32 pattern counts."""
    text = resources.files("pyro_vae").joinpath("resources/lsat.csv").read_text()
    rows = [line.split(",") for line in text.splitlines() if line[:1] in ("0", "1")]
    patterns = np.array([[int(c) for c in pattern] for pattern, _ in rows], dtype=np.float32)
    answers = np.repeat(patterns, [int(count) for _, count in rows], axis=0)
    return _exam("lsat", answers, np.ones_like(answers, dtype=bool),
                 [f"item{j + 1}" for j in range(answers.shape[1])], None)


def synthetic(kind: str = "2pl", num_students: int = 5000, num_items: int = 50, missing: float = 0.2,
              seed: int = 0) -> ExamData:
    """Answers drawn from model ``kind`` with known abilities and item parameters; a ``missing``
    fraction of answers is removed completely at random. ``truth`` holds the parameters drawn."""
    rng = np.random.default_rng(seed)
    ability = rng.normal(size=num_students)
    truth = {}
    if kind == "lecture":
        truth["mu"] = 1.0
        truth["beta"] = rng.lognormal(0.0, 0.5, num_items)
        ability = ability + truth["mu"]
        logits = ability[:, None] * truth["beta"]
    else:
        truth["difficulty"] = rng.normal(size=num_items)
        truth["discrimination"] = rng.lognormal(0.0, 0.3, num_items) if kind == "2pl" else np.ones(num_items)
        logits = truth["discrimination"] * (ability[:, None] - truth["difficulty"])
        if kind == "1pl":
            del truth["discrimination"]
    truth["ability"] = ability
    answers = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    mask = rng.random(logits.shape) >= missing
    return _exam(f"synthetic-{kind}", answers * mask, mask, [f"item{j + 1}" for j in range(num_items)], None,
                 {k: torch.as_tensor(v, dtype=torch.float32) for k, v in truth.items()})


def _exam(name, answers, mask, items, students, truth=None) -> ExamData:
    n = answers.shape[0]
    if n == 0 or answers.shape[1] == 0:
        raise UserError(f"{name}: no answers found (shape {answers.shape}): need students as rows and items as columns")
    if students is None:
        students = [str(i + 1) for i in range(n)]
    return ExamData(name, torch.as_tensor(answers, dtype=torch.float32), torch.as_tensor(mask, dtype=torch.bool),
                    list(items), list(students), truth or {})


def _answer(value, where: str) -> float:
    """0 or 1 → 0./1., empty/None → nan (missing); anything else is the user's error."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return np.nan
    value = value.strip() if isinstance(value, str) else value
    if value in ("0", "1") or (not isinstance(value, str) and value in (0, 1)):
        return float(value)
    raise UserError(f"{where}: answer {value!r} is not 0, 1 or empty; mark wrong answers 0, right answers 1 "
                    "and leave missing ones empty")


def _from_csv(path: Path) -> ExamData:
    try:
        with open(path, newline="") as f:
            rows = [row for row in csv.reader(f) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"could not read {str(path)!r} as CSV ({error})") from None
    if not rows:
        raise UserError(f"{str(path)!r} is empty: give one row of 0/1/empty answers per student")
    is_answer = lambda cell: cell.strip() in ("", "0", "1")  # noqa: E731
    header = None if all(is_answer(c) for c in rows[0]) else rows.pop(0)
    with_ids = header is not None and header[0].strip().lower() in ID_COLUMNS
    items = header[1:] if with_ids else header or [f"item{j + 1}" for j in range(len(rows[0]) if rows else 0)]
    students = [row[0] for row in rows] if with_ids else None
    values = np.full((len(rows), len(items)), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        cells = row[1:] if with_ids else row
        if len(cells) != len(items):
            raise UserError(f"{path.name}: line {i + 1 + (header is not None)} has {len(cells)} answers, "
                            f"expected {len(items)} (one per item); leave missing answers empty, e.g. 1,,0")
        for j, cell in enumerate(cells):
            values[i, j] = _answer(cell, f"{path.name}: line {i + 1 + (header is not None)}, item {items[j]!r}")
    mask = ~np.isnan(values)
    return _exam(path.name, np.nan_to_num(values), mask, [str(c).strip() for c in items], students)


def _from_jsonl(path: Path) -> ExamData:
    students, responses = [], []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"could not read {str(path)!r} ({error})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path.name}: line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("responses"), dict):
            raise UserError(f"{path.name}: line {number} needs the py-irt form "
                            '{"subject_id": ..., "responses": {"item": 0 or 1, ...}}')
        students.append(str(record.get("subject_id", len(students) + 1)))
        responses.append({str(k): _answer(v, f"{path.name}: line {number}, item {k!r}")
                          for k, v in record["responses"].items()})
    items = list(dict.fromkeys(k for r in responses for k in r))
    values = np.array([[r.get(item, np.nan) for item in items] for r in responses], dtype=np.float32)
    values = values.reshape(len(responses), len(items))
    mask = ~np.isnan(values)
    return _exam(path.name, np.nan_to_num(values), mask, items, students)
