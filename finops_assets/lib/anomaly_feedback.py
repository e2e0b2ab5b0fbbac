"""People's verdicts on anomalies (``finops-assets anomaly feedback ID yes|no|planned``).

A verdict is appended, never overwritten: the latest one per anomaly counts in
``insights/anomaly_quality``, and the history stays for audit. ``yes``: a real, unexpected
change; ``no``: a false alarm; ``planned``: real but known in advance (a migration, a launch).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from finops_assets.lib import warehouse as wh

ANOMALIES_TABLE = "insights.anomalies"
ANOMALY_ALERTS_TABLE = "insights.anomaly_alerts"
FEEDBACK_TABLE = "insights.anomaly_feedback"
VERDICTS = ("yes", "no", "planned")


def create_side_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS insights")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {ANOMALY_ALERTS_TABLE} (anomaly_id VARCHAR PRIMARY KEY, "
        "alerted_in_run VARCHAR, alerted_at TIMESTAMPTZ)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {FEEDBACK_TABLE} (anomaly_id VARCHAR, verdict VARCHAR, "
        "note VARCHAR, recorded_by VARCHAR, recorded_at TIMESTAMPTZ)"
    )


@dataclass(frozen=True)
class Recorded:
    anomaly_id: str
    monitor: str
    series: str
    verdict: str
    previous: str | None


def record_feedback(
    con: duckdb.DuckDBPyConnection, anomaly_id: str, verdict: str, note: str | None, by: str
) -> Recorded:
    """Append a verdict; refuses an unknown verdict or an id that is not an anomaly."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
    if not wh.table_exists(con, ANOMALIES_TABLE):
        raise ValueError(
            f"{ANOMALIES_TABLE} does not exist in this warehouse yet: materialize "
            "insights/anomalies first (or point FINOPS_WAREHOUSE at the pipeline's file)"
        )
    found = con.execute(
        f"SELECT monitor, series FROM {ANOMALIES_TABLE} WHERE anomaly_id = ?", [anomaly_id]
    ).fetchall()
    row = found[0] if found else None
    if row is None:
        recent = [
            r[0]
            for r in con.execute(
                f"SELECT anomaly_id FROM {ANOMALIES_TABLE} ORDER BY end_date DESC, anomaly_id "
                "LIMIT 5"
            ).fetchall()
        ]
        raise ValueError(
            f"no anomaly {anomaly_id!r} in {ANOMALIES_TABLE}; the newest are "
            f"{', '.join(recent) or '(none)'} (ids are shown in the UI and in each alert)"
        )
    create_side_tables(con)
    previous = con.execute(
        f"SELECT arg_max(verdict, recorded_at) FROM {FEEDBACK_TABLE} WHERE anomaly_id = ?",
        [anomaly_id],
    ).fetchall()[0][0]
    con.execute(
        f"INSERT INTO {FEEDBACK_TABLE} VALUES (?, ?, ?, ?, now())",
        [anomaly_id, verdict, note, by],
    )
    return Recorded(anomaly_id, row[0], row[1], verdict, previous)
