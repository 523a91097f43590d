"""Printing a query's or report's DataFrame as a table, CSV or JSON (the --format of readers)."""

from __future__ import annotations

import click

TABLE_TEXT = 60  # a table on a terminal shortens longer text (titles); CSV and JSON keep it whole


def print_frame(frame, fmt: str) -> None:
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        # default_handler: a UUID (or any other value JSON has no type for) as its text
        click.echo(frame.to_json(orient="records", date_format="iso", indent=2, default_handler=str))
    else:
        import pandas as pd  # here, not on top: the CLI imports this module and --help needs no pandas

        texts = [c for c in frame.columns if not (pd.api.types.is_numeric_dtype(frame[c])
                                                  or pd.api.types.is_datetime64_any_dtype(frame[c]))]
        shown = frame.assign(**{c: frame[c].map(_shortened) for c in texts})
        click.echo(shown.to_string(index=False, na_rep="") if len(frame) else "(no rows)")


def _shortened(value) -> str:
    """A missing value as blank (not None, NaN or <NA>), long text cut for the terminal."""
    import pandas as pd  # see print_frame

    try:
        if value is None or bool(pd.isna(value)):
            return ""
    except (TypeError, ValueError):  # a list or an array: never missing as a whole
        pass
    text = str(value)
    return text if len(text) <= TABLE_TEXT else text[:TABLE_TEXT - 1] + "…"
