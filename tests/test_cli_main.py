"""The ``gridcore`` command (console script, ``python -m gridcore``) and the ``python -m gridcore.COMMAND`` forms."""

import importlib
import subprocess
import sys

import pytest

from gridcore.cli.main import COMMANDS, main


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_reaches_its_own_parser(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ") and command in out.splitlines()[0]


def test_listing_names_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, (module, text) in COMMANDS.items():
        assert f"{name:<10} {text}" in out
        assert callable(importlib.import_module(module).main)


@pytest.mark.parametrize("argv", [[], ["nonsense"]])
def test_missing_or_unknown_command_names_the_choices(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "COMMAND" in err and ("train" in err or "required" in err)


@pytest.mark.parametrize("module", ["gridcore.info", "gridcore"])
def test_python_m_info_prints_the_report(module, tmp_path):
    # Not from the source tree: `python -m` would import it instead of the installed package.
    args = [sys.executable, "-m", module] + (["info"] if module == "gridcore" else []) + ["--json"]
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert '"gridcore": ' in out and '"backends": ' in out


def test_arguments_pass_through(tmp_path, capsys):
    assert main(["export", str(tmp_path / "no-run"), str(tmp_path / "net.grc")]) == 1
    assert "no-run" in capsys.readouterr().err
