"""`gridflow demo --history N`: a year of past cases filed and handled through the real engine."""

from __future__ import annotations

import logging
import re
import uuid
from collections import defaultdict
from datetime import date, timedelta

import pytest

from server.auth import person_for_token
from server.demo_history import NAMESPACE as HISTORY_NAMESPACE
from server.demo_samples import NAMESPACE, SAMPLES
from server.models import CaseLink, Event, Submission, Task, TaskAssignee, utcnow

from .test_cli import ok, run

HISTORY = 60


@pytest.fixture
def history(runner, shipped, caplog):
    """The demo city with 60 past cases, built by the command `make run` uses."""
    started = utcnow()
    with caplog.at_level(logging.WARNING, logger="server.demo_history"):
        result = run(runner, "demo", "--history", HISTORY)
    ok(result)
    return result, started, caplog


def _filed() -> list[str]:
    return [str(uuid.uuid5(HISTORY_NAMESPACE, str(i))) for i in range(HISTORY)]


def _past():
    """The past cases: those the history filed and those their visits reported (spawned)."""
    children = [link.target_id for link in CaseLink.select().where(CaseLink.source.in_(_filed()))]
    return Submission.select().where(Submission.id.in_(_filed() + children))


def _samples():
    return [str(uuid.uuid5(NAMESPACE, f"{form}-{i}")) for i, (form, *_rest) in enumerate(SAMPLES)]


def test_every_past_case_is_filed_without_a_refusal(history):
    result, _started, caplog = history
    assert f"另有过去一年的 {HISTORY} 个历史案件" in result.stdout
    assert [r.getMessage() for r in caplog.records if r.name == "server.demo_history"] == []
    assert Submission.select().where(Submission.id.in_(_filed())).count() == HISTORY


def test_past_cases_spread_over_the_year_and_every_form(history):
    _result, started, _log = history
    cases = list(_past())
    created = [c.created_at for c in cases]
    assert max(created) <= started
    assert min(created) >= started - timedelta(days=366)
    assert len({(d.year, d.month) for d in created}) >= 8
    assert {c.form for c in cases} == {"door_knock_visit", "incident_report", "dispute_mediation",
                                      "resource_request"}


def test_each_case_was_handled_in_time_order_and_never_in_the_future(history):
    _result, started, _log = history
    finished = utcnow()
    moments = defaultdict(list)
    for e in Event.select().where(Event.submission.in_(_past())).order_by(Event.id):
        moments[e.submission_id].append(e.at)
    assert moments
    for sid, ats in moments.items():
        case = Submission.get_by_id(sid)
        assert ats[0] == case.created_at, sid
        assert ats == sorted(ats), sid  # the clock only moves forward within a case
        assert ats[-1] <= finished, sid
    for task in Task.select().where(Task.submission.in_(_past())):
        assert task.opened_at >= Submission.get_by_id(task.submission_id).created_at
        if task.closed_at:
            assert task.opened_at <= task.closed_at <= finished
    acted = TaskAssignee.select().where(TaskAssignee.acted_at.is_null(False)).count()
    assert acted > HISTORY  # people really acted, through the engine


def test_most_past_cases_are_closed_some_late_some_still_open(history):
    cases = list(_past())
    closed = [c for c in cases if c.status == "closed"]
    assert len(closed) >= 0.75 * len(cases)
    assert all(c.closed_at and c.closed_at >= c.created_at for c in closed)
    long_ago = utcnow() - timedelta(days=30)
    assert sum(c.closed_at < long_ago for c in closed) >= 0.5 * len(closed)  # handled in the past, not today
    assert any(c.status == "in_progress" for c in cases)
    assert any(c.late for c in cases) and sum(c.late for c in cases) < 0.4 * len(cases)
    rated = [c for c in cases if c.rating]
    assert rated and all(c.form in ("incident_report", "dispute_mediation", "resource_request") for c in rated)
    resolved = [c for c in closed if c.form == "dispute_mediation" and c.outcome == "resolved"]
    assert resolved


def test_the_dashboard_of_the_demo_has_figures(history, client):
    result, _started, _log = history
    token = next(t for t in re.findall(r"gf_[A-Za-z0-9_-]+", result.stdout)
                 if person_for_token(t).username == "admin")
    today = date.today()
    response = client.get("/api/v1/stats", query_string={"period": "custom", "from": today - timedelta(days=366),
                                                          "to": today},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    totals = response.get_json()["totals"]
    assert totals["reported"] == Submission.select().count()
    assert totals["closed"] == Submission.select().where(Submission.status == "closed").count()
    assert 0 < totals["closure_rate"] < 1
    assert totals["avg_handling_hours"] > 1
    assert totals["satisfaction_rate"] is not None and totals["rated"] >= 5
    assert totals["mediation_success_rate"] is not None
    trend = response.get_json()["trend"]
    assert sum(1 for point in trend if point["reported"]) >= 8


def test_without_history_the_demo_has_only_its_samples(runner, shipped):
    started = utcnow()
    ok(run(runner, "demo", "--history", 0))
    spawned = [link.target_id for link in CaseLink.select()]
    assert sorted(s.id for s in Submission.select() if s.id not in spawned) == sorted(_samples())
    assert all(s.created_at >= started for s in Submission.select())
