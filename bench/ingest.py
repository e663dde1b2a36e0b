"""Ingest benchmark: door_knock_visit submissions per second through HTTP, gridflow against a floor.

Both servers run under gunicorn with the same worker count, worker class and threads, each on
its own fresh temporary SQLite file, on 127.0.0.1 only:

- gridflow: `gunicorn 'server:create_app()'`, the real API (`POST /api/v1/forms/door_knock_visit/
  submissions` with a grid worker's token), on a database made with `gridflow init-db`, `gridflow
  load`, a grid tree (`gridflow demo`, or a one-branch tree when the demo cannot be built) and
  `gridflow user create` / `gridflow token create`;
- floor: bench/floor_app.py, a bare Flask handler doing only the same schema validation and one
  insert, holding its SQLite connection the way gridflow does (`--floor-connection`: `worker`,
  one kept per worker, as gridflow's pool does since commit 00f746c; `request`, opened and closed
  per request, as gridflow did before).

The same load generator (client processes, one HTTP connection each, http.client) sends the same
request bodies to both, in interleaved rounds (the order alternates each round) so that machine
noise falls on both alike. Reported per server: requests/s (median over rounds), p50/p95 latency,
server CPU per request, errors (any non-2xx fails the run), and the ratio gridflow/floor. After
the run, the rows stored by each server must equal the 201 responses it gave.

    python bench/ingest.py [--duration 10] [--warmup 2] [--rounds 5] [--clients 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from queue import Empty

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FORM_KEY = "door_knock_visit"
# A grid of the demo city (玉林市 > 玉州区 > 玉城街道 > 城站社区 > 第一网格).
TREE = [
    ("450900", "玉林市", "city"),
    ("450902", "玉州区", "district"),
    ("450902001", "玉城街道", "street"),
    ("450902001001", "城站社区", "community"),
    ("450902001001001", "城站社区第一网格", "grid"),
]
GRID = TREE[-1][0]
USERNAME = "bench_wgy"
TARGET = 0.6


# -- request bodies -------------------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚华玉萍红玲建国志海燕春梅东斌德珍庆"
ROADS = ["人民东路", "教育中路", "玉州大道", "城站路", "大北路", "广场东路", "江岸路", "新民路"]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2))))


def _mobile(rng: random.Random) -> str:
    return rng.choice(("138", "139", "150", "177", "186")) + f"{rng.randrange(10**8):08d}"


def _id_card(rng: random.Random, born: datetime) -> str:
    first = f"450902{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first + ID_CHECK[sum(int(d) * w for d, w in zip(first, ID_WEIGHTS, strict=True)) % 11]


def visit_data(rng: random.Random) -> dict:
    """Make one valid door_knock_visit, varied a little.

    Every field the form requires when visible is visible here (the resident was met, the visit
    covered policy publicity and poverty monitoring, a need and a reported issue were found), so
    the data is valid both for gridflow (which drops hidden fields first) and for the floor's plain
    schema validation, and gridflow stores it unchanged.
    """
    visited = datetime(2026, 11, 1, 8, 0) + timedelta(minutes=rng.randrange(30 * 24 * 60))
    topics = ["policy_publicity", "poverty_monitoring"]
    for extra in ("info_collection", "dispute_screening", "hazard_report", "livelihood_service"):
        if rng.random() < 0.5:
            topics.append(extra)
    rng.shuffle(topics)
    head = _name(rng)
    data = {
        "visited_at": visited.strftime("%Y-%m-%dT%H:%M:00+08:00"),
        "met_resident": True,
        "head_name": head,
        "address": f"{rng.choice(ROADS)}{rng.randrange(1, 300)}号{rng.randrange(1, 9)}栋"
                   f"{rng.randrange(1, 4)}单元{rng.randrange(1, 18)}0{rng.randrange(1, 5)}",
        "phone": _mobile(rng),
        "topics": topics,
    }
    if rng.random() < 0.5:
        data["companions"] = f"楼栋长{_name(rng)}、党员志愿者{_name(rng)}"
    if "info_collection" in topics:
        count = rng.randrange(1, 5)
        data["residence_type"] = rng.choice(["registered", "separated", "floating"])
        data["registered_count"] = count
        data["resident_count"] = rng.randrange(0, count + 1)
        members = []
        for i in range(count):
            born = datetime(1940, 1, 1) + timedelta(days=rng.randrange(80 * 365))
            member = {"name": head if i == 0 else _name(rng),
                      "relation": "head" if i == 0 else rng.choice(["spouse", "child", "parent"]),
                      "id_card": _id_card(rng, born), "gender": rng.choice(["male", "female"]),
                      "birth_date": f"{born:%Y-%m-%d}", "is_party_member": rng.random() < 0.2,
                      "whereabouts": rng.choice(["at_home", "migrant_work", "studying_away"]),
                      "occupation": rng.choice(["employed", "farming", "student", "retired"]),
                      "health": rng.choice(["healthy", "chronic"])}
            if rng.random() < 0.5:
                member["phone"] = _mobile(rng)
            members.append(member)
        data["members"] = members
    groups = rng.sample(["elderly_alone", "empty_nest", "disabled", "left_behind_child",
                         "low_income"], rng.choice((0, 0, 1, 2)))
    data["special_groups"] = groups
    if groups:
        data["special_group_notes"] = "独居老人行动不便，需每周探访"
    data.update({
        "policy_items": rng.sample(["education", "pension", "medical_insurance", "anti_fraud",
                                    "laws"], rng.randrange(1, 4)),
        "letter_delivered": rng.random() < 0.8,
        "poverty_risk_found": True,
        "poverty_risk_types": rng.sample(["illness", "disability", "schooling",
                                          "unstable_employment", "income_drop"],
                                         rng.randrange(1, 3)),
        "per_capita_income": rng.randrange(3000, 30000),
        "poverty_risk_notes": "家中主要劳动力今年务工不稳定，医疗支出较大，建议纳入监测。",
        "need_categories": rng.sample(["employment", "medical", "elderly_care", "housing"],
                                      rng.randrange(1, 3)),
        "need_description": rng.choice(["希望社区帮助联系就业岗位", "老人慢性病用药报销咨询",
                                        "申请居家养老服务", "楼道照明损坏，希望尽快维修"]),
        "need_resolved": rng.random() < 0.4,
        "has_issue": True,
        "issue_type": rng.choice(["dispute", "security_hazard", "fire_safety",
                                  "environment_sanitation", "municipal_facility"]),
        "issue_description": rng.choice([
            "楼道内堆放杂物，堵塞消防通道，已提醒住户清理。",
            "邻里因漏水问题发生争执，已初步调解，需社区跟进。",
            "小区路灯损坏多日，夜间出行不便，存在安全隐患。",
        ]),
        # Photos are uploaded before a visit is filed (POST /api/v1/attachments) and a case may only name
        # its author's uploads, so the sample visits carry none: this measures the submission itself.
        # One visit in ten reports its issue, which starts a linked incident (visit_followup's spawn).
        "need_report": rng.random() < 0.1,
        "issue_urgency": rng.choice(["normal", "normal", "urgent"]),
        "location": {"latitude": round(22.6 + rng.random() * 0.1, 6),
                     "longitude": round(110.1 + rng.random() * 0.1, 6),
                     "accuracy": rng.randrange(5, 60), "address": "广西玉林市玉州区"},
        "contact_card_given": rng.random() < 0.7,
        "summary": "已完成入户走访，宣传相关政策，登记诉求和发现的问题。",
    })
    return data


def body_parts(seed: int, variants: int = 64) -> list[tuple[bytes, bytes]]:
    """Pre-serialise request bodies around the id: (head, tail) with the id spliced between."""
    rng = random.Random(seed)
    parts = []
    for _ in range(variants):
        rest = json.dumps({"grid": GRID, "data": visit_data(rng)}, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
        parts.append((b'{"id":"', b'",' + rest[1:]))
    return parts


# -- the load generator ---------------------------------------------------------------------------

@dataclass
class Target:
    """One server under test: where to POST and with which headers."""

    name: str
    port: int
    path: str
    headers: dict[str, str]
    pid: int = 0  # the gunicorn master, for CPU accounting


@dataclass
class ClientResult:
    statuses: dict[int, int] = field(default_factory=dict)  # every response, warm-up included
    measured: int = 0  # responses finished inside the measured window
    latencies: list[float] = field(default_factory=list)  # of the measured ones, seconds
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0  # the client process's CPU seconds


def client_loop(target: Target, seed: int, start_at: float, warmup: float, duration: float,
                queue) -> None:
    """Send requests back to back from start_at for warmup + duration seconds; report to queue."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # die quietly with the run
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parts = body_parts(seed)
    result = ClientResult()
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
    measure_from, stop_at = start_at + warmup, start_at + warmup + duration
    i = 0
    cpu0 = time.process_time()
    time.sleep(max(0.0, start_at - time.monotonic()))
    while True:
        began = time.monotonic()
        if began >= stop_at:
            break
        head, tail = parts[i % len(parts)]
        i += 1
        body = head + str(uuid.uuid4()).encode() + tail
        try:
            conn.request("POST", target.path, body=body, headers=target.headers)
            response = conn.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            status, payload = -1, repr(exc).encode()
        done = time.monotonic()
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if not 200 <= status < 300 and len(result.errors) < 5:
            result.errors.append(f"{status}: {payload[:300].decode('utf-8', 'replace')}")
        if began >= measure_from and done <= stop_at:
            result.measured += 1
            result.latencies.append(done - began)
    conn.close()
    result.cpu = time.process_time() - cpu0
    queue.put(result)


