"""Scale benchmark: lists, inbox, dashboards and exports on a city-sized dataset (bench/dataset.py).

For each database given (SQLite file and/or PostgreSQL URL, both made by bench/dataset.py), the
real application answers through Flask's test client, signed in as the dataset's well-known
people: the community secretary's inbox (`/tasks`), the street officer's case list filtered by a
form field (web page and API, first and second page), the city's dashboard for a year (API and
page), a community's dashboard for a year, and the export of 100,000 rows to CSV and to Excel.

Requests are timed in rounds that interleave every case with the baseline (`/account`: the same
stack with a tiny template), so noise lands on all of them; reported are p50 and p95 in
milliseconds over all requests and the ratio of each case's median to the baseline's. Exports run
in a child process each (so its peak memory is its own): rows per second and the peak resident
memory (ru_maxrss) of the child, next to a child that exports 10 rows (the process's own floor).

    python bench/scale.py [--sqlite /tmp/gridflow-city.db] [--postgres postgresql:///gridflow_city]
                          [--rounds 6] [--repeat 10] [--export-rows 100000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-scale-password-1"
PEOPLE = ("bench_secretary", "bench_street", "bench_city")
TARGETS = {"list": 50.0, "inbox": 50.0, "dashboard": 500.0, "export_mb": 300.0}


def app_for(url: str, set_passwords: bool = True):
    """The real application on a dataset, with the benchmark people able to sign in."""
    from server import create_app
    from server.auth import hash_password
    from server.db import bind, open_database
    from server.models import Person

    bind(open_database(url))
    if set_passwords:  # hashing is memory-hard: the export children skip it to measure only the export
        Person.update(password_hash=hash_password(PASSWORD)).where(Person.username.in_(PEOPLE)).execute()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "INSTANCE_PATH": "/tmp/gridflow-scale-instance",
                      "SESSION_COOKIE_SECURE": 0, "SWEEP_SECONDS": 600})
    return app


def signed_in(app, username: str):
    """A test client signed in through the login form."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, (username, response.status_code)
    return client


def api_token(app, username: str) -> str:
    """A bearer token for a person."""
    from server.auth import create_token
    from server.models import Person

    with app.app_context():
        return create_token(Person.get(Person.username == username), "bench")


