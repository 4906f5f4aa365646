"""Pyro's own ELBO tests with ``pyro_vae.elbos`` in place of Pyro's classes: ours fail no test that Pyro's pass.

    python benchmarks/pyro_conformance.py PYRO_CHECKOUT [--validation=on|off] [pytest args...]

PYRO_CHECKOUT is a checkout of the pyro-ppl repository (ideally the tag of the installed pyro-ppl), e.g.
``git -C /path/to/pyro worktree add /tmp/pyro-src 1.9.1``. Its ``tests/infer/test_gradient.py`` and
``tests/infer/test_valid_models.py`` run four times against the *installed* pyro (the test files are copied
to a temporary folder without Pyro's package, so ``import pyro`` does not pick up the checkout's source):

    classes  Pyro's / ours (pyro.infer.Trace_ELBO and TraceMeanField_ELBO replaced before the tests import them)
    mode     validation on (Pyro's test default) / off (``pyro.enable_validation(False)`` around every test)

and prints, per test file and mode, the failures of each and the tests that fail with ours only. Exit status
1 if any test fails with ours only. Not part of the test suite: it needs a Pyro checkout, and on a busy 2-core
machine each of the four runs takes 10-20 minutes (``--validation=on`` or ``off`` runs one mode only).
The same file is the pytest plugin of those runs (``-p pyro_conformance``, driven by the variables below).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

FILES = ("tests/infer/test_gradient.py", "tests/infer/test_valid_models.py")
SUPPORT = ("setup.cfg", "tests/__init__.py", "tests/conftest.py", "tests/common.py",
           "tests/infer/__init__.py", "tests/infer/conftest.py")
SWAP, VALIDATE, REPORT = "PYRO_VAE_SWAP", "PYRO_VAE_VALIDATE", "PYRO_VAE_REPORT"


# ---- the plugin, inside each pytest run ----

def pytest_configure(config):
    if os.environ.get(SWAP) == "1":  # before the test modules run `from pyro.infer import Trace_ELBO`
        import pyro.infer
        import pyro.infer.trace_elbo
        import pyro.infer.trace_mean_field_elbo
        from pyro_vae import elbos
        for module in (pyro.infer, pyro.infer.trace_elbo):
            module.Trace_ELBO = elbos.Trace_ELBO
        for module in (pyro.infer, pyro.infer.trace_mean_field_elbo):
            module.TraceMeanField_ELBO = elbos.TraceMeanField_ELBO


@pytest.fixture(autouse=True)
def _validation_mode():
    """Validation off: runs after Pyro's conftest has switched it on for the test."""
    import pyro
    if os.environ.get(VALIDATE) == "0":
        pyro.enable_validation(False)
    yield


def pytest_runtest_logreport(report):
    if report.failed:  # in setup, call or teardown
        _FAILED.append(report.nodeid)


_FAILED: list[str] = []


def pytest_sessionfinish(session):
    if os.environ.get(REPORT):
        Path(os.environ[REPORT]).write_text(json.dumps(sorted(set(_FAILED))))


# ---- the driver ----

def _run(tests: Path, swap: bool, validate: bool, extra: list[str]) -> tuple[set[str], int]:
    report = tests / f"failed-{int(swap)}{int(validate)}.json"
    env = dict(os.environ, **{SWAP: str(int(swap)), VALIDATE: str(int(validate)), REPORT: str(report),
                              "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(tests),
                                                             os.environ.get("PYTHONPATH", "")])})
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "pyro_conformance", "-p", "no:cacheprovider",
           "--tb=no", "-o", "addopts=", *FILES, *extra]
    done = subprocess.run(cmd, cwd=tests, env=env, capture_output=True, text=True)
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"  {'ours ' if swap else 'pyro '} validation {'on ' if validate else 'off'}: {summary}", flush=True)
    if not report.exists():
        sys.exit(f"pytest did not run (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return set(json.loads(report.read_text())), done.returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    checkout, extra = Path(argv[0]), [a for a in argv[1:] if not a.startswith("--validation=")]
    modes = {"on": (True,), "off": (False,)}.get(next((a.split("=", 1)[1] for a in argv[1:]
                                                       if a.startswith("--validation=")), "both"), (True, False))
    if not (checkout / FILES[0]).exists():
        print(f"{checkout} is not a pyro-ppl checkout: {FILES[0]} is missing", file=sys.stderr)
        return 2
    import pyro
    print(f"installed pyro-ppl {pyro.__version__}; tests from {checkout}")
    regressions = 0
    with tempfile.TemporaryDirectory() as tmp:
        tests = Path(tmp)
        for name in FILES + SUPPORT:
            (tests / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(checkout / name, tests / name)
        for validate in modes:
            theirs, _ = _run(tests, False, validate, extra)
            ours, _ = _run(tests, True, validate, extra)
            for name in FILES:
                a = {t for t in theirs if t.startswith(name)}
                b = {t for t in ours if t.startswith(name)}
                only = sorted(b - a)
                regressions += len(only)
                print(f"{name}, validation {'on' if validate else 'off'}: failures pyro {len(a)}, ours {len(b)}, "
                      f"ours only {len(only)}, pyro only {len(a - b)}")
                for test in only:
                    print(f"    ours only: {test}")
    print("OK: no test fails with ours that passes with Pyro's" if not regressions
          else f"FAIL: {regressions} tests fail with ours only")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
