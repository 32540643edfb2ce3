"""The README's Python example runs as written (in a fresh directory that sees the committed runs)."""

import ast
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_readme_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    tree = ast.parse(re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1))
    last = tree.body.pop()                             # the table, shown as the value of the last line
    os.symlink(ROOT / "docs", tmp_path / "docs")
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(tree, str(README), "exec"), scope)
    table = eval(compile(ast.Expression(last.value), str(README), "eval"), scope)
    rec = scope["rec"]
    assert rec.rates.shape == (100, 500, 100) and rec.positions.shape == (100, 500, 2)
    assert os.path.getsize("ratemaps.png") > 100_000
    assert len(table) == 100 and {"type", "grid60", "grid60_threshold", "border"} <= set(table.columns)
    assert table["spatial_information_passes"].sum() > 50      # the trained network's maps are spatial
