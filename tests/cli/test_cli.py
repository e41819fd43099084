"""The `qlik-sso` command line: help everywhere, dispatch to `simulate`, usage errors."""

from __future__ import annotations

import os

import pytest

from qlik_sso_middleware.cli import main


@pytest.mark.parametrize("argv", [[], ["demo"], ["check"], ["serve"], ["simulate"]])
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: qlik-sso")
    if argv == ["simulate"]:
        assert "qlik-sso simulate" in out  # the simulator's own parser answered


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "check", "serve", "simulate"):
        assert command in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["nonsense"])
    assert done.value.code == 2
    with pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 2
    assert main(["demo", "--port", "70000"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err


def test_check_without_any_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("QLIK_SSO_")]:
        monkeypatch.delenv(name)
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "qlik.url: is required" in err and "Traceback" not in err
