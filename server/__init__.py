"""gridflow: a low-code form and workflow server for community grid governance."""

from __future__ import annotations

import secrets
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def _secret_key(instance: Path) -> str:
    """Read the instance's secret key, making one the first time."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: settings, instance config, test overrides, modules, blueprints."""
    from . import db, errors_http, web
    from .config import settings_from_env
    from .views import account, admin, api, fill, health, pages, reports, tasks

    settings = settings_from_env()
    instance_path = (test_config or {}).get("INSTANCE_PATH") or settings["INSTANCE_PATH"]
    app = Flask(__name__, instance_relative_config=True,
                instance_path=str(Path(instance_path).resolve()) if instance_path else None,
                template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.from_mapping(settings)
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.from_mapping(test_config)
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = db.sqlite_url(instance / "gridflow.db")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(instance)
    if not app.config.get("UPLOAD_DIR"):
        app.config["UPLOAD_DIR"] = str(instance / "uploads")
    try:
        ZoneInfo(app.config["TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"GRIDFLOW_TIMEZONE is not a known time zone: {app.config['TIMEZONE']!r}") from None
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    db.init_app(app)
    errors_http.init_app(app)
    web.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    web.csrf.exempt(api.bp)  # token-authenticated, no cookies
    app.register_blueprint(pages.bp)
    app.register_blueprint(fill.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(reports.bp)
    return app
