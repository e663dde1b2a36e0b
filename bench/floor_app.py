"""The floor for bench/ingest.py: a bare Flask handler doing only gridflow's validation and one insert.

It answers POST /submissions with a body `{"id"?, "grid", "data"}`: it parses the JSON, validates
`data` against the schema of forms/door_knock_visit.json with a Draft 2020-12 validator compiled
once at start-up (with gridflow's own format checker, so the format checks cost the same), inserts
one row (id, data as JSON text, created_at) with plain sqlite3 (WAL, synchronous=NORMAL,
busy_timeout), and answers 201 JSON.

The floor handles connections the way gridflow does, so that the comparison is of the work per
request and not of connection handling (see bench/README.md):

- FLOOR_CONNECTION=worker (default; gridflow since commit 00f746c pools its connections): one
  connection per worker thread, opened on first use and kept;
- FLOOR_CONNECTION=request (gridflow before that): a connection opened and closed per request.

Settings from the environment:

- FLOOR_DB: the SQLite file (required; created with its table at start-up).
- FLOOR_FORM: the form definition file (default: forms/door_knock_visit.json of this checkout).
- FLOOR_CONNECTION: `worker` or `request`, as above.
- FLOOR_VALIDATOR: `jsonschema` (default: stock Draft202012Validator) or `gridflow` (gridflow's
  own validator class, so that only the work around validation is compared).

Run: `FLOOR_DB=/tmp/floor.db gunicorn -w 2 --chdir bench floor_app:app`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, request
from jsonschema import Draft202012Validator

from server.formats import format_checker
from server.validation import FormValidator

ROOT = Path(__file__).resolve().parent.parent
BUSY_TIMEOUT_MS = 10_000


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def create_app() -> Flask:
    """Compile the validator once, make the table, and return the one-route app."""
    db_path = os.environ["FLOOR_DB"]
    mode = os.environ.get("FLOOR_CONNECTION") or "worker"
    if mode not in ("worker", "request"):
        raise ValueError(f"FLOOR_CONNECTION must be worker or request, got {mode!r}")
    kept = threading.local()
    form_path = Path(os.environ.get("FLOOR_FORM") or ROOT / "forms" / "door_knock_visit.json")
    schema = json.loads(form_path.read_text(encoding="utf-8"))["schema"]
    Draft202012Validator.check_schema(schema)
    if os.environ.get("FLOOR_VALIDATOR", "jsonschema") == "gridflow":
        # gridflow's validator class (exact multipleOf, fast labelled options) on the plain schema
        validator = FormValidator(schema, format_checker=format_checker())
    else:
        validator = Draft202012Validator(schema, format_checker=format_checker())

    conn = _connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS submission ("
                 "id TEXT PRIMARY KEY, data TEXT NOT NULL, created_at TEXT NOT NULL)")
    conn.close()

    app = Flask(__name__)

    @app.post("/submissions")
    def submit():
        try:
            body = json.loads(request.get_data(cache=False).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {"error": "bad_json"}, 400
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return {"error": "invalid", "errors": [{"path": "/data", "message": "data"}]}, 422
        errors = [{"path": "/" + "/".join(map(str, e.absolute_path)), "message": e.message}
                  for e in validator.iter_errors(data)]
        if errors:
            return {"error": "invalid", "errors": errors}, 422
        sid = str(body.get("id") or uuid.uuid4())
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        if mode == "request":
            conn = _connect(db_path)
        else:
            conn = getattr(kept, "conn", None) or _connect(db_path)
            kept.conn = conn
        try:
            # Autocommit: the one INSERT is its own transaction.
            conn.execute("INSERT INTO submission (id, data, created_at) VALUES (?, ?, ?)",
                         (sid, _dumps(data), now))
        finally:
            if mode == "request":
                conn.close()
        return {"id": sid, "created_at": now}, 201

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


app = create_app() if os.environ.get("FLOOR_DB") else None
