"""keep_freed_memory: glibc's allocator asked once per process to keep freed blocks; an opt-out by environment."""

import os
import platform
import subprocess
import sys

import pytest

ASK = "from pyro_vae.memory import keep_freed_memory as k; print(k(), k())"


def answer(**env) -> str:
    done = subprocess.run([sys.executable, "-c", ASK], env={**os.environ, **env}, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_the_settings_once_per_process_and_the_environment_opts_out():
    assert answer() == "True True"
    assert answer(PYRO_VAE_MALLOC="default") == "False False"
