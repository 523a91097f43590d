"""The `sentry-mirror` command line: open the store, load credentials, sync, report. Nothing else."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
import duckdb

from . import __version__, redact
from .config import DEFAULT_DB, Config, Source, resolve
from .errors import PARTIAL_EXIT, Interrupted, MirrorError
from .runner import describe_result, stop_on_signals, sync_all
from .store import open_readonly, require_store

CONTEXT = {"help_option_names": ["-h", "--help"]}


def handle_errors(func):
    """User errors become one line on stderr and a non-zero exit; bugs keep their traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Interrupted as exc:
            click.echo(f"sentry-mirror: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (MirrorError, duckdb.IOException, duckdb.SerializationException) as exc:
            if not isinstance(exc, MirrorError):  # a store file damaged in its middle, a full disk
                from .errors import StoreError
                from .store import io_hint

                exc = StoreError(f"the store failed: {str(exc).strip().splitlines()[0]}", hint=io_hint(exc))
            click.echo(f"sentry-mirror: error: {redact.scrub(str(exc))}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet or not verbose else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    redact.install_log_filter()
    if verbose < 2:
        logging.getLogger("urllib3").setLevel(logging.WARNING)


def db_option(func):
    return click.option("--db", envvar="SENTRY_MIRROR_DB", show_envvar=True, type=click.Path(dir_okay=False),
                        help=f"The DuckDB store file [default: {DEFAULT_DB}, or the config's db].")(func)


def store_options(func):
    """--db, and -c/--config for a reader: the store is the flag's (or SENTRY_MIRROR_DB), else the
    config file's `db` (only that key is read: a reader needs no token), else the default."""

    @handle_errors  # a bad config file is the user's error too
    @functools.wraps(func)
    def wrapper(*args, db=None, config_path=None, **kwargs):
        return func(*args, db=reader_db(db, config_path), **kwargs)

    wrapper = click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
                           envvar="SENTRY_MIRROR_CONFIG", show_envvar=True,
                           help="A config file: its db is the store, unless --db is given.")(wrapper)
    return db_option(wrapper)


def reader_db(db: str | None, config_path: str | None) -> str:
    if db:
        return db
    if config_path:
        from .config import file_db, read_config_file
        from .errors import ConfigError

        data, _ = read_config_file(config_path)
        if data.get("db") is not None and not (isinstance(data["db"], str) and data["db"]):
            raise ConfigError(f"{config_path}: db must be a file path (a string)", hint="see config.example.toml")
        return file_db(data) or DEFAULT_DB
    return DEFAULT_DB


def output_option(func):
    return click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                        show_default=True, help="Output format.")(func)


TABLE_TEXT = 60  # a table on a terminal shortens longer text (titles); CSV and JSON keep it whole


def print_frame(frame, fmt: str) -> None:
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        # default_handler: a UUID (or any other value JSON has no type for) as its text
        click.echo(frame.to_json(orient="records", date_format="iso", indent=2, default_handler=str))
    else:
        import pandas as pd

        texts = [c for c in frame.columns if not (pd.api.types.is_numeric_dtype(frame[c])
                                                  or pd.api.types.is_datetime64_any_dtype(frame[c]))]
        shown = frame.assign(**{c: frame[c].map(_shortened) for c in texts})
        click.echo(shown.to_string(index=False, na_rep="") if len(frame) else "(no rows)")


def _shortened(value) -> str:
    """A missing value as blank (not None, NaN or <NA>), long text cut for the terminal."""
    import pandas as pd

    try:
        if value is None or bool(pd.isna(value)):
            return ""
    except (TypeError, ValueError):  # a list or an array: never missing as a whole
        pass
    text = str(value)
    return text if len(text) <= TABLE_TEXT else text[:TABLE_TEXT - 1] + "…"


def verbosity_options(func):
    func = click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors and the final summary.")(func)
    func = click.option("-v", "--verbose", count=True,
                        help="Log each stream's steps and every retry; -vv also every request.")(func)
    return func


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="sentry-mirror")
def cli():
    """Keep a Sentry organization's error data in one local DuckDB file and query it offline."""


@cli.command(context_settings=CONTEXT)
@click.option("--url", help="Sentry base URL, e.g. https://sentry.io or https://de.sentry.io "
                            "[env: SENTRY_URL, SENTRY_HOST; default: https://sentry.io].")
