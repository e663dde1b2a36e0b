"""Production serving with gunicorn, started from the `gridflow serve` command."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication


class GunicornApp(BaseApplication):
    """Run the gridflow app factory under gunicorn with the given options."""

    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from . import create_app
        from .store import start_timer

        app = create_app()
        start_timer(app)
        return app


def serve_gunicorn(host: str, port: int, workers: int, threads: int) -> None:
    """Serve on host:port with gunicorn worker processes and threads."""
    GunicornApp({
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "accesslog": "-",
        "timeout": 60,
    }).run()