def worker_pids(master: int) -> list[int]:
    """Return the pids of a gunicorn master's worker processes."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry))
    return pids


def cpu_seconds(master: int) -> float:
    """Sum user + system CPU of a gunicorn master's workers, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in worker_pids(master):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


@dataclass
class Phase:
    """One server driven for one round."""

    target: str
    round: int
    rps: float
    latencies: list[float]
    statuses: dict[int, int]
    errors: list[str]
    server_cpu_per_request: float
    client_cpu: float
    created: int


def drive(target: Target, rnd: int, clients: int, warmup: float, duration: float) -> Phase:
    """Run the client processes against one server for one round and gather their results."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start_at = time.monotonic() + 0.5
    procs = [ctx.Process(target=client_loop, daemon=True,
                         args=(target, rnd * 1000 + c, start_at, warmup, duration, queue))
             for c in range(clients)]
    cpu_before = cpu_seconds(target.pid)
    for p in procs:
        p.start()
    try:
        results = [queue.get(timeout=warmup + duration + 120) for _ in procs]
    except Empty:
        codes = [p.exitcode for p in procs]
        raise RuntimeError(f"a client process did not report (exit codes {codes})") from None
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    cpu_used = cpu_seconds(target.pid) - cpu_before
    statuses: dict[int, int] = {}
    for r in results:
        for status, n in r.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    total = sum(statuses.values())
    return Phase(
        target=target.name, round=rnd,
        rps=sum(r.measured for r in results) / duration,
        latencies=[x for r in results for x in r.latencies],
        statuses=statuses, errors=[e for r in results for e in r.errors],
        server_cpu_per_request=cpu_used / total if total else float("nan"),
        client_cpu=sum(r.cpu for r in results),
        created=statuses.get(201, 0),
    )


# -- the servers ----------------------------------------------------------------------------------

def tool(name: str) -> str:
    """Find a console script next to this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: run with the project's venv (make bench)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], env: dict, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