@click.option("--org", help="Organization slug [env: SENTRY_ORG].")
@click.option("--token", help="Auth token with org:read, project:read and event:read scopes "
                              "[env: SENTRY_AUTH_TOKEN, SENTRY_TOKEN; with a config file, each source's token_env].")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), envvar="SENTRY_MIRROR_CONFIG",
              show_envvar=True, help="A TOML config file listing sources (see config.example.toml).")
@click.option("--source", "source_names", multiple=True, help="Sync only the named config source (repeatable).")
@click.option("--full", is_flag=True, help="Re-walk everything instead of only what changed.")
@click.option("--rebind", is_flag=True, help="Accept a new URL for the server a source mirrors (it moved; its "
                                             "organization id must stay the same).")
@click.option("--ca-bundle", type=click.Path(exists=True),
              help="CA bundle (a PEM file, or a folder of certificates) to verify a self-hosted server's TLS "
                   "certificate (REQUESTS_CA_BUNDLE works too).")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (never do this over the internet).")
@click.option("--wait", is_flag=True, help="If another sync (or the scheduler) is writing the store, wait for it "
                                           "instead of exiting.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary (per source and stream).")
@db_option
@verbosity_options
@handle_errors
def sync(url, org, token, config_path, source_names, full, rebind, ca_bundle, insecure, wait, as_json, db, quiet, verbose):
    """Fetch what changed in Sentry into the store (resumable; safe to interrupt).

    Exit status: 0 all stored; 6 some streams failed and the rest were stored; 2 bad configuration;
    3 store problem; 4 API error; 5 token refused; 130 interrupted.
    """
    setup_logging(verbose, quiet)
    from .progress import terminal_progress

    try:  # with --json, every failure is a JSON object too (a cron job keeps it as its record)
        config = resolve(config_path=config_path, url=url, org=org, token=token, db=db, source_names=source_names)
        apply_tls_options(config, ca_bundle, insecure)
        with stop_on_signals() as stop, terminal_progress(quiet or as_json) as (progress, observer):
            results = sync_all(config, full=full, rebind=rebind, stop=stop, progress=progress, wait=wait, observer=observer)
    except MirrorError as exc:
        if as_json:
            click.echo(json.dumps({"status": "failed", "exit_code": exc.exit_code,
                                   "error": redact.scrub(str(exc))}, indent=2))
        raise
    partial = any(r.status in ("partial", "failed") for r in results)
    if as_json:
        click.echo(json.dumps({"status": "partial" if partial else "ok", "exit_code": PARTIAL_EXIT if partial else 0,
                               "sources": [summary(r) for r in results]}, indent=2, default=str))
    else:
        for result in results:
            click.echo(describe_result(result))
    if partial:
        sys.exit(PARTIAL_EXIT)


def summary(result) -> dict:
    return {"source": result.source, "status": result.status, "seconds": round(result.seconds, 3),
            "requests": result.requests, "retries": result.retries, "rate_limited": result.rate_limited,
            "rows": result.rows, "errors": result.errors, "notes": result.notes, "streams": result.streams}


def apply_tls_options(config: Config, ca_bundle: str | None, insecure: bool) -> None:
    from .errors import ConfigError

    if ca_bundle and insecure:
        raise ConfigError("--ca-bundle and --insecure contradict each other", hint="pass one of them")
    for source in config.sources:
        if insecure:
            source.verify = False
        elif ca_bundle:
            source.verify = ca_bundle
        if source.verify is False:
            logging.getLogger("sentry_mirror").warning(
                "TLS verification is off for %s: the token could be read by anyone on the path", source.url)


@cli.command(context_settings=CONTEXT)
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), envvar="SENTRY_MIRROR_CONFIG",
              show_envvar=True, help="A TOML config file listing sources; its [schedule] gives cron or every_minutes.")
