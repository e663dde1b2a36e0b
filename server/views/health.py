"""Liveness and database check."""

from __future__ import annotations

import logging

from flask import Blueprint
from peewee import PeeweeException

from ..db import database

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    """Answer ok when the database answers a query."""
    try:
        database.execute_sql("SELECT 1").fetchone()
    except PeeweeException:
        log.exception("health check failed")
        return {"status": "error", "message": "数据库无法访问"}, 503
    return {"status": "ok"}
