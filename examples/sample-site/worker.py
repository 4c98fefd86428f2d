"""The sample site's background worker (a supervisor program `sample-worker-stats`): every few seconds
it logs the visit count. It runs the live release; the deploy stops it during migrations and restarts
it on the new release after the switch.
"""

import os
import pathlib
import time

import psycopg2

HERE = pathlib.Path(__file__).resolve().parent
COMMIT = (HERE / "REVISION").read_text().strip() if (HERE / "REVISION").exists() else "unknown"

while True:
    try:
        conn = psycopg2.connect(os.environ.get("DATABASE_URL", ""))
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count FROM visits WHERE id = 1")
            (visits,) = cur.fetchone()
        conn.close()
        print(f"worker of {COMMIT[:7]}: {visits} visits", flush=True)
    except Exception as err:
        print(f"worker of {COMMIT[:7]}: database not ready: {err}", flush=True)
    time.sleep(5)