@click.option("--url", help="Sentry base URL [env: SENTRY_URL, SENTRY_HOST].")
@click.option("--org", help="Organization slug [env: SENTRY_ORG].")
@click.option("--token", help="Auth token [env: SENTRY_AUTH_TOKEN, SENTRY_TOKEN].")
@click.option("--cron", help="When to sync, as a crontab line, e.g. '0 3 * * *' (in --timezone).")
@click.option("--every", "every_minutes", type=float, help="Sync every N minutes instead of on a cron line.")
@click.option("--timezone", "tz", help="Time zone of the cron line, e.g. Europe/Berlin [default: the config's, or UTC].")
@click.option("--now/--no-now", "run_now", default=True, show_default=True, help="Also sync once right away.")
@db_option
@verbosity_options
@handle_errors
def schedule(config_path, url, org, token, cron, every_minutes, tz, run_now, db, quiet, verbose):
    """Keep syncing on a schedule until stopped (one sync at a time; SIGTERM finishes the page in hand)."""
    from .scheduler import make_trigger, run_scheduler, stamp_log_lines

    setup_logging(verbose, quiet)
    stamp_log_lines()
    config = resolve(config_path=config_path, url=url, org=org, token=token, db=db)
    if token:
        logging.getLogger("sentry_mirror").warning(
            "--token stays visible to every user of this machine (ps) while the scheduler runs; "
            "prefer SENTRY_AUTH_TOKEN, or token_env in a config file")
    when = config.schedule
    if cron or every_minutes is not None:  # a flag replaces the file's timing, not adds to it
        when = {"cron": cron, "every_minutes": every_minutes}
    trigger = make_trigger(when.get("cron"), when.get("every_minutes"), tz or config.schedule.get("timezone"))

    def report(message: str, *, failure: bool = False) -> None:
        # A daemon's lines go to journald, a log file or a mail: each with its time, never a token.
        if failure or not quiet:
            click.echo(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S}Z {redact.scrub(message)}", err=True)

    run_scheduler(config, trigger, run_now=run_now, report=report)


@cli.command(context_settings=CONTEXT)
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@handle_errors
def status(db, as_json):
    """Show each source's last sync, lag, rows, errors, pending resumes and the next scheduled run.

    Exit status 1 when no source has synced successfully yet.
    """
    from .report import store_status

    path = db
    con = open_readonly(path)
    try:
        info = store_status(con, path)
    finally:
        con.close()
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        click.echo(format_status(path, info))
    if not any(src.get("last_success") for src in info["sources"].values()):
        sys.exit(1)


