"""docs/tutorial.md runs as written: its Python blocks in order, in a fresh directory, the training
shortened through its documented ``iterations=`` option; its five lines are the README's."""

import os
import pathlib
import re
import warnings

import pytest
from matplotlib.figure import Figure

ROOT = pathlib.Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
TRAIN = 'make_config("quick", arena="square")'


def blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def test_the_five_lines_are_the_readmes():
    first = blocks(TUTORIAL)[0]
    assert len(first.strip().splitlines()) == 5
    assert first in blocks(ROOT / "README.md")          # README's example runs in tests/test_readme.py


def test_tutorial_runs(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    pytest.importorskip("ratinabox")
    code = blocks(TUTORIAL)[1:]
    assert sum(b.count(TRAIN) for b in code) == 1
    monkeypatch.chdir(tmp_path)
    scope = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)    # a short training's rate maps may warn about coverage
        for b in code:
            b = b.replace(TRAIN, TRAIN[:-1] + ", iterations=3)")
            exec(compile(b, str(TUTORIAL), "exec"), scope)
    run, rec, table, real = scope["run"], scope["rec"], scope["table"], scope["real"]
    assert run.final_iteration == 3 and os.path.exists("runs/square-quick/final.npz")
    n = run.params.n_units
    assert rec.rates.shape == (100, run.config.task.n_steps, n) and scope["maps"].shape == (n, 20, 20)
    assert isinstance(scope["fig"], Figure) and os.path.getsize("four_units.png") > 10_000
    assert len(table) == n and len(scope["real_table"]) == n
    assert real.n_trials == 1 and real.n_steps > 10_000
    assert 0 <= scope["same"] <= 1
