"""The package as users get it: ``python -m build`` makes an sdist and a wheel from it,
offline, and the wheel installs into a fresh venv where the ``gridcore`` command and
the C core it compiled work.

Slow (it compiles the C core once more); ``.ci/run`` runs it after the default suite.
"""

import json
import pathlib
import subprocess
import sys
import tarfile
import zipfile

import pytest

from gridcore.cli.main import COMMANDS
from gridcore.version import __version__

ROOT = pathlib.Path(__file__).resolve().parent.parent
SDIST_FILES = ("python/build_gridcore.py", "csrc/gridcore.h", "csrc/grc_internal.h", "csrc/grc_kernels.inc",
               "csrc/gridcore.c", "csrc/Makefile", "LICENSE", "CITATION.cff", "README.md", "setup.py")

# Run inside the venv, away from the source tree: the installed wheel's C core, against
# the NumPy reference it ships, on a tiny network.
SMOKE = """
import json
import numpy as np
import gridcore
import gridcore.backends.c._gridcore_c as core
from gridcore import get_backend, init_params, reference
params = init_params(8, 3, seed=1)
inputs = np.random.default_rng(0).standard_normal((2, 5, 3))
got = get_backend("c", threads=1).forward(params, inputs)
want = reference.forward(params, inputs)
print(json.dumps({"file": gridcore.__file__, "version": gridcore.__version__, "core": core.__file__,
                  "max_diff": float(np.max(np.abs(got.u - want.u))), "u_scale": float(np.max(np.abs(want.u)))}))
"""


def _run(args, **kw):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900, **kw)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist and wheel of the source tree, the wheel built from the sdist, without downloads."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT])
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return sdists[0], wheels[0]


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory):
    """A fresh venv (seeing the system's numpy and friends) with the wheel installed."""
    where = tmp_path_factory.mktemp("venv") / "v"
    _run([sys.executable, "-m", "venv", "--system-site-packages", where])
    _run([where / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-deps", "--no-cache-dir",
          dist[1]])
    return where


@pytest.mark.slow
def test_sdist_holds_what_the_wheel_build_needs(dist):
    sdist, _ = dist
    assert sdist.name == f"gridcore-{__version__}.tar.gz"
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = [f for f in SDIST_FILES if f not in names]
    assert not missing, f"not in the sdist: {missing}"


@pytest.mark.slow
def test_wheel_holds_the_c_core_and_the_metadata(dist):
    _, wheel = dist
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        meta = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        scripts = whl.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert any(n.startswith("gridcore/backends/c/_gridcore_c") and n.endswith(".so") for n in names), names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert f"Version: {__version__}" in meta and "License-Expression: MIT" in meta
    assert "Author: gridcore developers" in meta and "Classifier: " in meta and "Project-URL: " in meta
    assert "gridcore = gridcore.cli.main:main" in scripts


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_c_core(venv, tmp_path):
    got = json.loads(_run([venv / "bin" / "python", "-c", SMOKE], cwd=tmp_path))
    assert got["file"].startswith(str(venv)), "imported gridcore from outside the venv"
    assert got["core"].startswith(str(venv)) and got["version"] == __version__
    assert got["u_scale"] > 0 and got["max_diff"] < 1e-12


@pytest.mark.slow
def test_console_script_in_a_fresh_venv(venv, tmp_path):
    report = json.loads(_run([venv / "bin" / "gridcore", "info", "--json"], cwd=tmp_path))
    assert report["gridcore"] == __version__ and report["backends"]["c"]["status"] == "ok"
    usage = _run([venv / "bin" / "gridcore", "--help"], cwd=tmp_path)
    assert all(name in usage for name in COMMANDS)
    assert "--preset" in _run([venv / "bin" / "gridcore", "train", "--help"], cwd=tmp_path)
    assert "gridcore:" in _run([venv / "bin" / "python", "-m", "gridcore.info"], cwd=tmp_path)