def _when(moment) -> str:
    """A stored time to the second (they are kept to the microsecond), or '-'."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if hasattr(moment, "strftime") else (str(moment) if moment else "-")


def _count(n, one: str, many: str | None = None) -> str:
    n = n or 0
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{int(seconds)}s ago"


def format_status(path: str, info: dict) -> str:
    lines = [f"store: {path}"]
    if not info["sources"]:
        return f"store {path} has never synced: run 'sentry-mirror sync'"
    scheduler = info.get("scheduler")
    if scheduler:
        lines.append(f"scheduler: running (process {scheduler.get('pid')}), next run {scheduler.get('next_run') or '?'}")
    for name, src in info["sources"].items():
        if src["last_success"]:
            lines.append(f"source {name}: last successful sync {_when(src['last_success'])} UTC "
                         f"({_ago(src['lag_seconds'])})")
        else:
            lines.append(f"source {name}: no successful sync yet")
        run = src.get("last_run")
        if run:
            figures = (f"{_count(run['requests'], 'request')}, {_count(run['retries'], 'retry', 'retries')}, "
                       f"{run['rate_limited'] or 0} 429s")
            took = f", {run['seconds']:.1f}s" if run.get("seconds") is not None else ""
            lines.append(f"  last run: {_when(run['started_at'])} UTC, {run['status']}{took}, {figures}")
            if run.get("error"):
                lines.append(f"  last error: {run['error']}")
        if src.get("clock"):
            lines.append(f"  clock: {src['clock']}")
        lines.append("  rows: " + ", ".join(f"{t} {n:,}" for t, n in src["rows"].items()))
        if src.get("issues_by_status"):
            lines.append("  issues by status: " + ", ".join(f"{k} {v:,}" for k, v in src["issues_by_status"].items()))
        for stream in src.get("streams", []):
            extra = ""
            if stream.get("last_rows") is not None:
                extra = f", last run {_count(stream['last_rows'], 'row')} in {_count(stream['last_requests'], 'request')}"
            if stream.get("last_error"):
                extra += f", FAILED: {stream['last_error'][:120]}"
            resume = "  (interrupted: will resume)" if stream["resume_pending"] else ""
            if stream["updated_at"]:
                updated = f"updated {_when(stream['updated_at'])}"
            else:  # streams that keep no cursor (stats start from their latest stored bucket)
                updated = "no cursor" if stream.get("last_rows") is not None else "not yet stored"
            lines.append(f"  {stream['stream']:<18} {updated}{extra}{resume}")
    return "\n".join(lines)


@cli.command(context_settings=CONTEXT)
@click.argument("sql")
@store_options
@output_option
@handle_errors
def query(sql, db, fmt):
    """Run a read-only SQL query against the store."""
    from .report import run_query

    print_frame(run_query(open_readonly(db), sql), fmt)


@cli.command(context_settings=CONTEXT)
@click.option("--since", help="Issues last seen at or after this: YYYY-MM-DD, an ISO time, or a span like 7d or 24h.")
@click.option("--until", help="Issues first seen before this (same forms as --since).")
@click.option("--status", type=click.Choice(["unresolved", "resolved", "ignored", "deleted"]), help="Only this status.")
@click.option("--source", help="Only this source (a store mirroring several: its config name).")
@click.option("--project", help="Only this project (slug).")
@click.option("--sort", type=click.Choice(["events", "users", "last-seen", "first-seen"]), default="events",
              show_default=True, help="Order of the list.")
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True, help="How many issues to list.")
@store_options
@output_option
@handle_errors
def issues(since, until, status, source, project, sort, limit, db, fmt):
    """List stored issues with their events and affected users, offline."""
    from .report import list_issues, parse_when

    con = require_store(open_readonly(db), db)
    print_frame(list_issues(con, since=parse_when(since, "--since"), until=parse_when(until, "--until"),
                            status=status, project=project, sort=sort, limit=limit, source=source), fmt)


@cli.command(context_settings=CONTEXT)
@click.argument("name", metavar="REPORT", type=click.Choice(["trends", "regressions", "users", "top"]))
@click.option("--source", help="Only this source (a store mirroring several: its config name).")
@click.option("--project", help="Only this project (slug).")
@click.option("--environment", help="Only events of this environment (trends, users, top).")
@click.option("--release", help="Only this release (its version).")
@click.option("--since", help="From this time on: YYYY-MM-DD, an ISO time, or a span back from now (7d, 24h).")
@click.option("--until", help="Before this time (same forms as --since).")
@click.option("--by", type=click.Choice(["hour", "day", "week"]), default=None,
              help="Bucket size of the trends report [default: day]; the other reports have none.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=50, show_default=True,
              help="At most this many rows (trends: the latest this many buckets, each with every project).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Also draw the report into this PNG file: a line per project, or bars.")
@store_options
@output_option
@handle_errors
def report(name, source, project, environment, release, since, until, by, limit, plot_path, db, fmt):
    """Report offline: error trends, release regressions, affected users, top issues.

    \b
    trends       events per hour/day/week and project, and the change from a week before
    regressions  per release: new and regressed issues, events, users, against the previous one
    users        distinct users per issue, beside Sentry's userCount
    top          the issues with the most events, their users and time to resolve
    """
    from .analytics import Filters, plot_report, run_report
    from .report import parse_when

    from .errors import ConfigError

    if by is not None and name != "trends":
        raise ConfigError(f"the {name} report has no --by", hint="--by sets the buckets of 'report trends'")
    if plot_path and not plot_path.lower().endswith(".png"):
        raise ConfigError(f"--plot writes a PNG: {plot_path} does not end in .png", hint="e.g. --plot trends.png")
    by = by or "day"
    filters = Filters(source=source, project=project, environment=environment, release=release,
                      since=parse_when(since, "--since"), until=parse_when(until, "--until"), by=by, limit=limit)
    con = require_store(open_readonly(db), db)
    try:
        frame = run_report(con, name, filters)
    finally:
        con.close()
    if frame.empty:
        from .errors import MirrorError

        raise MirrorError(f"no data for the {name} report with these filters",
                          hint="widen --since/--until, or check --project/--environment/--release")
    if plot_path:
        plot_report(name, frame, plot_path, filters)
        click.echo(f"plot written to {plot_path}", err=True)
    print_frame(frame, fmt)


@cli.group(context_settings=CONTEXT)
def export():
    """Write the store out in a format bigger engines read."""


@export.command("parquet", context_settings=CONTEXT)
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--since", help="Only events (and their details, history and stats) from this time on: "
                              "YYYY-MM-DD, an ISO time, or a span like 30d.")
@store_options
@handle_errors
def export_parquet(directory, since, db):
    """Every table as Parquet (zstd); events and their details partitioned by source, project, month."""
    from .export import export_parquet as write
    from .report import parse_when

    con = require_store(open_readonly(db), db)
    try:
        written = write(con, directory, since=parse_when(since, "--since"))
    finally:
        con.close()
    total = sum(written.values())
    click.echo(f"exported {len(written)} tables, {total:,} rows, to {directory}")


@cli.group(context_settings=CONTEXT)
def config():
    """Check a configuration file and show the settings in effect."""


@config.command("check", context_settings=CONTEXT)
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), envvar="SENTRY_MIRROR_CONFIG",
              show_envvar=True, help="The TOML config file to check (see config.example.toml).")
@click.option("--url", help="Sentry base URL, as for sync [env: SENTRY_URL, SENTRY_HOST].")
@click.option("--org", help="Organization slug, as for sync [env: SENTRY_ORG].")
@click.option("--token", help="Auth token, as for sync [env: SENTRY_AUTH_TOKEN, SENTRY_TOKEN].")
@click.option("--online", is_flag=True, help="Also make one authenticated request per source: token scopes, orgs seen.")
@db_option
@handle_errors
def config_check(config_path, url, org, token, online, db):
    """Validate the config (every wrong key or value, with its line) and print the effective settings."""
    from .config import check_config, read_config_file
    from .configcheck import describe, online_check

    if config_path:
        data, text = read_config_file(config_path)
        problems = check_config(data, text, flag_token=token)
        for problem in problems:
            click.echo(f"sentry-mirror: {config_path}: {problem}", err=True)
        if problems:
            sys.exit(2)
    effective = resolve(config_path=config_path, url=url, org=org, token=token, db=db)
    click.echo(describe(effective))
    if online:
        failures = 0
        for line, ok in online_check(effective):
            click.echo(line if ok else f"sentry-mirror: {line}", err=not ok)
            failures += not ok
        if failures:
            sys.exit(4)
    click.echo("config OK")


@cli.command(context_settings=CONTEXT)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port on 127.0.0.1 (0 = any free port).")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the generated organization.")
@click.option("--scale", default="small", show_default=True, type=click.Choice(["tiny", "small", "medium", "large"]),
              help="How much data to generate.")
@click.option("--token", default=None, help="The token the emulator accepts [default: sntryu_ and 64 zeros, printed].")
@click.option("--rate-limit", type=click.IntRange(min=1), default=None,
              help="Requests per second per token, over all endpoints, before answering 429.")
@click.option("--strict-limits", is_flag=True, default=False,
              help="Also Sentry's per-endpoint limits: project events 60 a minute, one at a time.")
@click.option("--fault", "faults", multiple=True, help="Inject a fault, e.g. 'kind=503,route=*/issues/*,rate=0.2' or 'kind=datefromproxy,offset=-7200' "
                                                   "(repeatable; every kind and key is in the README).")
@click.option("--flavor", type=click.Choice(["sentry", "glitchtip"]), default="sentry", show_default=True,
              help="Answer as Sentry, or with GlitchTip's deviations.")
@click.option("--deletions/--no-deletions", default=False, show_default=True,
              help="Let the clock's advance delete issues too.")
@click.option("--merges/--no-merges", default=False, show_default=True,
              help="Let the clock's advance merge issues too.")
@handle_errors
def emulator(port, seed, scale, token, rate_limit, strict_limits, faults, flavor, deletions, merges):
    """Serve a generated organization through Sentry's API on 127.0.0.1, for trying and testing."""
    from .emulator import parse_spec, run_emulator
    from .errors import ConfigError

    for spec in faults:
        try:
            parse_spec(spec)
        except ValueError as exc:
            raise ConfigError(f"bad --fault {spec!r}: {exc}", hint="e.g. kind=503,route=*/issues/*,rate=0.2") from None
    try:
        run_emulator(port=port, seed=seed, scale=scale, token=token, rate_limit=rate_limit, faults=list(faults),
                     flavor=flavor, deletions=deletions, merges=merges, strict_limits=strict_limits)
    except OSError as exc:  # binding the port: in use, or not ours to take
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
                          hint="pick another --port, or --port 0 for any free one") from None