def facts(app) -> dict:
    """What the cases are measured on: the people's nodes, a busy category, a year with data."""
    from server.db import database
    from server.models import GridNode, Membership, Person, Submission

    with app.app_context():
        def node_of(username):
            m = (Membership.select(Membership, GridNode).join(GridNode)
                 .join_from(Membership, Person).where(Person.username == username).get())
            return m.node
        street, community = node_of("bench_street"), node_of("bench_secretary")
        year = (Submission.select(Submission.created_at).order_by(Submission.created_at.desc()).limit(1)
                .scalar()).year - 1
        row = database.execute_sql(
            "SELECT COUNT(*) FROM submission WHERE form = 'incident_report' AND grid_path LIKE "
            + database.param, (street.path + "%",)).fetchone()
        return {"street": street.code, "street_path": street.path, "community": community.code,
                "year": year, "street_incidents": row[0]}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, int(-(-q * len(ordered) // 1)) - 1)]


def measure(app, f: dict, rounds: int, repeat: int) -> dict[str, dict]:
    """Time every case in interleaved rounds; return p50, p95 and the ratio to the baseline."""
    secretary, street, city = (signed_in(app, u) for u in PEOPLE)
    street_token = api_token(app, "bench_street")
    auth = {u: {"Authorization": f"Bearer {api_token(app, u)}"} for u in ("bench_city", "bench_secretary")}
    year = f["year"]
    listing = f"form=incident_report&f.category=environment_sanitation&grid={f['street']}"
    cursor: dict[str, str | None] = {}

    def get(client, path, headers=None):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True)[:300])
        return response

    def api_page(n: int):
        path = f"/api/v1/submissions?{listing}&limit=50"
        if n == 2:
            path += f"&cursor={cursor['api']}"
        body = get(street, path, {"Authorization": f"Bearer {street_token}"}).get_json()
        cursor["api"] = cursor.get("api") or body["next"]

    first = get(street, f"/api/v1/submissions?{listing}&limit=50",
                {"Authorization": f"Bearer {street_token}"}).get_json()
    cursor["api"] = first["next"]
    cases = {
        "baseline /account (street officer)": ("base", lambda: get(street, "/account")),
        "inbox: community secretary /tasks": ("inbox", lambda: get(secretary, "/tasks")),
        "list: street officer, incident category, web": ("list", lambda: get(street, f"/reports/cases?{listing}")),
        "list: same, API page 1": ("list", lambda: api_page(1)),
        "list: same, API page 2 (cursor)": ("list", lambda: api_page(2)),
        "dashboard: city, year, API": (
            "dashboard", lambda: get(city, f"/api/v1/stats?period=year&at={year}-06-01", auth["bench_city"])),
        "dashboard: city, year, page": ("dashboard", lambda: get(city, f"/reports/?period=year&at={year}-06-01")),
        "dashboard: city, custom 15 Mar–20 Sep, API": (
            "dashboard", lambda: get(city, f"/api/v1/stats?period=custom&from={year}-03-15&to={year}-09-20",
                                     auth["bench_city"])),
        "dashboard: community, year, API": (
            "dashboard", lambda: get(secretary, f"/api/v1/stats?grid={f['community']}&period=year&at={year}-06-01",
                                     auth["bench_secretary"])),
    }
    for _, call in cases.values():  # warm: compiled forms, templates, database caches
        call()
        call()
    times: dict[str, list[float]] = {name: [] for name in cases}
    medians: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for r in range(rounds):
        order = names if r % 2 == 0 else list(reversed(names))
        for name in order:
            call = cases[name][1]
            batch = []
            for _ in range(repeat):
                start = time.perf_counter()
                call()
                batch.append((time.perf_counter() - start) * 1000)
            times[name] += batch
            medians[name].append(statistics.median(batch))
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr)
    base = medians[names[0]]
    out = {}
    for name, (kind, _) in cases.items():
        ratios = [m / b for m, b in zip(medians[name], base, strict=True)]
        out[name] = {"kind": kind, "p50": statistics.median(times[name]), "p95": percentile(times[name], 0.95),
                     "ratio": statistics.median(ratios), "n": len(times[name])}
    return out


EXPORT_CHILD = r'''
import json, resource, sys, time
sys.path.insert(0, {root!r})
sys.argv = ["x"]
from bench.scale import app_for, signed_in
app = app_for({url!r}, set_passwords=False)
client = signed_in(app, "bench_city")
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
before = rss("VmHWM:")
start = time.perf_counter()
response = client.get({path!r}, buffered=False)
size = rows = 0
for chunk in response.response:
    size += len(chunk)
    if {kind!r} == "csv":
        rows += chunk.count(b"\n")
response.close()
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "bytes": size, "csv_lines": rows, "before_mb": before,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
'''


def _day(value) -> date:
    return (value if isinstance(value, datetime) else datetime.fromisoformat(str(value))).date()


def export_window(app, rows: int) -> tuple[str, str, int]:
    """Local days from and to that hold about `rows` door-knocking visits, the newest ones."""
    from server.db import database
    from server.models import Submission

    with app.app_context():
        found = database.execute_sql(
            "SELECT created_at FROM submission WHERE form = 'door_knock_visit' ORDER BY created_at DESC "
            f"LIMIT 1 OFFSET {int(rows)}").fetchone()
        last = database.execute_sql("SELECT MAX(created_at) FROM submission").fetchone()[0]
        start = _day(found[0]) + timedelta(days=1) if found else date(2000, 1, 1)
        end = _day(last) + timedelta(days=1)
        since = datetime.combine(start, datetime.min.time()) - timedelta(hours=8)
        count = (Submission.select().where((Submission.form == "door_knock_visit")
                                           & (Submission.created_at >= since)).count())
    return start.isoformat(), end.isoformat(), count