def prepare_gridflow(folder: Path) -> tuple[dict, str, str]:
    """Make gridflow's instance and database; return its environment, a token and how the tree was made."""
    env = {**os.environ, "GRIDFLOW_INSTANCE_PATH": str(folder),
           "DATABASE_URL": f"sqlite:///{folder / 'gridflow.db'}"}
    gridflow = tool("gridflow")
    run([gridflow, "init-db"], env)
    run([gridflow, "load", str(ROOT / "forms"), str(ROOT / "flows")], env)
    demo = run([gridflow, "demo"], env, check=False)
    if demo.returncode == 0:
        tree = "the demo city (`gridflow demo`)"
    else:
        last = (demo.stderr.strip().splitlines() or ["?"])[-1]
        tree = f"one branch of the demo city (`gridflow demo` failed: {last})"
        parent = None
        for code, name, level in TREE:
            cmd = [gridflow, "grid", "add", code, name, "--level", level]
            run(cmd + (["--parent", parent] if parent else []), env)
            parent = code
    run([gridflow, "user", "create", USERNAME, "--password", uuid.uuid4().hex,
         "--role", f"grid_worker@{GRID}"], env)
    token = run([gridflow, "token", "create", USERNAME], env).stdout.strip()
    return env, token, tree


class Server:
    """A gunicorn master started in its own session, stopped with its workers on exit."""

    def __init__(self, name: str, app: str, port: int, env: dict, args, log: Path, chdir: Path):
        worker_class = "gthread" if args.threads > 1 else "sync"
        self.name, self.port, self.log = name, port, log
        cmd = [tool("gunicorn"), "--workers", str(args.workers), "--worker-class", worker_class,
               "--threads", str(args.threads), "--bind", f"127.0.0.1:{port}",
               "--chdir", str(chdir), "--pythonpath", str(ROOT), "--timeout", "60",
               "--log-level", "warning", app]
        self.command = " ".join(cmd[1:])
        self.proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200 and len(worker_pids(self.proc.pid)) > 0:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /healthz within {timeout}s:\n{self.tail()}")

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def post_once(target: Target) -> tuple[int, str]:
    """Send one submission; return its status and body (to fail early with a clear message)."""
    head, tail = body_parts(seed=-1, variants=1)[0]
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
    conn.request("POST", target.path, body=head + str(uuid.uuid4()).encode() + tail,
                 headers=target.headers)
    response = conn.getresponse()
    text = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, text


