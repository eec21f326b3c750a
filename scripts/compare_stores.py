"""Compare what two study folders stored, row for row, leaving out the columns that record times.

Used to check that a change of the code leaves a study's numbers bit for bit as they were: run the same study before
and after into two folders, then

    python scripts/compare_stores.py BEFORE/study.sqlite AFTER/study.sqlite

Prints each table's row count and whether its rows are identical; exits 1 if any table differs.
"""

from __future__ import annotations

import sqlite3
import sys

#: Columns that hold wall-clock times, timestamps or the machine, which differ between any two runs.
TIMING = {"wall_time_s", "extra", "meta"}


def table_rows(conn: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple[object, ...]]]:
    columns = [r[1] for r in conn.execute(f"pragma table_info({table})")]
    keep = [c for c in columns if c not in TIMING and not c.endswith("_at")]
    order = ",".join(keep)
    return keep, conn.execute(f"select {order} from {table} order by {order}").fetchall()


def main(before: str, after: str) -> int:
    a, b = sqlite3.connect(before), sqlite3.connect(after)
    tables = [r[0] for r in a.execute("select name from sqlite_master where type='table' order by name")]
    differs = False
    for table in tables:
        columns, rows = table_rows(a, table)
        _, other = table_rows(b, table)
        same = rows == other
        differs |= not same
        print(f"{table:14s} {len(rows):6d} rows  identical={same}  ({', '.join(columns)})")
    return 1 if differs else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
