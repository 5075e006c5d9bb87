"""The test suite on every supported Python: ``nox`` (all), ``nox -s tests-3.13`` (one).

``make test`` stays the one-Python command; ``.ci/run`` runs ``make test`` (3.11)
and the 3.12 and 3.13 sessions here. A missing interpreter is an error, not a skip.
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

PYTHONS = ["3.11", "3.12", "3.13"]

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True


def _add_pyenv_versions() -> None:
    # pyenv's shims answer only for the selected version, so put each installed
    # interpreter's own bin directory first on PATH (the newest patch release wins).
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = []
    for version in PYTHONS:
        releases = {
            int(os.path.basename(path).rsplit(".", 1)[1]): os.path.join(path, "bin")
            for path in glob.glob(os.path.join(root, "versions", f"{version}.*"))
            if os.path.basename(path).rsplit(".", 1)[1].isdigit()
        }
        if releases and shutil.which(f"python{version}", path=releases[max(releases)]):
            found.append(releases[max(releases)])
    if found:
        os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_add_pyenv_versions()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Install ``.[test]`` and run pytest (extra arguments go to pytest)."""
    session.install("--quiet", "-e", ".[test]")
    session.run("python", "-m", "pytest", *(session.posargs or ["-q"]))
