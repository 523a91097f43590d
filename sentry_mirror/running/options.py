"""The command line's shared options, each defined once and stacked onto commands as decorators.

--db and -c/--config are read from SENTRY_MIRROR_DB and SENTRY_MIRROR_CONFIG by click itself. The
server options (--url, --org, --token) are not: their environment variables rank below the config
file and above ~/.sentryclirc, so `config.resolve` reads them, and their help only names them.
"""

from __future__ import annotations

import functools

import click

from ..errors import ConfigError
from .defaults import DEFAULT_DB, DEFAULT_URL, ORG_ENV_VARS, TOKEN_ENV_VARS, URL_ENV_VARS, store_path

SCALES = ["tiny", "small", "medium", "large", "eight", "wide"]  # the emulator's (emulator.world.SCALES), without importing it


def _env(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def source_options(func):
    """--url, --org and --token: one source given on the command line instead of a config file."""
    func = click.option("--token", "--auth-token", "token", help="Auth token (sentry-cli calls it --auth-token) with org:read, project:read and event:read scopes "
                                        f"[env: {_env(TOKEN_ENV_VARS)}; with a config file, each source's "
                                        "token_env].")(func)
    func = click.option("--org", help=f"Organization slug [env: {_env(ORG_ENV_VARS)}].")(func)
    return click.option("--url", help="Sentry base URL, e.g. https://sentry.io or https://de.sentry.io "
                                      f"[env: {_env(URL_ENV_VARS)}; default: {DEFAULT_URL}].")(func)


def config_option(help: str = "A TOML config file listing sources (see config.example.toml)."):
    """-c/--config; `help` says what the command takes from the file."""
    return click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
                        envvar="SENTRY_MIRROR_CONFIG", show_envvar=True, help=help)


def db_option(func):
    return click.option("--db", envvar="SENTRY_MIRROR_DB", show_envvar=True, type=click.Path(dir_okay=False),
                        help=f"The DuckDB store file [default: {DEFAULT_DB}, or the config's db].")(func)


def store_options(func):
    """--db, and -c/--config for a reader: the store is the flag's (or SENTRY_MIRROR_DB), else the
    config file's `db` (only that key is read: a reader needs no token), else the default.
    A bad config file raises ConfigError: the command's `handle_errors` must sit above this."""

    @functools.wraps(func)
    def wrapper(*args, db=None, config_path=None, **kwargs):
        return func(*args, db=reader_db(db, config_path), **kwargs)

    wrapper = config_option("A config file: its db is the store, unless --db is given.")(wrapper)
    return db_option(wrapper)


def reader_db(db: str | None, config_path: str | None) -> str:
    """A reader's store: as the writer's (config.store_path), reading only the file's `db`."""
    data: dict = {}
    if config_path and not db:
        from .config import read_config_file  # only with a config file: start-up time

        data, _ = read_config_file(config_path)
        if data.get("db") is not None and not (isinstance(data["db"], str) and data["db"]):
            raise ConfigError(f"{config_path}: db must be a file path (a string)", hint="see config.example.toml")
    return store_path(db, data)


def scope_options(func):
    """--source and --project: the part of a store a reader looks at."""
    func = click.option("--project", help="Only this project (slug).")(func)
    return click.option("--source", help="Only this source (a store mirroring several: its config name).")(func)


def output_options(func):
    """--table/-t, --csv, --tsv, --json, --nl, --no-headers, --format NAME and --wide, handed to the
    command as one `out` (an output.Output); flags that disagree are a ConfigError, so the
    command's `handle_errors` must sit above this."""
    from .output import FORMATS, choose

    @functools.wraps(func)
    def wrapper(*args, table, csv, tsv, json, nl, fmt, no_headers, wide, **kwargs):
        flags = {"table": table, "csv": csv, "tsv": tsv, "json": json, "nl": nl}
        return func(*args, out=choose(flags, fmt, no_headers=no_headers, wide=wide), **kwargs)

    wrapper = click.option("--wide", is_flag=True, help="A table with every column and whole values, "
                                                        "whatever the terminal's width.")(wrapper)
    wrapper = click.option("--format", "fmt", type=click.Choice(FORMATS),
                           help="The output format by name (the long form of the flags above).")(wrapper)
    wrapper = click.option("--no-headers", is_flag=True, help="Leave out the header line (table, CSV, TSV).")(wrapper)
    for flag, names, about in reversed([
            ("table", ("-t", "--table"), "Print a table, fitted to the terminal (the default)."),
            ("csv", ("--csv",), "Print CSV."),
            ("tsv", ("--tsv",), "Print tab-separated values."),
            ("json", ("--json",), "Print a JSON array of objects."),
            ("nl", ("--nl",), "Print newline-delimited JSON: an object a line (for jq, streaming).")]):
        wrapper = click.option(*names, flag, is_flag=True, help=about)(wrapper)
    return wrapper


def json_option(help: str):
    return click.option("--json", "as_json", is_flag=True, help=help)


def verbosity_options(func):
    func = click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors and the final summary.")(func)
    func = click.option("-v", "--verbose", count=True,
                        help="Log each stream's steps and every retry; -vv also every request.")(func)
    return func


def scale_option(help: str):
    return click.option("--scale", default="small", show_default=True, type=click.Choice(SCALES), help=help)


def seed_option(default: int):
    return click.option("--seed", default=default, show_default=True, type=int,
                        help="Seed of the generated organization.")
