"""The `sentry-mirror` command line: parse the options, call the module that does the work, print.

Options shared by several commands are in `options.py`; what a command prints beyond a line or
two is shaped by the module it calls (`browse.format_status`, `output.write`, `demo`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import threading
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import click
import duckdb

from . import __version__, redact
from .errors import PARTIAL_EXIT, ConfigError, Interrupted, MirrorError, NotFoundError, StoreError
from .fetching.endpoints import CADENCES
from .running.options import (
    config_option,
    db_option,
    json_option,
    output_options,
    scale_option,
    scope_options,
    seed_option,
    source_options,
    store_options,
    verbosity_options,
)
from .running.output import write as write_rows
from .storage.store import io_hint, open_readonly, require_store

if TYPE_CHECKING:
    from .running.config import Config

CONTEXT = {"help_option_names": ["-h", "--help"]}  # on the group: every command inherits it


def handle_errors(func):
    """User errors become one line on stderr and a non-zero exit; bugs keep their traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Interrupted as exc:
            click.echo(f"sentry-mirror: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:  # a reader stopped with Ctrl-C (sync and schedule stop gracefully instead)
            click.echo("sentry-mirror: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # the reader of the pipe has what it wanted (`| head`)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            sys.exit(0)
        except (MirrorError, duckdb.IOException, duckdb.SerializationException) as exc:
            if not isinstance(exc, MirrorError):  # a store file damaged in its middle, a full disk
                exc = StoreError(f"the store failed: {str(exc).strip().splitlines()[0]}", hint=io_hint(exc))
            click.echo(f"sentry-mirror: error: {redact.scrub(str(exc))}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def reader(db: str, *, any_duckdb: bool = False):
    """A read-only connection for a command that prints rows: the store (or, for `query`, any
    DuckDB file), with DuckDB's progress bar off, which would land in the middle of the rows."""
    con = open_readonly(db) if any_duckdb else require_store(open_readonly(db), db)
    con.execute("SET enable_progress_bar = false")
    return con


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet or not verbose else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    redact.install_log_filter()
    if verbose < 2:
        logging.getLogger("urllib3").setLevel(logging.WARNING)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="sentry-mirror")
def cli():
    """Keep a Sentry organization's error data in one local DuckDB file and query it offline."""


@cli.command()
@handle_errors
@source_options
@config_option()
@click.option("--source", "source_names", multiple=True, help="Sync only the named config source (repeatable).")
@click.option("--full", is_flag=True, help="Re-walk everything instead of only what changed.")
@click.option("--refresh", "refresh", multiple=True, type=click.Choice(sorted(CADENCES)),
              help="Read this slowly changing stream now, whatever its cadence (repeatable).")
@click.option("--rebind", is_flag=True, help="Accept a new URL for the server a source mirrors (it moved; its "
                                             "organization id must stay the same).")
@click.option("--ca-bundle", type=click.Path(exists=True),
              help="CA bundle (a PEM file, or a folder of certificates) to verify a self-hosted server's TLS "
                   "certificate (REQUESTS_CA_BUNDLE works too).")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (never do this over the internet).")
@click.option("--wait", is_flag=True, help="If another sync (or the scheduler) is writing the store, wait for it "
                                           "instead of exiting.")
@click.option("--all-orgs", is_flag=True, help="Mirror every organization the token sees, each as source "
                                               "NAME/<slug> at its region (as org = \"*\" in a source).")
@json_option("Print a machine-readable summary (per source and stream).")
@db_option
@verbosity_options
def sync(url, org, token, config_path, source_names, full, refresh, rebind, ca_bundle, insecure, wait, all_orgs, as_json, db, quiet, verbose):
    """Fetch what changed in Sentry into the store (resumable; safe to interrupt).

    Exit status: 0 all stored; 6 some streams failed and the rest were stored; 2 bad configuration;
    3 store problem; 4 API error; 5 token refused; 130 interrupted.
    """
    setup_logging(verbose, quiet)
    from .running.progress import terminal_progress  # lazy, to keep start-up short: rich
    from .running.config import ALL_ORGS, all_orgs_of, resolve  # lazy: readers need none of the config machinery
    from .running.runner import describe_result, stop_on_signals, sync_all  # lazy: requests, the syncer

    try:  # with --json, every failure is a JSON object too (a cron job keeps it as its record)
        if all_orgs and org:
            raise ConfigError("--all-orgs mirrors every organization; --org names one", hint="pass one of them")
        config = resolve(config_path=config_path, url=url, org=ALL_ORGS if all_orgs and not config_path else org,
                         token=token, db=db, source_names=source_names)
        if all_orgs:
            all_orgs_of(config)
        apply_tls_options(config, ca_bundle, insecure)
        with stop_on_signals() as stop, terminal_progress(quiet or as_json) as (progress, observer):
            results = sync_all(config, full=full, refresh=frozenset(refresh), rebind=rebind, stop=stop, progress=progress, wait=wait, observer=observer)
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
    """One source's sync result as `sync --json` prints it."""
    return {"source": result.source, "status": result.status, "seconds": round(result.seconds, 3),
            "requests": result.requests, "retries": result.retries, "rate_limited": result.rate_limited,
            "rows": result.rows, "errors": result.errors, "notes": result.notes, "streams": result.streams}


def apply_tls_options(config: Config, ca_bundle: str | None, insecure: bool) -> None:
    """--ca-bundle or --insecure replace every source's `verify`."""
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


@cli.command()
@handle_errors
@config_option("A TOML config file listing sources; its [schedule] gives cron or every_minutes.")
@source_options
@click.option("--cron", help="When to sync, as a crontab line, e.g. '0 3 * * *' (in --timezone).")
@click.option("--every", "every_minutes", type=float, help="Sync every N minutes instead of on a cron line.")
@click.option("--timezone", "tz", help="Time zone of the cron line, e.g. Europe/Berlin [default: the config's, or UTC].")
@click.option("--now/--no-now", "run_now", default=True, show_default=True, help="Also sync once right away.")
@db_option
@verbosity_options
def schedule(config_path, url, org, token, cron, every_minutes, tz, run_now, db, quiet, verbose):
    """Keep syncing on a schedule until stopped (one sync at a time; SIGTERM finishes the page in hand)."""
    from .running.config import resolve  # lazy: see sync
    from .running.scheduler import make_trigger, run_scheduler, stamp_log_lines  # lazy: apscheduler

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


@cli.command()
@handle_errors
@store_options
@json_option("Print the status as JSON.")
def status(db, as_json):
    """Show each source's last sync, lag, rows, errors, pending resumes and the next scheduled run.

    Exit status 1 when no source has synced successfully yet.
    """
    from .reading.browse import format_status, store_status  # lazy: the readers' code, kept out of start-up

    con = open_readonly(db)
    try:
        info = store_status(con, db)
    finally:
        con.close()
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        click.echo(format_status(db, info))
    if not any(src.get("last_success") for src in info["sources"].values()):
        sys.exit(1)


QUERY_TABLE_ROWS = 40  # as the DuckDB CLI: a table shows this many rows unless --limit says otherwise


@cli.command()
@handle_errors
@click.argument("sql", required=False)
@click.option("-f", "--file", "sql_file", type=click.Path(dir_okay=False), help="Read the SQL from this file.")
@click.option("-p", "--param", "params", nargs=2, multiple=True, metavar="NAME VALUE",
              help="Bind VALUE to $NAME in the SQL (repeatable); values are text, cast by DuckDB where needed.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help=f"At most this many rows [default: {QUERY_TABLE_ROWS} in a table, every row otherwise].")
@store_options
@output_options
def query(sql, sql_file, params, limit, db, out):
    """Run read-only SQL against the store: SQL as the argument, - for standard input, or --file.

    \b
    sentry-mirror query "SELECT short_id, title FROM issues WHERE times_seen > $n" -p n 100
    sentry-mirror query --csv - < report.sql > out.csv
    CSV, TSV and JSON stream every row in constant memory; a table shows the first rows.
    """
    from .reading.browse import count_rows, query_rows  # lazy: see status

    text = read_sql(sql, sql_file)
    bound = dict(params)
    if len(bound) < len(params):
        raise ConfigError("a --param name is given twice", hint="give each $name one --param")
    if out.fmt == "table" and limit is None:
        limit = QUERY_TABLE_ROWS
    con = reader(db, any_duckdb=True)
    try:
        rows = query_rows(con, text, bound)
        write_rows(rows, replace(out, limit=limit), count_rest=lambda: count_rows(con, text, bound))
    finally:
        con.close()


def read_sql(sql: str | None, sql_file: str | None) -> str:
    """The SQL of `query`: the argument, standard input for '-', or a file."""
    if sql is not None and sql_file:
        raise ConfigError("give the SQL as an argument or with --file, not both")
    if sql_file:
        try:
            with open(sql_file, encoding="utf-8") as fh:
                return fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read --file {sql_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if sql == "-":
        return sys.stdin.read()
    if sql is None:
        raise ConfigError("no SQL given", hint='e.g. sentry-mirror query "SELECT count(*) FROM issues", '
                                              "or - to read it from standard input, or --file")
    return sql


@cli.command()
@handle_errors
@click.option("--since", help="Issues last seen at or after this: YYYY-MM-DD, an ISO time, or a span like 7d or 24h.")
@click.option("--until", help="Issues first seen before this (same forms as --since).")
@click.option("--status", type=click.Choice(["unresolved", "resolved", "ignored", "deleted"]), help="Only this status.")
@click.option("--query", "-q", help="Sentry's issue search, e.g. 'is:unresolved level:error release:1.4.2'.")
@click.option("--environment", help="Only issues with an event in this environment.")
@click.option("--me", metavar="EMAIL", help="Who 'assigned:me' means (the store does not know the token's user).")
@scope_options
@click.option("--sort", type=click.Choice(["date", "new", "freq", "user", "priority",
                                           "events", "users", "last-seen", "first-seen"]), default="freq",
              show_default=True, help="Order, as Sentry's: date (last seen), new (first seen), freq (events), "
                                      "user (users), priority; events, users, last-seen, first-seen still work.")
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True, help="How many issues to list.")
@store_options
@output_options
def issues(since, until, status, query, environment, me, source, project, sort, limit, db, out):
    """List stored issues with their events and affected users, offline.

    --query takes Sentry's issue search language: key:value, !key:value, "quoted values", lists
    key:[a, b], wildcards *, times_seen:>10, lastSeen:-24h, firstSeen:+7d, has:key, free text, OR
    and parentheses. Relative dates count from now.
    No matching issue is not an error: the answer is empty (a table says "(no rows)") and the exit status 0.
    """
    from .reading.browse import ISSUE_OPTIONAL, issue_rows, parse_when  # lazy: see status

    con = reader(db)
    try:
        write_rows(issue_rows(con, since=parse_when(since, "--since"), until=parse_when(until, "--until"),
                              status=status, project=project, sort=sort, limit=limit, source=source,
                              query=query, environment=environment, me=me), out,
                   optional=ISSUE_OPTIONAL)
    finally:
        con.close()


@cli.command()
@handle_errors
@click.argument("ref", metavar="SHORT-ID|ID")
@click.option("--event", "event_id", metavar="EVENT_ID", help="Show this stored event of the issue instead of the latest.")
@click.option("--oldest", is_flag=True, help="Show the issue's oldest stored event instead of the latest.")
@click.option("--source", help="The source whose issue it is (a store mirroring several that share the id).")
@click.option("--json", "as_json", is_flag=True, help="Print the page as one JSON object.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None,
              help="The output format by name [default: text].")
@store_options
def issue(ref, event_id, oldest, source, as_json, fmt, db):
    """Read one issue and its latest event offline, as Sentry's issue page shows them.

    The issue: status (ignored until when, resolved in which release), Sentry's counts beside the
    stored ones, first and last seen and release, assignee, tags with their top values. The event
    (the latest, --event ID or --oldest): its exception chain and stack frames (> marks in-app
    frames), breadcrumbs, request, user and contexts. An issue the store does not hold is one line
    and exit status 2.
    """
    from .reading.issue_page import read_page  # lazy: see status
    from .reading.issue_text import render, to_json

    if event_id and oldest:
        raise ConfigError("give --event or --oldest, not both")
    if as_json and fmt == "text":
        raise ConfigError("--json and --format text disagree", hint="give one of them")
    con = reader(db)
    try:
        page = read_page(con, ref, source=source, event_id=event_id, oldest=oldest)
    finally:
        con.close()
    click.echo(to_json(page) if as_json or fmt == "json" else render(page))


@cli.command()
@handle_errors
@click.argument("name", metavar="REPORT", type=click.Choice(["trends", "regressions", "users", "top"]))
@scope_options
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
@output_options
def report(name, source, project, environment, release, since, until, by, limit, plot_path, db, out):
    """Report offline: error trends, release regressions, affected users, top issues.

    \b
    trends       events per hour/day/week and project, and the change from a week before
    regressions  per release: new and regressed issues, events, users, against the previous one
    users        distinct users per issue, beside Sentry's userCount
    top          the issues with the most events, their users and time to resolve

    No data for the filters is not an error: the answer is empty, a line on stderr says so, and the
    exit status is 0 (as for 'issues'). With --plot there is nothing to draw, and that is an error.
    """
    from .reading.browse import parse_when  # lazy: see status
    from .reading.reports import REPORTS, Filters, plot_report, report_rows  # lazy: see status

    if by is not None and name != "trends":
        raise ConfigError(f"the {name} report has no --by", hint="--by sets the buckets of 'report trends'")
    if plot_path and not plot_path.lower().endswith(".png"):
        raise ConfigError(f"--plot writes a PNG: {plot_path} does not end in .png", hint="e.g. --plot trends.png")
    by = by or "day"
    filters = Filters(source=source, project=project, environment=environment, release=release,
                      since=parse_when(since, "--since"), until=parse_when(until, "--until"), by=by, limit=limit)
    con = reader(db)
    try:
        rows = report_rows(con, name, filters)
        if not rows.first():
            if plot_path:
                raise MirrorError(f"no data for the {name} report with these filters: nothing to plot",
                                  hint="widen --since/--until, or check --project/--environment/--release")
            click.echo(f"sentry-mirror: no data for the {name} report with these filters "
                       "(widen --since/--until, or check --project/--environment/--release)", err=True)
        if plot_path:
            rows = rows.held()
            plot_report(name, rows.frame(), plot_path, filters)
            click.echo(f"plot written to {plot_path}", err=True)
        write_rows(rows, out, optional=REPORTS[name].optional)
    finally:
        con.close()


@cli.group()
def export():
    """Write the store out in a format bigger engines read."""


@export.command("parquet")
@handle_errors
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--since", help="Only events (and their details, history and stats) from this time on: "
                              "YYYY-MM-DD, an ISO time, or a span like 30d.")
@store_options
def export_parquet(directory, since, db):
    """Every table as Parquet (zstd); events and their details partitioned by source, project, month."""
    from .reading.browse import parse_when  # lazy: see status
    from .reading.export import export_parquet as write  # lazy: see status

    con = reader(db)
    try:
        written = write(con, directory, since=parse_when(since, "--since"))
    finally:
        con.close()
    total = sum(written.values())
    click.echo(f"exported {len(written)} tables, {total:,} rows, to {directory}")


@cli.group()
def config():
    """Check a configuration file and show the settings in effect."""


@config.command("check")
@handle_errors
@config_option("The TOML config file to check (see config.example.toml).")
@source_options
@click.option("--online", is_flag=True, help="Also make one authenticated request per source: token scopes, orgs seen.")
@db_option
def config_check(config_path, url, org, token, online, db):
    """Validate the config (every wrong key or value, with its line) and print the effective settings."""
    from .running.config import check_config, read_config_file, resolve  # lazy: see sync
    from .running.configcheck import describe, online_check  # lazy: see status

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


@config.command("from-gitlab")
@handle_errors
@click.option("--gitlab-url", required=True, help="The GitLab server, e.g. https://gitlab.com.")
@click.option("--project", required=True, help="The project's numeric id or full path (group/sub/project); "
                                                "with --all, a group.")
@click.option("--token-env", default="GITLAB_TOKEN", show_default=True,
              help="Environment variable holding the GitLab token (read_api, Maintainer role).")
@click.option("--sentry-token-env", default="SENTRY_AUTH_TOKEN", show_default=True,
              help="The token_env the source names: the variable that will hold the Sentry token.")
@click.option("--write", "write_path", type=click.Path(dir_okay=False),
              help="Append the source to this config file (created if missing) instead of printing it.")
@click.option("--all", "every", is_flag=True, help="Every project of the group --project names, and its subgroups.")
@click.option("--client-keys", is_flag=True, help="List the project's client keys (public key, active, DSN) instead.")
def config_from_gitlab(gitlab_url, project, token_env, sentry_token_env, write_path, every, client_keys):
    """Print a config source for the Sentry project a GitLab project's error tracking points at."""
    from .running.gitlab import from_gitlab, gitlab_token  # lazy: see sync

    token = gitlab_token(token_env, os.environ)
    from_gitlab(gitlab_url=gitlab_url, project=project, token=token, sentry_token_env=sentry_token_env,
                write=write_path, every=every, client_keys=client_keys,
                say=lambda text, err: click.echo(redact.scrub(text), err=err))


@cli.command()
@handle_errors
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port on 127.0.0.1 (0 = any free port).")
@seed_option(1)
@scale_option("How much data to generate.")
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
@click.option("--orgs", type=click.IntRange(1, 50), default=1, show_default=True,
              help="How many organizations: the first in region us, the others in de and us by turns, each "
                   "served at /_region/<region>/api/0/ and listed at /api/0/organizations/.")
def emulator(port, seed, scale, token, rate_limit, strict_limits, faults, flavor, deletions, merges, orgs):
    """Serve a generated organization through Sentry's API on 127.0.0.1, for trying and testing."""
    from .emulator import parse_spec, run_emulator  # lazy: the emulator's server and data generator

    for spec in faults:
        try:
            parse_spec(spec)
        except ValueError as exc:
            raise ConfigError(f"bad --fault {spec!r}: {exc}", hint="e.g. kind=503,route=*/issues/*,rate=0.2") from None
    try:
        run_emulator(port=port, seed=seed, scale=scale, token=token, rate_limit=rate_limit, faults=list(faults),
                     flavor=flavor, deletions=deletions, merges=merges, strict_limits=strict_limits, orgs=orgs)
    except OSError as exc:  # binding the port: in use, or not ours to take
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
                          hint="pick another --port, or --port 0 for any free one") from None


@cli.command()
@handle_errors
@click.option("--db", default="demo.duckdb", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the demo store (replaced on each run; a store the demo did not make is never replaced).")
@scale_option("How much data the emulator generates.")
@seed_option(7)
@verbosity_options
def demo(db, scale, seed, quiet, verbose):
    """Sync from the built-in Sentry emulator into a demo store and summarise it; no account needed."""
    from .running.demo import run_demo  # lazy: the emulator and the syncer

    setup_logging(verbose, quiet)
    # progress lines on a terminal only, as for sync: piped, the demo prints its results alone
    say = (lambda m: None) if quiet or not sys.stderr.isatty() else (lambda m: click.echo(m, err=True))
    run_demo(db, scale=scale, seed=seed, show=click.echo, progress=say)
    click.echo(f"\nThe store is {db}. Try: sentry-mirror status --db {db}")
    click.echo(f"     or: sentry-mirror report trends --db {db} --by day --plot trends.png")
    click.echo(f"     or: sentry-mirror query --db {db} \"SELECT * FROM release_regressions LIMIT 10\"")


# -- triage: changes made in Sentry, stored from its answer --------------------------------------

def triage_options(func):
    """What every triage command takes: the issues, the source to act as, and the safety flags."""
    func = click.argument("refs", metavar="ISSUE...", nargs=-1)(func)
    func = click.option("--query", "search", help="Also every stored issue this Sentry search finds, e.g. "
                                                  "'is:unresolved release:web@1.2.0' (as `issues --query`).")(func)
    func = click.option("--me", metavar="EMAIL", help="Who 'assigned:me' means in --query.")(func)
    func = click.option("--dry-run", is_flag=True, help="Only show what would change; change nothing.")(func)
    func = click.option("-y", "--yes", is_flag=True, help="Do it without asking (scripts).")(func)
    func = click.option("--source", "source_name", help="The config source to act as, when the config has several.")(func)
    func = config_option()(func)
    func = source_options(func)
    func = db_option(func)
    return verbosity_options(func)


@cli.group()
def triage():
    """Change issues in Sentry (resolve, ignore, assign, delete...) and store the change at once.

    ISSUE is a stored issue id or short id; --query adds the stored issues a Sentry search finds.
    Shows what would change and asks first; --yes for scripts,
    --dry-run to only look. Exit status: 0 done; 2 bad input or not confirmed; 5 token refused
    (names the missing scope); 6 some requests failed (each reported; the store keeps only what Sentry did).
    """


def run_triage_command(opts: dict, build, *, check=None) -> None:
    """Choose the source and issues, show the change, confirm, send it, report each request."""
    from .running.runner import client_for  # lazy: requests
    from .running.config import resolve  # lazy: see sync
    from .running.triage import TriageResult, run_triage, select_issues
    from .storage.locking import writer_lock
    from .storage.store import Store

    setup_logging(opts["verbose"], opts["quiet"])
    config = resolve(config_path=opts["config_path"], url=opts["url"], org=opts["org"], token=opts["token"],
                     db=opts["db"], source_names=(opts["source_name"],) if opts["source_name"] else ())
    if len(config.sources) != 1:
        raise ConfigError(f"triage acts as one source, and the config gives {len(config.sources)}",
                          hint="pick one with --source NAME")
    source = config.sources[0]
    if not opts["refs"] and not opts["search"]:
        raise ConfigError("name the issues to change", hint="issue ids or short ids, as `issues` lists them, "
                                                          "or --query 'SEARCH'")
    con = require_store(open_readonly(config.db), config.db)
    try:
        refs = list(opts["refs"])
        if opts["search"]:
            from .reading.search import search_issue_ids

            found = search_issue_ids(con, opts["search"], now=datetime.now(timezone.utc), source=source.name,
                                     me=opts["me"])
            if not found and not refs:
                click.echo(f"No stored issue matches --query {opts['search']!r}: nothing to change.")
                return
            refs += found
        targets = select_issues(con, source.name, refs)
        action = build(con, source.name)
    finally:
        con.close()
    if check:
        check(targets)
    show_triage_plan(action, targets, dry_run=opts["dry_run"])
    if opts["dry_run"]:
        return
    confirm_triage(action, len(targets), opts["yes"])
    say = (lambda r: None) if opts["quiet"] else (lambda r: click.echo(describe_request(r)))
    with writer_lock(config.db, on_wait=logging.getLogger("sentry_mirror").warning):
        store = Store(config.db)
        client = client_for(source)
        try:
            result: TriageResult = run_triage(store, client, source.org, source.name, action, targets, say)
        finally:
            client.close()
            store.close()
    done = sum(len(r.ids) for r in result.requests if r.applied)
    click.echo(f"{action.what}: {done} of {len(targets)} issues changed in Sentry and in the store "
               f"({result.sent} request{'s' if result.sent != 1 else ''})")
    if result.failed:
        failed = sum(len(r.ids) for r in result.failed)
        click.echo(f"sentry-mirror: {failed} issues were not changed: see the FAILED lines above", err=True)
        sys.exit(PARTIAL_EXIT)


def show_triage_plan(action, targets, *, dry_run: bool) -> None:
    head = "Would" if dry_run else "About to"
    click.echo(f"{head} {action.what}: {len(targets)} issue{'s' if len(targets) != 1 else ''}")
    for t in targets[:10]:
        click.echo(f"  {t.id:>12}  {(t.short_id or ''):<18} {t.status or '':<10} {(t.title or '')[:70]}")
    if len(targets) > 10:
        click.echo(f"  … and {len(targets) - 10} more")


def confirm_triage(action, count: int, yes: bool) -> None:
    """As every write (confirm_write); deleting asks a second time, naming the count."""
    confirm_write(yes, question="Change these issues in Sentry?",
                  refusal="triage changes Sentry: pass --yes to confirm, or --dry-run to only show")
    if not yes and action.method == "DELETE" and not click.confirm(
            f"Delete {count} issue{'s' if count != 1 else ''} and all their events for good?", default=False):
        raise ConfigError("nothing was deleted")


def describe_request(result) -> str:
    first = ", ".join(result.ids[:3]) + (f" … ({len(result.ids)} ids)" if len(result.ids) > 3 else "")
    head = "ok" if result.applied else "FAILED"
    return f"  {head} {first}: {result.message}"


@triage.command("resolve")
@handle_errors
@click.option("--in-next-release", is_flag=True, help="Resolved by the next release (Sentry: inNextRelease).")
@click.option("--in-release", metavar="VERSION", help="Resolved in this release (Sentry: inRelease).")
@click.option("--in-commit", metavar="SHA", help="Resolved by this commit (with --repository).")
@click.option("--repository", metavar="NAME", help="The repository of --in-commit, as Sentry names it.")
@triage_options
def triage_resolve(in_next_release, in_release, in_commit, repository, **opts):
    """Resolve issues (now, in the next release, in a release or by a commit)."""
    from .running.triage import resolve_action

    action = resolve_action(in_next_release, in_release, in_commit, repository)
    run_triage_command(opts, lambda con, source: action)


@triage.command("ignore")
@handle_errors
@click.option("--for", "for_", metavar="SPAN", help="For a while: 30m, 2h, 7d (Sentry: ignoreDuration).")
@click.option("--until-count", type=click.IntRange(min=1), metavar="N", help="Until N more events (ignoreCount).")
@click.option("--until-users", type=click.IntRange(min=1), metavar="N", help="Until N more users (ignoreUserCount).")
@click.option("--window", metavar="SPAN", help="The N events or users within this span (1h, 1d).")
@click.option("--until-escalating", is_flag=True, help="Until it escalates (newer Sentry's archive default).")
@click.option("--forever", is_flag=True, help="For good (the default).")
@triage_options
def triage_ignore(for_, until_count, until_users, window, until_escalating, forever, **opts):
    """Ignore (archive, in newer Sentry) issues, for good or until a condition is met."""
    from .running.triage import ignore_action

    action = ignore_action(for_, until_count, until_users, window, forever, until_escalating)
    run_triage_command(opts, lambda con, source: action)


@triage.command("assign")
@handle_errors
@click.argument("who", metavar="EMAIL|USERNAME|team:SLUG")
@triage_options
def triage_assign(who, **opts):
    """Assign issues to a member (email or username) or a team (team:SLUG), from the stored members and teams."""
    from .running.triage import assign_action

    run_triage_command(opts, lambda con, source: assign_action(con, source, who))


def simple_triage_command(name: str, about: str):
    @handle_errors
    @triage_options
    def command(**opts):
        from .running.triage import check_merge, simple_action

        action = simple_action(name)
        run_triage_command(opts, lambda con, source: action, check=check_merge if name == "merge" else None)

    command.__doc__ = about
    return triage.command(name)(command)


for _name, _about in (("unresolve", "Set issues unresolved again."),
                      ("unassign", "Take the assignee off issues."),
                      ("bookmark", "Bookmark issues (for the token's user)."),
                      ("unbookmark", "Remove the bookmark of issues."),
                      ("merge", "Merge issues of one project into one (Sentry keeps the one with most events)."),
                      ("delete", "Delete issues and their events in Sentry, for good (asks twice on a terminal).")):
    simple_triage_command(_name, _about)


# -- hooks: Sentry pushes, the store takes it at once ----------------------------------------------

def hooks_options(func=None, *, public_url: bool = False):
    """The source to act as, and where the hook secrets are kept. With `public_url` (install),
    --url is the receiver's public URL, so Sentry's own URL is --sentry-url."""
    def wrap(func):
        func = click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False),
                            help="The hook secrets file, owner-only [default: beside the store, "
                                 "<db>.hook-secrets.json].")(func)
        func = click.option("--source", "source_name", help="The config source to act as, when the config has "
                                                            "several.")(func)
        func = config_option()(func)
        if public_url:
            func = click.option("--token", "--auth-token", "token", help="Auth token with project:write.")(func)
            func = click.option("--org", help="Organization slug.")(func)
            func = click.option("--sentry-url", "url", help="Sentry base URL [default: the config's, or env].")(func)
        else:
            func = source_options(func)
        func = db_option(func)
        return verbosity_options(func)
    return wrap(func) if func else wrap


