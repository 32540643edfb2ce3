"""``python -m gridcore info``: the report users paste into bug reports."""

import json
import subprocess
import sys

import pytest

from gridcore import backends
from gridcore.cli import info
from gridcore.cli.main import main


def test_command_line_text_report(tmp_path):
    # Not from the source tree: `python -m` would import it instead of the installed package.
    out = subprocess.run([sys.executable, "-m", "gridcore", "info"], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    for line in ("gridcore: ", "numba: ", "model: ", "OPENBLAS_CORETYPE: ", "numpy_blas:",
                 "threading_layer: ", "cache_dir: ", "openmp: ", "available: "):
        assert line in out, line


def test_json_report(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"gridcore", "python", "packages", "cpu", "environment", "numpy_blas", "backends"}
    back = report["backends"]
    assert back["auto"] == back["available"][0]
    for name in backends.BACKEND_NAMES:
        assert back[name]["status"] == "ok"
    assert back["numba"]["threads"] >= 1 and back["numba"]["threading_layer"] in ("omp", "tbb", "workqueue")
    assert isinstance(back["c"]["openmp"], bool)


def test_missing_c_core_says_not_built_and_how_to_build(monkeypatch):
    monkeypatch.setitem(backends._LOADERS, "c", ("gridcore._no_such_module", "CBackend", "build it like so"))
    report = info.collect()
    assert "c" not in report["backends"]["available"]
    status = report["backends"]["c"]["status"]
    assert status.startswith("not built") and "build it like so" in status
    assert "not built" in info.render(report)


def test_unknown_command_is_an_error():
    with pytest.raises(SystemExit):
        main(["nonsense"])


def test_render_nests_sections():
    text = info.render({"a": {"b": None, "c": [1, 2]}, "d": []})
    assert text.splitlines() == ["a:", "  b: unset", "  c: 1, 2", "d: none"]