def measure_exports(url: str, app, rows: int) -> dict[str, dict]:
    """Export about `rows` visits to CSV and Excel in child processes; rows/s and peak memory."""
    start, end, count = export_window(app, rows)
    out = {}
    small = f"/reports/cases.csv?form=door_knock_visit&from={end}&to={end}"
    for label, kind, path in (
            ("floor: CSV of one day", "csv", small),
            (f"CSV, {count:,} visits", "csv", f"/reports/cases.csv?form=door_knock_visit&from={start}&to={end}"),
            (f"Excel, {count:,} visits", "xlsx", f"/reports/cases.xlsx?form=door_knock_visit&from={start}&to={end}")):
        code = EXPORT_CHILD.format(root=str(ROOT), url=url, path=path, kind=kind)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["rows"] = count if "floor" not in label else None
        if result["rows"]:
            result["rows_per_second"] = count / result["seconds"]
        out[label] = result
        print(f"  {label}: {result}", file=sys.stderr)
    return out


def report(name: str, url: str, f: dict, timings: dict, exported: dict) -> str:
    """A Markdown section for one database."""
    lines = [f"### {name}", "", f"Dataset: `{url}`; year measured {f['year']}; street {f['street']} "
             f"({f['street_incidents']:,} incident reports in its subtree); community {f['community']}.", "",
             "| case | p50 ms | p95 ms | × baseline (median) | target | n |", "|---|---:|---:|---:|---|---:|"]
    for case, t in timings.items():
        target = TARGETS.get(t["kind"])
        mark = "" if target is None else (f"p95 < {target:g} ms " + ("✓" if t["p95"] < target else "✗"))
        lines.append(f"| {case} | {t['p50']:.1f} | {t['p95']:.1f} | {t['ratio']:.2f} | {mark} | {t['n']} |")
    lines += ["", "| export | rows | seconds | rows/s | RSS before MB | peak RSS MB | target |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for label, e in exported.items():
        ok = "" if not e.get("rows") else ("< 300 MB " + ("✓" if e["maxrss_mb"] < TARGETS["export_mb"] else "✗"))
        rate = f"{e['rows_per_second']:,.0f}" if e.get("rows_per_second") else "—"
        lines.append(f"| {label} | {e['rows'] or '—'} | {e['seconds']:.1f} | {rate} | {e['before_mb']:.0f} "
                     f"| {e['maxrss_mb']:.0f} | {ok} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", default=None, help="SQLite file made by bench/dataset.py")
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL of a database made by bench/dataset.py")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--skip-exports", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    targets = []
    if args.sqlite:
        targets.append(("SQLite", f"sqlite:///{Path(args.sqlite).resolve()}"))
    if args.postgres:
        targets.append(("PostgreSQL", args.postgres))
    if not targets:
        parser.error("give --sqlite and/or --postgres")
    sections = [f"## scale.py run of {time.strftime('%Y-%m-%d %H:%M')}\n",
                f"`python bench/scale.py {' '.join(sys.argv[1:])}`\n"]
    for name, url in targets:
        print(f"{name}: {url}", file=sys.stderr)
        app = app_for(url)
        f = facts(app)
        with app.app_context():
            from server import stats

            started = time.perf_counter()
            months = stats.refresh(*stats.settings()[:2])
            print(f"  refresh: {len(months)} months in {time.perf_counter() - started:.2f} s", file=sys.stderr)
        timings = measure(app, f, args.rounds, args.repeat)
        exported = {} if args.skip_exports else measure_exports(url, app, args.export_rows)
        sections.append(report(name, url, f, timings, exported))
        print(sections[-1])
    text = "\n".join(sections)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
