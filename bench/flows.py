"""Flow benchmark: actions per second through the API, and the inbox with 100,000 open tasks.

Runs in one process on a fresh SQLite instance with the demo city (`build_demo`) and the shipped
forms and flows, through Flask's test client, so only gridflow's own work is timed.

1. Actions: rounds alternate between filing incidents (`POST /api/v1/forms/incident_report/
   submissions`, which also starts the flow and opens 网格长分级分流) and acting on them
   (`POST /api/v1/tasks/{id}/actions` 上报社区 by the grid leader: engine, revision check, tasks,
   events). Reported per second, and the ratio action/submit from the same rounds.
2. Inbox: a community secretary's inbox page (`GET /tasks`) and `GET /api/v1/tasks`, measured with
   the secretary's own 50 tasks among few others, then again after 100,000 open tasks are added
   across every community of the city (bulk-inserted rows shaped exactly as the store writes them).
   The ratio big/small says how the inbox scales with the size of the city's workload.

    python bench/flows.py [--actions 200] [--tasks 100000] [--repeat 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from render import timed  # noqa: E402  (the same median timer as the render benchmark)

INCIDENT = {"category": "fire_safety", "urgency": "normal", "description": "楼道堆放杂物，影响通行",
            "occurred_at": "2026-11-20T09:30:00", "location": {"latitude": 22.63, "longitude": 110.15},
            "source": "grid_patrol"}
GRID = "450902001001001"


def setup(folder: Path):
    from server import create_app
    from server.db import bind, migrate_schema, open_database, sqlite_url

    url = sqlite_url(folder / "bench.db")
    bind(open_database(url))
    migrate_schema()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "INSTANCE_PATH": str(folder / "instance"),
                      "SESSION_COOKIE_SECURE": 0, "SWEEP_SECONDS": 0})
    app.app_context().push()
    from server.definitions.versions import load_paths
    from server.demo import build_demo

    build_demo("bench-password")
    loaded, problems = load_paths([ROOT / "forms", ROOT / "flows"])
    assert not problems, problems
    return app


def token(username: str) -> dict:
    from server.auth import create_token
    from server.models import Person

    return {"Authorization": "Bearer " + create_token(Person.get(Person.username == username), "bench")}


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else 0.0


def bench_actions(client, n: int, rounds: int = 5) -> list[str]:
    worker, leader = token("wgy"), token("wgz")
    submit_rates, act_rates = [], []
    for _ in range(rounds):
        ids = []
        start = time.perf_counter()
        for _ in range(n // rounds):
            r = client.post("/api/v1/forms/incident_report/submissions", headers=worker,
                            json={"grid": GRID, "data": INCIDENT})
            assert r.status_code == 201, r.get_json()
            ids.append(r.get_json()["id"])
        submit_rates.append(rate(len(ids), time.perf_counter() - start))
        tasks = [t for t in client.get("/api/v1/tasks?limit=200", headers=leader).get_json()["items"]
                 if t["case"] in set(ids)]
        start = time.perf_counter()
        for t in tasks:
            r = client.post(f"/api/v1/tasks/{t['id']}/actions", headers=leader,
                            json={"action": "to_community", "comment": "需社区协调"})
            assert r.status_code == 200, r.get_json()
        act_rates.append(rate(len(tasks), time.perf_counter() - start))
    ratios = [a / s for a, s in zip(act_rates, submit_rates, strict=True)]
    return ["| operation | per second (median of 5 rounds) | × submit |", "|---|---:|---:|",
            f"| submit an incident (flow starts, triage opens) | {statistics.median(submit_rates):.0f} | 1.00 |",
            f"| act on a task (上报社区) | {statistics.median(act_rates):.0f} | {statistics.median(ratios):.2f} |"]


def add_open_tasks(total: int) -> int:
    """Bulk-insert open tasks across every community, as the store writes them (cases, tasks, assignees)."""
    from server.db import database
    from server.definitions.versions import latest_form
    from server.models import GridNode, Membership, Submission, Task, TaskAssignee, utcnow

    version = latest_form("incident_report")
    communities = list(GridNode.select().where(GridNode.level == "community"))
    grids = {c.id: list(GridNode.select().where(GridNode.parent == c.id)) or [c] for c in communities}
    secretaries = {m.node_id: m.person_id for m in Membership.select().where(Membership.role == "community_secretary")}
    worker = Membership.select().where(Membership.role == "grid_worker").first().person_id
    now = utcnow()
    made = 0
    batch = 2000
    while made < total:
        subs, tasks = [], []
        for i in range(min(batch, total - made)):
            c = communities[(made + i) % len(communities)]
            g = grids[c.id][(made + i) % len(grids[c.id])]
            sid = str(uuid.uuid4())
            at = now - timedelta(minutes=made + i)
            subs.append({"id": sid, "form": "incident_report", "version": version.version, "form_version": version.id,
                         "grid": g.id, "grid_code": g.code, "grid_path": g.path, "status": "in_progress",
                         "current_nodes": json.dumps(["community_handling"]), "data": json.dumps(INCIDENT),
                         "search_text": "", "request_hash": sid, "revision": 2, "created_by": worker,
                         "created_at": at, "updated_at": at})
            tasks.append({"submission": sid, "key": "t2", "node": "community_handling", "title": "社区处置",
                          "mode": "any", "state": "open", "form": "incident_report", "grid_path": g.path,
                          "due_at": at + timedelta(days=14), "overdue": (made + i) % 20 == 0, "opened_at": at,
                          "escalations": 0, "_secretary": secretaries.get(c.id)})
        with database.atomic():
            Submission.insert_many(subs).execute()
            for t in tasks:
                person = t.pop("_secretary")
                tid = Task.insert(**t).execute()
                if person:
                    TaskAssignee.insert(task=tid, person=person, active=True).execute()
        made += len(subs)
    return made


def bench_inbox(app, client, total: int, repeat: int) -> list[str]:
    import re

    from server.models import Person, TaskAssignee

    secretary = Person.get(Person.username == "sq_shuji")
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": "sq_shuji", "password": "bench-password", "csrf_token": csrf})
    assert r.status_code == 302, r.status_code
    headers = token("sq_shuji")

    def page_call():
        assert client.get("/tasks").status_code == 200

    def api_call():
        assert client.get("/api/v1/tasks", headers=headers).status_code == 200

    page_call(), api_call()
    small = {"page": timed(page_call, repeat), "api": timed(api_call, repeat)}
    mine_before = TaskAssignee.select().where((TaskAssignee.person == secretary.id) & TaskAssignee.active).count()
    start = time.perf_counter()
    added = add_open_tasks(total)
    fill = time.perf_counter() - start
    mine_after = TaskAssignee.select().where((TaskAssignee.person == secretary.id) & TaskAssignee.active).count()
    page_call(), api_call()
    big = {"page": timed(page_call, repeat), "api": timed(api_call, repeat)}
    return [f"Open tasks added: {added:,} across the city ({fill:.0f} s to insert); the secretary's own open "
            f"tasks: {mine_before} before, {mine_after:,} after (the page shows the 100 most urgent).", "",
            "| inbox | ms, few tasks | ms, with the city's tasks | × |", "|---|---:|---:|---:|",
            f"| `/tasks` page (待办) | {small['page']:.1f} | {big['page']:.1f} | {big['page'] / small['page']:.2f} |",
            f"| `GET /api/v1/tasks` (50 items) | {small['api']:.1f} | {big['api']:.1f} | "
            f"{big['api'] / small['api']:.2f} |"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = setup(Path(tmp))
        client = app.test_client()
        lines = bench_actions(client, args.actions) + [""] + bench_inbox(app, client, args.tasks, args.repeat)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
