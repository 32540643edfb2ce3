"""The README's Python example runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs():
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    scope = {}
    exec(compile(code, str(README), "exec"), scope)
    assert scope["grad"].shape == scope["params"].flat.shape
    assert 0 < scope["terms"]["loss"] < 10