def count_rows(db: Path, table: str, where: str = "1 = 1") -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}").fetchone()[0]
    finally:
        conn.close()


# -- the report -----------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(phases: list[Phase]) -> dict:
    latencies = [x for p in phases for x in p.latencies]
    return {
        "rps": statistics.median(p.rps for p in phases),
        "rounds": [p.rps for p in phases],
        "p50": percentile(latencies, 0.50) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
        "cpu": statistics.median(p.server_cpu_per_request for p in phases) * 1000,
        "errors": sum(n for p in phases for s, n in p.statuses.items() if not 200 <= s < 300),
        "requests": sum(sum(p.statuses.values()) for p in phases),
    }


def report(args, phases: list[Phase], checks: list[str], tree: str, commands: dict) -> tuple[str, float]:
    floor = summary([p for p in phases if p.target == "floor"])
    grid = summary([p for p in phases if p.target == "gridflow"])
    of_medians = grid["rps"] / floor["rps"] if floor["rps"] else float("nan")
    per_round = [g.rps / f.rps for f, g in zip([p for p in phases if p.target == "floor"],
                                                [p for p in phases if p.target == "gridflow"],
                                                strict=True) if f.rps]
    # The headline is paired: each round measures both servers back to back, so its ratio
    # cancels the drift of a shared machine that a ratio of separate medians keeps.
    ratio = statistics.median(per_round) if per_round else float("nan")
    cpu_ratio = floor["cpu"] / grid["cpu"] if grid["cpu"] else float("nan")
    worker_class = "gthread" if args.threads > 1 else "sync"

    def row(name, s):
        rounds = ", ".join(f"{x:.0f}" for x in s["rounds"])
        return (f"| {name} | {s['rps']:.0f} | {rounds} | {s['p50']:.1f} | {s['p95']:.1f} "
                f"| {s['cpu']:.2f} | {s['requests']} | {s['errors']} |")

    lines = [
        f"### Ingest, {datetime.now().astimezone():%Y-%m-%d %H:%M %z}",
        "",
        f"`python bench/ingest.py --duration {args.duration:g} --warmup {args.warmup:g} "
        f"--rounds {args.rounds} --clients {args.clients} --workers {args.workers} "
        f"--threads {args.threads} --floor-connection {args.floor_connection} "
        f"--floor-validator {args.floor_validator}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform_line()}. gunicorn {args.workers} workers, "
        f"{worker_class} worker class, {args.threads} thread(s) each; {args.clients} client "
        f"processes; {args.duration:g} s measured after {args.warmup:g} s warm-up per round; "
        f"form `{FORM_KEY}`; gridflow's tree: {tree}; gridflow code: {revision()}.",
        "",
        "| server | req/s (median) | req/s per round | p50 ms | p95 ms | server CPU ms/req "
        "| requests | non-2xx |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
        row(f"floor (bench/floor_app.py, connection per {args.floor_connection}, "
            f"{args.floor_validator} validator)", floor),
        row("gridflow (POST /api/v1/forms/…/submissions)", grid),
        "",
        f"**Throughput ratio gridflow/floor: {ratio:.2f}** (median of the per-round ratios: "
        + ", ".join(f"{r:.2f}" for r in per_round)
        + f"; ratio of the median req/s {of_medians:.2f}). "
        f"Target ≥ {TARGET}: **{'met' if ratio >= TARGET else 'NOT met'}**.",
        f"CPU-cost ratio floor/gridflow (server CPU per request): {cpu_ratio:.2f}.",
        "",
        "Checks: " + "; ".join(checks) + ".",
        "",
        "Client CPU per round (all client processes, s): "
        + ", ".join(f"{p.target} r{p.round + 1} {p.client_cpu:.1f}" for p in phases) + ".",
        "",
        "Servers: " + "; ".join(f"{k}: `gunicorn {v}`" for k, v in commands.items()) + ".",
    ]
    return "\n".join(lines), ratio


