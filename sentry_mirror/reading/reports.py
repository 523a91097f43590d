"""The `report` command's reports: one `.sql` file each under `sql/reports/`, run with bound
filters on a read-only connection, and the picture each one draws.

The SQL files compute what the views show (`error_trends`, `release_regressions`,
`affected_users`, `top_issues`), from the same tables or the views' macros, with the filters
applied before counting: a report and an ad-hoc query over a view agree, and a report on ten
million events does not count them all first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from ..errors import ConfigError, MirrorError
from ..filemodes import user_umask
from ..storage.sqlfiles import load_sql, params_for, statements
from .browse import check_project, check_source
from .rows import Rows

BUCKETS = ("hour", "day", "week")


@dataclass(frozen=True)
class Filters:
    source: str | None = None  # one source of a store that mirrors several
    project: str | None = None
    environment: str | None = None
    release: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    by: str = "day"
    limit: int = 50


@dataclass(frozen=True)
class Report:
    name: str
    about: str
    plot: str  # lines | bars
    x: str  # the column along the plot's x axis (bars: one bar per value)
    y: tuple[str, ...]  # the measured columns drawn
    series: str | None = None  # lines: one line per value of this column
    takes_environment: bool = True
    optional: tuple[str, ...] = ()  # columns a table too wide for the terminal leaves out first


REPORTS = {
    "trends": Report("trends", "events per hour, day or week and project, with the change over a week",
                     "lines", "bucket", ("events",), series="project", optional=("basis", "week_before")),
    "regressions": Report("regressions", "per release: new and regressed issues, events and users, "
                          "against the previous release", "bars", "release", ("new_issues", "regressed_issues"),
                          takes_environment=False,
                          optional=("previous_regressed_issues", "previous_new_issues", "previous_events",
                                    "sentry_new_groups", "created", "affected_users_change", "previous_release",
                                    "events_change")),
    "users": Report("users", "distinct affected users per issue, beside Sentry's userCount",
                    "bars", "short_id", ("users",),
                    optional=("issue_id", "events_missing", "sentry_events", "events", "project", "status")),
    "top": Report("top", "the issues with the most events, their users and time to resolve",
                  "bars", "short_id", ("events",),
                  optional=("issue_id", "substatus", "regressions", "last_time_to_resolve", "first_seen",
                            "sentry_events", "project", "status")),
}


class EmptyStore(MirrorError):
    """The store holds nothing to report on."""


def run_report(con: duckdb.DuckDBPyConnection, name: str, filters: Filters):
    """The report as a pandas DataFrame (for a notebook or a test); the connection is the caller's to close."""
    return _execute(con, name, filters).df()


def report_rows(con: duckdb.DuckDBPyConnection, name: str, filters: Filters) -> Rows:
    """The report's rows as the CLI prints them; the connection is the caller's to close."""
    return Rows.of(_execute(con, name, filters))


def _execute(con: duckdb.DuckDBPyConnection, name: str, filters: Filters) -> duckdb.DuckDBPyConnection:
    report = REPORTS[name]
    _check_filters(con, report, filters)
    # Sentry's counters are complete (never sampled): trends use them, project by project, unless
    # a breakdown needs the events.
    basis = "events" if filters.environment or filters.release else "auto"
    params: dict[str, Any] = {"source": filters.source, "project": filters.project, "environment": filters.environment,
                              "release": filters.release, "since": filters.since, "until": filters.until,
                              "by": filters.by, "limit": filters.limit, "basis": basis}
    sql = statements(load_sql("reports", name))[0]
    try:
        return con.execute(sql, params_for(sql, params))
    except (duckdb.IOException, duckdb.SerializationException):
        raise  # a damaged file, said as such by the CLI
    except duckdb.Error as exc:
        raise MirrorError(f"the {name} report failed: {str(exc).strip().splitlines()[0]}",
                          hint="is the store from an older sentry-mirror? run 'sentry-mirror sync' once") from None


def _check_filters(con: duckdb.DuckDBPyConnection, report: Report, filters: Filters) -> None:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not {"events", "projects", "issues"} <= tables or not con.execute(
            "SELECT EXISTS (SELECT 1 FROM issues) OR EXISTS (SELECT 1 FROM events)").fetchone()[0]:
        raise EmptyStore("the store holds no issues or events yet", hint="run 'sentry-mirror sync' first")
    if filters.environment and not report.takes_environment:
        raise ConfigError(f"the {report.name} report has no --environment filter",
                          hint="releases are not per environment; try 'report trends --environment'")
    check_source(con, filters.source)
    check_project(con, filters.project, filters.source)
    if filters.release and not con.execute(
            "SELECT EXISTS (SELECT 1 FROM releases WHERE version = ?) "
            "OR EXISTS (SELECT 1 FROM events WHERE release = ?)", [filters.release, filters.release]).fetchone()[0]:
        raise ConfigError(f"no release '{filters.release}' in the store",
                          hint="list them: sentry-mirror query \"SELECT version FROM releases\"")
    if filters.since and filters.until and filters.since >= filters.until:
        raise ConfigError("--since must be before --until")


