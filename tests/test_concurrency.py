"""Concurrent submissions through a real threaded HTTP server: one row per id, no lost writes."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from server.definitions.versions import load_paths
from server.models import Event, Submission

from .conftest import fixture_path
from .test_api_submissions import VALID

THREADS = 20


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture
def form(app, people):
    loaded, problems = load_paths([fixture_path("visit_form.json"), fixture_path("test_flow.json")])
    assert problems == []
    people.make("wgy", "grid_worker@G1")
    return loaded


@pytest.fixture
def server(app, form):
    """The app behind a real threaded HTTP server on a free port; yields the port."""
    httpd = make_server(host="127.0.0.1", port=0, app=app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              name="gridflow-test-server", daemon=True)
    thread.start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def post_all(port: int, token: str, bodies: list[dict]) -> list[tuple[int, dict]]:
    """POST each body from its own thread, all released at the same moment by a barrier."""
    barrier = threading.Barrier(len(bodies))

    def send(body: dict) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            barrier.wait(timeout=30)
            connection.request("POST", "/api/v1/forms/test_visit/submissions", body=payload, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read().decode("utf-8"))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_twenty_retries_of_one_id_at_once_store_one_case(server, people):
    sid = str(uuid.uuid4())
    results = post_all(server, people.tokens["wgy"], [{"id": sid, "grid": "G1", "data": VALID}] * THREADS)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (THREADS - 1) + [201], [body for _, body in results]
    assert {body["id"] for _, body in results} == {sid}
    assert {body["revision"] for _, body in results} == {1}
    assert Submission.select().count() == 1
    # filed once, and its flow started once: 社区审核 waits for the community secretary
    assert [e.kind for e in Event.select().where(Event.submission == sid)] == ["submitted", "task_opened"]
    assert Event.select().count() == 2


def test_twenty_different_submissions_at_once_all_succeed(server, people):
    bodies = [{"id": str(uuid.uuid4()), "grid": "G1", "data": {**VALID, "household": f"住户{i:02d}号"}}
              for i in range(THREADS)]
    results = post_all(server, people.tokens["wgy"], bodies)
    assert [status for status, _ in results] == [201] * THREADS, [body for _, body in results]
    assert sorted(body["id"] for _, body in results) == sorted(b["id"] for b in bodies)
    assert Submission.select().count() == THREADS
    assert Event.select().where(Event.kind == "submitted").count() == THREADS
    assert Event.select().where(Event.kind == "task_opened").count() == THREADS
    stored = {s.id: s.data["household"] for s in Submission.select()}
    assert stored == {b["id"]: b["data"]["household"] for b in bodies}


def test_server_answers_plain_requests(server):
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (200, {"status": "ok"})
    finally:
        connection.close()