@cli.command(context_settings=CONTEXT)
@click.option("--db", default="demo.duckdb", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the demo store (replaced on each run; a store the demo did not make is never replaced).")
@click.option("--scale", default="small", show_default=True, type=click.Choice(["tiny", "small", "medium", "large"]),
              help="How much data the emulator generates.")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the generated organization.")
@verbosity_options
@handle_errors
def demo(db, scale, seed, quiet, verbose):
    """Sync from the built-in Sentry emulator into a demo store and summarise it; no account needed."""
    import secrets

    from .emulator import Emulator
    from .report import demo_summary

    setup_logging(verbose, quiet)
    replace_demo_store(db)
    token = "sntryu_" + secrets.token_hex(32)
    # progress lines on a terminal only, as for sync: piped, the demo prints its results alone
    say = (lambda m: None) if quiet or not sys.stderr.isatty() else (lambda m: click.echo(m, err=True))
    with Emulator(seed=seed, scale=scale, token=token) as emu:
        click.echo(f"Started the Sentry API emulator at {emu.url} (organization '{emu.org_slug}', scale {scale}).")
        config = Config(db=db, sources=[Source(name=emu.org_slug, url=emu.url, org=emu.org_slug, token=token)])
        with stop_on_signals() as stop:
            first = sync_all(config, stop=stop, progress=say)[0]
            click.echo(describe_result(first))
            changes = emu.advance(24)
            click.echo(f"The emulator's clock moves on a day: {changes.get('new_events', 0)} new events, "
                       f"{changes.get('new_issues', 0)} new issues, {changes.get('status_changes', 0)} status changes.")
            second = sync_all(config, stop=stop, progress=say)[0]
            click.echo(describe_result(second))
        truth = emu.truth()
    con = open_readonly(db)
    try:
        click.echo("")
        click.echo(demo_summary(con, truth, first, second))
    finally:
        con.close()
    click.echo(f"\nThe store is {db}. Try: sentry-mirror status --db {db}")
    click.echo(f"     or: sentry-mirror report trends --db {db} --by day --plot trends.png")
    click.echo(f"     or: sentry-mirror query --db {db} \"SELECT * FROM release_regressions LIMIT 10\"")


DEMO_MARK = "_demo"  # a table only the demo creates: the one sign that a store is the demo's own


def replace_demo_store(db: str) -> None:
    """The demo starts afresh, but only ever replaces a store it made itself (marked with DEMO_MARK);
    a store synced from a real server, even one on this machine, is never its to replace."""
    from .errors import StoreError
    from .store import Store, check_store_path

    path = Path(db)
    if path.exists():
        check_store_path(db)  # refuses anything that is not a DuckDB file
        con = open_readonly(db, wait=5)
        try:
            mine = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [DEMO_MARK]).fetchone()[0]
            if not mine:  # a demo store from before the mark: the emulator's own organization, only
                with contextlib.suppress(duckdb.Error):
                    mine = con.execute(
                        "SELECT count(*) > 0 AND bool_and(slug = 'acme' AND name = 'Acme Corp' AND "
                        "region_url LIKE 'http://127.0.0.1:%') FROM organizations").fetchone()[0]
        finally:
            con.close()
        if not mine:
            raise StoreError(f"{db} was not made by the demo; not replacing it",
                             hint="pass another --db for the demo, or remove that file yourself")
        for suffix in ("", ".wal"):
            Path(db + suffix).unlink(missing_ok=True)
    store = Store(db)
    try:
        with store.transaction() as con:
            con.execute(f"CREATE TABLE {DEMO_MARK} AS SELECT now() AS made_at")
    finally:
        store.close()


def main() -> None:
    os.umask(0o077)  # the store, its WAL and lock files hold error data: owner only
    cli(prog_name="sentry-mirror")


if __name__ == "__main__":
    main()