def plot_report(name: str, frame, path: str, filters: Filters):
    """Draw what the report shows into a PNG; returns the matplotlib Figure (closed)."""
    fig = draw_report(name, frame, filters)
    import matplotlib.pyplot as plt  # after draw_report chose the backend
    try:
        with user_umask():  # the user's file, to share as any other
            fig.savefig(path, format="png")
    except OSError as exc:
        raise ConfigError(f"cannot write the plot to {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)
    return fig


def draw_report(name: str, frame, filters: Filters):
    """The report's Figure, not saved: its title says what is drawn and what the filters kept."""
    import matplotlib

    matplotlib.use("Agg")  # no display: cron jobs and CI have none
    import matplotlib.pyplot as plt

    report = REPORTS[name]
    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=100)
    try:
        if report.plot == "lines":
            _draw_lines(ax, report, frame, filters)
            fig.autofmt_xdate()
        else:
            _draw_bars(ax, report, frame)
        scope = describe_filters(report, filters)
        ax.set_title(f"sentry-mirror {name}: {_what_is_drawn(report, frame, filters)}"
                     + (f"\n{scope}" if scope else ""), fontsize="medium")
        ax.grid(alpha=0.3)
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    return fig


def _draw_lines(ax, report: Report, frame, filters: Filters) -> None:
    """A line per series; a bucket still filling (`partial`) joined dashed, with a hollow marker."""
    partial = frame["partial"].astype(bool) if "partial" in frame.columns else None
    any_partial = False
    for label, part in frame.groupby(report.series, sort=True, dropna=False):
        whole = part if partial is None else part[~partial[part.index]]
        line, = ax.plot(whole[report.x], whole[report.y[0]], marker="." if len(part) < 60 else None,
                        label=str(label))
        if partial is not None and partial[part.index].any():
            any_partial = True
            filling = part[partial[part.index]]
            joined = part.loc[[*whole.index[-1:], *filling.index]]  # from the last whole bucket on
            ax.plot(joined[report.x], joined[report.y[0]], linestyle="--", color=line.get_color())
            ax.plot(filling[report.x], filling[report.y[0]], linestyle="none", marker="o",
                    markerfacecolor="none", color=line.get_color())
    ax.set_xlabel(f"{filters.by} (UTC)")
    ax.set_ylabel("events per " + filters.by)
    handles, labels = ax.get_legend_handles_labels()
    if any_partial:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="grey", linestyle="--", marker="o", markerfacecolor="none"))
        labels.append(f"partial: {filters.by} still filling at the last sync")
    if len(labels) > 1 or any_partial:
        ax.legend(handles, labels, fontsize="small", ncols=2)


def _draw_bars(ax, report: Report, frame) -> None:
    labels = [str(v) for v in frame[report.x]]
    width = 0.8 / len(report.y)
    for k, column in enumerate(report.y):
        ax.bar([i + k * width for i in range(len(labels))], frame[column], width=width,
               label=column.replace("_", " "))
    ax.set_xticks([i + width * (len(report.y) - 1) / 2 for i in range(len(labels))], labels,
                  rotation=60, ha="right", fontsize="small")
    ax.set_xlabel(AXIS_NAMES.get(report.x, report.x.replace("_", " ")))
    ax.set_ylabel(" / ".join(c.replace("_", " ") for c in report.y))
    if len(report.y) > 1:
        ax.legend(fontsize="small")


AXIS_NAMES = {"short_id": "issue", "release": "release"}


def _what_is_drawn(report: Report, frame, filters: Filters) -> str:
    """The series drawn, in words: never a column that is not drawn."""
    if report.name == "trends":
        projects = sorted({str(p) for p in frame[report.series]})
        who = f"project {projects[0]}" if len(projects) == 1 else f"{len(projects)} projects, a line each"
        return f"events per {filters.by}, {who}"
    if report.name == "regressions":
        return f"new and regressed issues in each of {len(frame)} releases"
    if report.name == "users":
        return f"distinct affected users of the {len(frame)} issues with the most users"
    return f"events of the {len(frame)} issues with the most events"


def describe_filters(report: Report, filters: Filters) -> str:
    """The filters the report applied, as the user gave them; empty when none."""
    def when(t: datetime | None) -> str:
        return t.strftime("%Y-%m-%d %H:%M" if t.hour or t.minute else "%Y-%m-%d") if t else ""

    times = "releases created" if report.name == "regressions" else (
        "buckets" if report.name == "trends" else "events")
    since, until = when(filters.since), when(filters.until)
    span = (f"{times} from {since} until {until}" if since and until else
            f"{times} since {since}" if since else f"{times} before {until}" if until else "")
    parts = [f"{k} {v}" for k, v in (("source", filters.source), ("project", filters.project),
                                     ("environment", filters.environment), ("release", filters.release)) if v]
    return ", ".join(parts + ([span] if span else []))
