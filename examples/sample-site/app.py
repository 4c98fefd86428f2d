"""The sample site of `verdandi demo`: a tiny ASGI app (run by uvicorn) that says which commit it runs
and counts its visits in PostgreSQL.

    GET /        an HTML page: commit, release, visits
    GET /commit  the commit, as plain text
    GET /health  200 when the database answers and has the tables this release needs

Configuration comes from the environment (the release's .env, written by `verdandi deploy`):
DATABASE_URL (libpq connection string) and GREETING.
"""

import html
import os
import pathlib

import psycopg2

HERE = pathlib.Path(__file__).resolve().parent
REVISION_FILE = HERE / "REVISION"
COMMIT = REVISION_FILE.read_text().strip() if REVISION_FILE.exists() else "unknown"
RELEASE = HERE.name
GREETING = os.environ.get("GREETING", "Hello from Verdandi")
DATABASE_URL = os.environ.get("DATABASE_URL", "")


def query(sql, params=()):
    """Runs one statement in its own transaction; returns the first row, if any."""
    conn = psycopg2.connect(DATABASE_URL)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone() if cur.description else None
    finally:
        conn.close()


async def respond(send, status, body, content_type="text/plain; charset=utf-8"):
    data = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


def page(visits):
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(GREETING)}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>{html.escape(GREETING)}</h1>
<p>This page is served by commit <code>{COMMIT}</code> (release <code>{html.escape(RELEASE)}</code>).</p>
<p>Visits so far: {visits}</p>
</body></html>
"""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/commit":
        await respond(send, 200, COMMIT + "\n")
    elif path == "/health":
        try:
            query("SELECT count(*) FROM visits")
            await respond(send, 200, "ok\n")
        except Exception as err:  # the health check says why it fails
            await respond(send, 503, f"database not ready: {err}\n")
    elif path == "/":
        try:
            (visits,) = query("UPDATE visits SET count = count + 1 WHERE id = 1 RETURNING count")
        except Exception as err:
            await respond(send, 503, f"database not ready: {err}\n")
            return
        await respond(send, 200, page(visits), "text/html; charset=utf-8")
    else:
        await respond(send, 404, "not found\n")