def revision() -> str:
    """Name the gridflow code measured: the commit, and whether server/ had local changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "server"], cwd=ROOT,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"commit {sha}" + (" with uncommitted changes in server/" if dirty else "")


def platform_line() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        else:
            model = "unknown CPU"
    except OSError:
        model = "unknown CPU"
    return f"{model}, Python {sys.version.split()[0]}"


# -- main -----------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per round")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server (interleaved)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per worker (1: sync workers; more: gthread), both servers")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the Markdown here (default: bench/results/ingest-<time>.md)")
    parser.add_argument("--floor-connection", choices=("worker", "request"), default="worker",
                        help="the floor's SQLite connection: kept per worker (like gridflow's pool) "
                             "or per request (like gridflow before its pool)")
    parser.add_argument("--floor-validator", choices=("jsonschema", "gridflow"), default="jsonschema",
                        help="the floor's validator: stock jsonschema (what a bare handler would use) or "
                             "gridflow's own (to isolate everything but validation)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--gridflow-app", default="server:create_app()", metavar="SPEC",
                        help="gunicorn app spec for gridflow (to try a variant; default: %(default)s)")
    parser.add_argument("--fail-below", type=float, default=None, metavar="RATIO",
                        help="exit 1 when the ratio gridflow/floor is below RATIO")
    return parser.parse_args(argv)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    folder = Path(tempfile.mkdtemp(prefix="gridflow-bench-"))
    servers: list[Server] = []
    try:
        print(f"preparing gridflow's instance in {folder} …", flush=True)
        env, token, tree = prepare_gridflow(folder / "gridflow")
        floor_db = folder / "floor.db"
        grid_db = folder / "gridflow" / "gridflow.db"
        grid_port, floor_port = free_port(), free_port()
        gridflow = Server("gridflow", args.gridflow_app, grid_port, env, args,
                          folder / "gridflow.log", ROOT)
        servers.append(gridflow)
        floor_env = {**os.environ, "FLOOR_DB": str(floor_db), "FLOOR_CONNECTION": args.floor_connection,
                     "FLOOR_VALIDATOR": args.floor_validator}
        floor = Server("floor", "floor_app:app", floor_port, floor_env, args, folder / "floor.log", BENCH)
        servers.append(floor)
        for server in servers:
            server.wait_ready()
        json_headers = {"Content-Type": "application/json"}
        targets = {
            "floor": Target("floor", floor_port, "/submissions", json_headers, floor.proc.pid),
            "gridflow": Target("gridflow", grid_port, f"/api/v1/forms/{FORM_KEY}/submissions",
                               {**json_headers, "Authorization": f"Bearer {token}"},
                               gridflow.proc.pid),
        }
        # gridflow's visits that report an issue also start a linked incident: count the visits only.
        visits = {"gridflow": f"form = '{FORM_KEY}'", "floor": "1 = 1"}
        baseline = {"gridflow": count_rows(grid_db, "submission", visits["gridflow"]),
                    "floor": count_rows(floor_db, "submission")}
        created = {"floor": 0, "gridflow": 0}
        for name, target in targets.items():
            status, text = post_once(target)
            if status != 201:
                raise RuntimeError(f"{name} refused a sample submission: {status} {text[:2000]}")
            created[name] += 1

        phases: list[Phase] = []
        for rnd in range(args.rounds):
            order = ["floor", "gridflow"] if rnd % 2 == 0 else ["gridflow", "floor"]
            for name in order:
                phase = drive(targets[name], rnd, args.clients, args.warmup, args.duration)
                phases.append(phase)
                created[name] += phase.created
                bad = sum(n for s, n in phase.statuses.items() if not 200 <= s < 300)
                print(f"round {rnd + 1} {name:<8} {phase.rps:8.1f} req/s  "
                      f"p50 {percentile(phase.latencies, .5) * 1000:6.1f} ms  "
                      f"cpu {phase.server_cpu_per_request * 1000:5.2f} ms/req  "
                      f"non-2xx {bad}", flush=True)
                for error in phase.errors[:3]:
                    print(f"    {error}", flush=True)

        checks, ok = [], True
        for name, db in (("gridflow", grid_db), ("floor", floor_db)):
            stored = count_rows(db, "submission", visits[name]) - baseline[name]
            same = stored == created[name]
            ok &= same
            checks.append(f"{name} stored {stored} rows for {created[name]} × 201 "
                          f"({'equal' if same else 'MISMATCH'})")
        # Each case has one `submitted` event; its flow (visit_followup) adds its own events after it.
        firsts = count_rows(grid_db, "event", "kind = 'submitted'") - count_rows(grid_db, "submission")
        spawned = count_rows(grid_db, "submission", "form = 'incident_report'")
        checks.append(f"gridflow incidents started by visits that reported an issue: {spawned}")
        ok &= firsts == 0
        checks.append(f"gridflow `submitted` events − submissions = {firsts}")
        errors = sum(n for p in phases for s, n in p.statuses.items() if not 200 <= s < 300)
        if errors:
            ok = False
            checks.append(f"{errors} non-2xx responses: the run is INVALID")

        commands = {s.name: s.command for s in servers}
        text, ratio = report(args, phases, checks, tree, commands)
        print("\n" + text)
        out = args.out or BENCH / "results" / f"ingest-{datetime.now():%Y%m%d-%H%M%S}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        print(f"\nwritten to {out}")
        if not ok:
            return 1
        if args.fail_below is not None and ratio < args.fail_below:
            return 1
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
