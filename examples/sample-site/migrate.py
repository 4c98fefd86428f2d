"""Applies migrations/*.sql in name order, each once, each in one transaction with its record in
schema_migrations (PostgreSQL DDL is transactional: a failing migration leaves nothing behind).

    python migrate.py          apply the pending migrations
    python migrate.py --check  exit 0 when none is pending, 1 when some are (changes nothing)
"""

import os
import pathlib
import sys

import psycopg2

MIGRATIONS = sorted((pathlib.Path(__file__).resolve().parent / "migrations").glob("*.sql"))


def applied(cur):
    cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not cur.fetchone()[0]:
        return set()
    cur.execute("SELECT name FROM schema_migrations")
    return {row[0] for row in cur.fetchall()}


def main():
    conn = psycopg2.connect(os.environ["DATABASE_URL"])
    with conn, conn.cursor() as cur:
        pending = [m for m in MIGRATIONS if m.name not in applied(cur)]
    if "--check" in sys.argv:
        for m in pending:
            print(f"pending: {m.name}")
        sys.exit(1 if pending else 0)
    for m in pending:
        print(f"applying {m.name}", flush=True)
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            cur.execute(m.read_text())
            cur.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (m.name,))
    print(f"{len(pending)} migration(s) applied")


if __name__ == "__main__":
    main()
