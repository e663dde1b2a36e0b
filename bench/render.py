"""Fill-page benchmark: render time of each shipped form page and the bytes a phone downloads.

Runs in one process against a fresh SQLite instance (the shipped forms, a small tree, one grid
worker signed in through the login form), through Flask's test client, so only gridflow's own work
is timed: session, scope, definition lookup, the widget tree, and Jinja. Each round times, side by
side and in alternating order, the account page (`/account`: the same stack with a small template,
the baseline) and each form's fill page, a submit with errors (everything re-rendered with
messages), and the htmx redraw after a row is added. Reported: median milliseconds over rounds and
the ratio to the baseline of the same round (median of the per-round ratios).

Bytes: the HTML of each fill page raw and gzip-compressed (level 6, what nginx sends by default),
plus the page's own static files (CSS, htmx, fill.js) compressed; the total must stay under 100 KB.

    python bench/render.py [--rounds 7] [--repeat 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORMS = ["door_knock_visit", "incident_report", "dispute_mediation", "resource_request"]
STATIC = ["static/gridflow.css", "static/vendor/htmx/htmx.min.js", "static/fill.js"]
LIMIT = 100_000


def setup(folder: Path):
    """A migrated SQLite instance with the shipped forms, a small tree and a signed-in worker."""
    from server import create_app
    from server.auth import add_membership, create_person
    from server.db import bind, database, migrate_schema, open_database, sqlite_url
    from server.definitions.versions import load_paths
    from server.grids import create_node, seed_configuration

    url = sqlite_url(folder / "bench.db")
    bind(open_database(url))
    migrate_schema()
    with database.atomic():
        seed_configuration()
        parent = None
        for code, name, level in [("C1", "玉林市", "city"), ("D1", "玉州区", "district"),
                                  ("S1", "玉城街道", "street"), ("M1", "城站社区", "community"),
                                  ("G1", "第一网格", "grid")]:
            parent = create_node(code, name, level, parent)
        person = create_person("wgy", "bench-password-1", name="王网格")
        add_membership(person, "G1", "grid_worker")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "INSTANCE_PATH": str(folder / "instance"),
                      "SESSION_COOKIE_SECURE": 0})
    ctx = app.app_context()
    ctx.push()
    loaded, problems = load_paths([ROOT / "forms", ROOT / "flows"])
    assert not problems, problems
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"username": "wgy", "password": "bench-password-1", "csrf_token": token})
    assert response.status_code == 302, response.status_code
    return app, client


def timed(call, repeat: int) -> float:
    """Median milliseconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app, client = setup(Path(tmp))
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          client.get("/account").get_data(as_text=True)).group(1)

        def get(path):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            return response

        def post(path, data, status=200):
            response = client.post(path, data={"csrf_token": token, "_version": "1", "_grid": "G1", **data},
                                   headers={"HX-Request": "true"})
            assert response.status_code == status, (path, response.status_code)

        cases = {"baseline /account": lambda: get("/account")}
        for key in FORMS:
            cases[f"{key} page"] = lambda key=key: get(f"/forms/{key}/new")
        cases["incident_report submit with errors"] = lambda: post(
            "/forms/incident_report/new", {"/description": "短", "_id": "0f8fad5b-d9cb-469f-a165-70867728950e"})
        cases["dispute_mediation add a row (htmx)"] = lambda: post(
            "/forms/dispute_mediation/render", {"/parties/0": "", "/parties/1": "", "_op": "add:/parties"})
        for call in cases.values():  # warm caches: compiled forms, templates
            call()
        results: dict[str, list[float]] = {name: [] for name in cases}
        ratios: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else list(reversed(names))
            round_ms = {name: timed(cases[name], args.repeat) for name in order}
            for name in names:
                results[name].append(round_ms[name])
                ratios[name].append(round_ms[name] / round_ms["baseline /account"])
        static = sum(len(gzip.compress((ROOT / p).read_bytes(), 6)) for p in STATIC)
        lines = ["| page | median ms | × baseline |", "|---|---:|---:|"]
        for name in names:
            lines.append(f"| {name} | {statistics.median(results[name]):.2f} | "
                         f"{statistics.median(ratios[name]):.2f} |")
        lines += ["", f"Static files compressed (CSS + htmx + fill.js): {static / 1000:.1f} KB", "",
                  "| form | HTML bytes | HTML gzip | page total gzip | under 100 KB |", "|---|---:|---:|---:|---|"]
        worst = 0
        for key in FORMS:
            html = get(f"/forms/{key}/new").get_data()
            packed = len(gzip.compress(html, 6))
            total = packed + static
            worst = max(worst, total)
            lines.append(f"| {key} | {len(html):,} | {packed:,} | {total:,} | {'yes' if total < LIMIT else 'NO'} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if worst < LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
