"""The CLI describes itself: every command (the groups' subcommands too) has a one-line summary
and every option its help, the help names the environment variables it reads, `--version` runs as
a subprocess, and the scale choices are the emulator's."""

import subprocess
import sys

import click
import pytest
from helpers import invoke as run

from sentry_mirror.cli import cli


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def test_every_command_and_option_has_help():
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help"
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in ("help",):
                assert param.help, f"{name} --{param.name} has no help"


def all_commands(group=cli, prefix="sentry-mirror"):
    """Every command, the groups' own subcommands included, with the words that call it."""
    yield prefix, group
    for name, command in getattr(group, "commands", {}).items():
        yield from all_commands(command, f"{prefix} {name}")


def test_every_command_has_a_one_line_docstring_and_every_option_help():
    for name, command in all_commands():
        summary = (command.help or "").split("\n\n")[0]
        assert summary.strip() and "\n" not in summary.strip(), f"{name}: no one-line summary first in its docstring"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts[-1]} has no help"


def test_help_shows_env_vars():
    out = run("sync", "--help").output
    assert "SENTRY_AUTH_TOKEN" in out and "SENTRY_ORG" in out and "SENTRY_URL" in out


def test_console_script_runs_as_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "sentry_mirror", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "sentry-mirror, version" in out.stdout


def test_the_scale_choices_are_the_emulators():
    from sentry_mirror.emulator.world import SCALES
    from sentry_mirror.running.options import SCALES as CHOICES

    assert CHOICES == list(SCALES)