def hooks_config(opts: dict, *, one: bool = True) -> Config:
    setup_logging(opts["verbose"], opts["quiet"])
    from .running.config import ALL_ORGS, resolve  # lazy: see sync

    config = resolve(config_path=opts["config_path"], url=opts["url"], org=opts["org"], token=opts["token"],
                     db=opts["db"], source_names=(opts["source_name"],) if opts["source_name"] else ())
    every = [s for s in config.sources if s.org == ALL_ORGS]
    if every:  # hooks belong to one organization's projects: `org = "*"` means each one the token sees
        from .running.allorgs import each_organization
        from .running.runner import client_for

        config.sources = each_organization(config.sources, client_for)
        if one and len(config.sources) > 1 and len(every) == 1 and not every[0].only_orgs:
            raise ConfigError(f"source {every[0].name} mirrors every organization its token sees "
                              f"({', '.join(s.org for s in config.sources)}), and this acts on one",
                              hint=f"pick one with --source {every[0].name}/SLUG")
    if one and len(config.sources) != 1:
        raise ConfigError(f"this acts as one source, and the config gives {len(config.sources)}",
                          hint="pick one with --source NAME (NAME/SLUG for one organization of org = \"*\")")
    return config


def confirm_write(yes: bool, *, question: str = "Go ahead?",
                  refusal: str = "this changes Sentry: pass --yes to confirm") -> None:
    """Writes change someone's Sentry: ask on a terminal; elsewhere only --yes goes on."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(refusal)
    if not click.confirm(question, default=False):
        raise ConfigError("nothing was changed")


@cli.group()
def hooks():
    """Sentry's webhooks: receive them into the store (serve), and manage project service hooks."""


