"""The web pages (login, forms, inbox and administration grow here)."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..definitions.versions import latest_forms

bp = Blueprint("pages", __name__)


@bp.get("/")
def home():
    """Show what gridflow serves: the published forms and where the API is."""
    return render_template("pages/home.html", forms=latest_forms())