@hooks.command("serve")
@handle_errors
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (put a TLS proxy in front).")
@click.option("--port", default=8085, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--max-bytes", default=1 << 20, show_default=True, type=click.IntRange(min=1024),
              help="Refuse bodies over this size (413).")
@click.option("--replay-window", default=300.0, show_default=True, type=click.FloatRange(min=1),
              help="Refuse deliveries whose timestamp is further than this many seconds from now (401).")
@click.option("--integration-secret-env", multiple=True, metavar="NAME",
              help="An environment variable holding an internal integration's client secret (repeatable).")
@click.option("--refresh-after", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds a new event's issue waits to be refreshed with others (100 a request).")
@click.option("--port-file", type=click.Path(dir_okay=False), hidden=True,
              help="Write the port listened on to this file once listening (tests and scripts that ask for --port 0).")
@hooks_options
def hooks_serve(host, port, max_bytes, replay_window, integration_secret_env, refresh_after, port_file, **opts):
    """Receive Sentry's service hooks and integration webhooks and store them at once."""
    from .running.hooks.receiver import Limits
    from .running.hooks.service import HookService, ServeOptions
    from .running.runner import stop_on_signals

    config = hooks_config(opts, one=False)
    options = ServeOptions(host=host, port=port, secrets_path=opts["secrets_path"],
                           limits=Limits(max_bytes=max_bytes, replay_seconds=replay_window),
                           integration_secret_envs=integration_secret_env, refresh_after=refresh_after)
    with stop_on_signals() as stop:
        service = HookService(config, options, stop=threading.Event())
        with service:
            if not opts["quiet"]:  # whatever the log level: with --port 0 it is the only way to learn the port
                click.echo(f"receiving Sentry webhooks on {service.url}", err=True)
            if port_file:
                with open(port_file, "w", encoding="utf-8") as fh:
                    fh.write(str(service.port))
            stop.wait()


@hooks.command("install")
@handle_errors
@click.option("--project", required=True, help="The project (slug) whose events are sent.")
@click.option("--url", "public_url", required=True, help="The public URL Sentry POSTs to (your TLS proxy).")
@click.option("--events", default="event.created,event.alert", show_default=True, help="Comma-separated hook events.")
@click.option("--secret-env", metavar="NAME", help="Keep only this variable's name in the secrets file; you put "
                                                   "the secret there yourself (from Sentry's project settings).")
@click.option("-y", "--yes", is_flag=True, help="Do it without asking (scripts).")
@hooks_options(public_url=True)
def hooks_install(project, public_url, events, secret_env, yes, **opts):
    """Create a service hook in Sentry; its secret goes to the secrets file, never to the screen."""
    from .running.hooks.install import check_install, install, same_url
    from .running.hooks.secrets import HookSecrets
    from .running.hooks.service import secrets_path
    from .running.runner import client_for

    wanted = [e.strip() for e in events.split(",") if e.strip()]
    check_install(public_url, wanted, secret_env)
    config = hooks_config(opts)
    source = config.sources[0]
    path = secrets_path(config, opts["secrets_path"])
    kept = f"the name of the variable holding its secret, {secret_env}, is kept in {path}" if secret_env \
        else f"its secret is kept in {path}"
    client = client_for(source)
    try:
        there = same_url(client, source.org, project, public_url)
        if there:
            raise ConfigError(f"{source.org}/{project} already has service hook {there[0]} sending to {public_url}; "
                              "a second would deliver every event twice",
                              hint=f"keep it, or remove it first: sentry-mirror hooks remove {there[0]}")
        click.echo(f"About to create a service hook on {source.org}/{project} sending {', '.join(wanted)} to "
                   f"{public_url}; {kept}")
        confirm_write(yes)
        hook = install(client, source.org, project, public_url, wanted, HookSecrets(path), source=source.name,
                       secret_env=secret_env)
    finally:
        client.close()
    click.echo(f"created hook {hook['id']} ({hook['status']}); {kept}")


@hooks.command("list")
@handle_errors
@click.option("--project", "projects", multiple=True, help="Only this project (slug; repeatable) [default: all].")
@json_option("Print the hooks as JSON.")
@hooks_options
def hooks_list(projects, as_json, **opts):
    """List the projects' service hooks in Sentry (never their secrets)."""
    from .running.hooks.install import list_hooks, secret_here
    from .running.hooks.secrets import HookSecrets
    from .running.hooks.service import secrets_path
    from .running.runner import client_for

    config = hooks_config(opts)
    source = config.sources[0]
    kept = HookSecrets(secrets_path(config, opts["secrets_path"])).read()["hooks"]
    client = client_for(source)
    try:
        if not projects:
            projects = [p["slug"] for page in client.paginate(f"organizations/{source.org}/projects/")
                        for p in page.items]
        rows = [{**r, "secret_here": secret_here(kept.get(r["id"]))} for r in list_hooks(client, source.org, list(projects))]
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no service hooks")
        return
    click.echo(f"{'PROJECT':<24} {'HOOK':<34} {'STATUS':<9} {'SECRET HERE':<24} EVENTS  URL")
    for r in rows:
        click.echo(f"{r['project']:<24} {r['id']:<34} {r['status'] or '':<9} {r['secret_here']:<24} "
                   f"{','.join(r['events'] or [])}  {r['url']}")


@hooks.command("remove")
@handle_errors
@click.argument("hook_id")
@click.option("--project", help="The hook's project [default: the one the secrets file names].")
@click.option("-y", "--yes", is_flag=True, help="Do it without asking (scripts).")
@hooks_options
def hooks_remove(hook_id, project, yes, **opts):
    """Delete a service hook in Sentry and forget its secret."""
    from .running.hooks.install import remove
    from .running.hooks.secrets import HookSecrets
    from .running.hooks.service import secrets_path
    from .running.runner import client_for

    config = hooks_config(opts)
    source = config.sources[0]
    secrets = HookSecrets(secrets_path(config, opts["secrets_path"]))
    project = project or (secrets.read()["hooks"].get(hook_id) or {}).get("project")
    if not project:
        raise ConfigError(f"the secrets file does not know hook {hook_id}", hint="name its project with --project")
    click.echo(f"About to delete service hook {hook_id} of {source.org}/{project}")
    confirm_write(yes)
    client = client_for(source)
    try:
        remove(client, source.org, project, hook_id, secrets)
    except NotFoundError:
        raise NotFoundError(404, f"Sentry has no service hook {hook_id} on {source.org}/{project}",
                            hint=f"`sentry-mirror hooks list --project {project}` shows its hooks") from None
    finally:
        client.close()
    click.echo(f"deleted hook {hook_id}")


def main() -> None:
    from .filemodes import keep_user_umask

    keep_user_umask(os.umask(0o077))  # the store, its WAL and lock files hold error data: owner only
    cli(prog_name="sentry-mirror")


if __name__ == "__main__":
    main()
