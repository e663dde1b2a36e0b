"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

import functools

from .lists import OUTCOMES, SORTS


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def _path(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


AUTH_ERRORS = {"401": _error("缺少或无效的访问令牌")}
BODY_ERRORS = {
    "400": _error("请求体不是有效的 JSON、不是对象，或嵌套过深"),
    "413": _error("请求体过大"),
    "415": _error("Content-Type 不是 application/json"),
}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error", "message", "errors"],
        "properties": {
            "error": {"type": "string", "description": "Stable code, e.g. invalid, not_found."},
            "message": {"type": "string", "description": "中文说明"},
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["path", "message"],
                "properties": {"path": {"type": "string", "description": "JSON Pointer"},
                               "message": {"type": "string"}}}},
        },
    },
    "FormSummary": {
        "type": "object",
        "properties": {"key": {"type": "string"}, "title": {"type": "string"},
                       "version": {"type": "integer"}, "flow": {"type": ["string", "null"]}},
    },
    "Form": {
        "type": "object",
        "properties": {"key": {"type": "string"}, "title": {"type": "string"},
                       "version": {"type": "integer"}, "description": {"type": ["string", "null"]},
                       "overlays": {"type": "array", "items": _ref("OverlayRef"),
                                    "description": "Township adaptations applied for the grid, top down."},
                       "schema": {"type": "object"}, "ui": {"type": "object"},
                       "flow": {"type": ["string", "null"]}},
    },
    "OverlayRef": {
        "type": "object",
        "properties": {"grid": {"type": "string"}, "version": {"type": "integer"}},
    },
    "NewSubmission": {
        "type": "object",
        "required": ["grid", "data"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "format": "uuid",
                   "description": "Client-chosen id; sending the same id and data again is a safe retry."},
            "grid": {"type": "string", "description": "Grid code the case belongs to."},
            "data": {"type": "object", "description": "The form data, valid against the form's schema."},
        },
    },
    "Edit": {
        "type": "object",
        "required": ["data", "revision"],
        "additionalProperties": False,
        "properties": {"data": {"type": "object"},
                       "revision": {"type": "integer", "description": "The revision being replaced."}},
    },
    "Submission": {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "form": {"type": "string"}, "version": {"type": "integer"},
            "grid": {"type": "string"}, "status": {"type": "string"}, "data": {"type": "object"},
            "created_by": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"}, "revision": {"type": "integer"},
        },
    },
    "Event": {
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"}, "actor": {"type": ["string", "null"]},
            "kind": {"type": "string"}, "node": {"type": ["string", "null"]},
            "comment": {"type": ["string", "null"]}, "from_status": {"type": ["string", "null"]},
            "to_status": {"type": ["string", "null"]}, "revision": {"type": ["integer", "null"]},
            "diff": {"type": ["array", "null"], "description": "RFC 6902 patch from the previous data."},
        },
    },
    "Case": {
        "allOf": [_ref("Submission"), {
            "type": "object",
            "properties": {"overlays": {"type": "array", "items": _ref("OverlayRef")},
                           "tasks": {"type": "array", "items": _ref("Task")},
                           "history": {"type": "array", "items": _ref("Event")},
                           "outcome": {"type": ["string", "null"]}},
        }],
    },
    "Task": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "case": {"type": "string"}, "form": {"type": "string"},
            "grid": {"type": "string"}, "node": {"type": "string"}, "title": {"type": "string"},
            "state": {"enum": ["open", "done", "returned", "cancelled"]}, "mode": {"enum": ["any", "all", "sequence"]},
            "assignees": {"type": "array", "items": {"type": "string"}, "description": "Usernames it waits for now."},
            "due_at": {"type": ["string", "null"]}, "overdue": {"type": "boolean"},
            "actions": {"type": "array", "description": "What the caller may do now.", "items": {
                "type": "object", "properties": {"key": {"type": "string"}, "title": {"type": "string"},
                                                 "schema": {"type": "object"}, "operation": {"type": "boolean"}}}},
        },
    },
    "Action": {
        "type": "object", "required": ["action"],
        "properties": {
            "action": {"type": "string", "description": "A key from the task's `actions`."},
            "data": {"type": "object", "description": "The step form's data, when the action has one."},
            "comment": {"type": "string"},
            "to": {"description": "transfer: a username; add_signer: {person, position}; return: "
                                  "`submitter` or a step already passed."},
        },
    },
    "Grid": {
        "type": "object",
        "properties": {
            "code": {"type": "string"}, "name": {"type": "string"}, "level": {"type": "string"},
            "parent": {"type": ["string", "null"]},
            "path": {"type": "array", "items": {"type": "string"}, "description": "Ancestor codes, root first."},
            "households": {"type": ["integer", "null"]}, "population": {"type": ["integer", "null"]},
        },
    },
}

PATHS = {
    "/healthz": {"get": {
        "summary": "Liveness and database check", "security": [],
        "responses": {"200": _json({"type": "object"}, "ok"),
                      "503": _json({"type": "object"}, "数据库无法访问")},
    }},
    "/api/v1/forms": {"get": {
        "summary": "Forms the caller may fill",
        "responses": {"200": _json({"type": "object", "properties": {
            "forms": {"type": "array", "items": _ref("FormSummary")}}}, "The forms"), **AUTH_ERRORS},
    }},
    "/api/v1/forms/{key}": {"get": {
        "summary": "Effective definition of a form for a grid",
        "parameters": [_path("key", "Form key"), _query("grid", "Grid code (must be in scope)")],
        "responses": {"200": _json(_ref("Form"), "The definition"), "404": _error("Unknown form or grid"),
                      **AUTH_ERRORS},
    }},
    "/api/v1/forms/{key}/submissions": {"post": {
        "summary": "Submit a form",
        "parameters": [_path("key", "Form key")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewSubmission")}}},
        "responses": {
            "201": _json(_ref("Submission"), "Stored"),
            "200": _json(_ref("Submission"), "Same id and data as before: nothing new stored"),
            "403": _error("The grid is outside the caller's scope"),
            "404": _error("Unknown form"),
            "409": _error("Same id, other data"),
            "422": _error("Invalid data; errors[] name each field"),
            **BODY_ERRORS, **AUTH_ERRORS,
        },
    }},
    "/api/v1/submissions": {"get": {
        "summary": "Cases in the caller's scope, filtered and sorted (newest first by default)",
        "description": "Form-field filters (need `form`): `f.FIELD=v` (equal; repeat for one of; for a list of "
                       "choices: contains one of), `f.FIELD.min` / `f.FIELD.max` (numbers and dates), "
                       "`f.FIELD.has` (text contains). Fields inside groups are dotted: `f.group.field`. "
                       "Sensitive fields cannot be filtered on. See docs/reports.md.",
        "parameters": [
            _query("form", "Form key"), _query("grid", "Grid code: the case lies in its subtree"),
            _query("status", "Case status (repeat for one of)"),
            _query("outcome", "Outcome of a closed case", {"type": "string", "enum": list(OUTCOMES)}),
            _query("step", "Key of a step the case is open at"),
            _query("assignee", "Username of a person an open step waits for"),
            _query("overdue", "1: only cases with an open step past its deadline", {"type": "string", "enum": ["1"]}),
            _query("from", "First day reported (local), YYYY-MM-DD", {"type": "string", "format": "date"}),
            _query("to", "Last day reported (local), YYYY-MM-DD", {"type": "string", "format": "date"}),
            _query("closed_from", "First day closed (local)", {"type": "string", "format": "date"}),
            _query("closed_to", "Last day closed (local)", {"type": "string", "format": "date"}),
            _query("sort", "Order", {"type": "string", "enum": list(SORTS)}),
            _query("q", "Text contained anywhere in the data"),
            _query("limit", "Page size, 1–200", {"type": "integer", "minimum": 1, "maximum": 200}),
            _query("cursor", "The `next` of the previous page"),
        ],
        "responses": {"200": _json({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("Submission")},
            "next": {"type": ["string", "null"]}}}, "A page"),
            "400": _error("Bad cursor"), "422": _error("Bad filter"), **AUTH_ERRORS},
    }},
    "/api/v1/stats": {"get": {
        "summary": "The dashboard's figures for a grid node's subtree, a period and optionally one form",
        "description": "Cases reported in the period; rates are 0–1 or null; handling times in hours. "
                       "Definitions in docs/reports.md.",
        "parameters": [
            _query("grid", "Grid code (default: the top of the caller's scope)"),
            _query("period", "week, month (default), quarter, year or custom",
                   {"type": "string", "enum": ["week", "month", "quarter", "year", "custom"]}),
            _query("at", "A day inside the period (default today)", {"type": "string", "format": "date"}),
            _query("from", "custom: first day", {"type": "string", "format": "date"}),
            _query("to", "custom: last day", {"type": "string", "format": "date"}),
            _query("form", "Only this form's cases"),
        ],
        "responses": {"200": _json({"type": "object", "required": ["grid", "period", "totals", "by_form", "by_grid",
                                                                   "trend"]}, "The figures"),
                      "422": _error("Bad grid, period or form"), **AUTH_ERRORS},
    }},
    "/api/v1/submissions/{id}": {
        "get": {
            "summary": "One case with its tasks and history",
            "parameters": [_path("id", "Submission id")],
            "responses": {"200": _json(_ref("Case"), "The case"),
                          "404": _error("Unknown, or outside the caller's scope"), **AUTH_ERRORS},
        },
        "put": {
            "summary": "Edit a case's data, given the current revision",
            "parameters": [_path("id", "Submission id")],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Edit")}}},
            "responses": {"200": _json(_ref("Submission"), "The new revision"),
                          "403": _error("Not the author or an administrator"),
                          "404": _error("Unknown, or outside the caller's scope"),
                          "409": _error("Stale revision"), "422": _error("Invalid data"),
                          **BODY_ERRORS, **AUTH_ERRORS},
        },
    },
    "/api/v1/tasks": {"get": {
        "summary": "The caller's tasks",
        "parameters": [_query("state", "open (default) or done", {"enum": ["open", "done"]}),
                       _query("overdue", "1: overdue only"), _query("limit", "Page size, 1–200", {"type": "integer"}),
                       _query("offset", "Items to skip", {"type": "integer"})],
        "responses": {"200": _json({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("Task")}}}, "The tasks"), "422": _error("Bad filter"),
            **AUTH_ERRORS},
    }},
    "/api/v1/tasks/{id}/actions": {"post": {
        "summary": "Act on a task: one of its actions, or return / transfer / add_signer / escalate / comment",
        "parameters": [_path("id", "Task id")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Action")}}},
        "responses": {"200": _json(_ref("Case"), "The case after the action"),
                      "403": _error("Not assigned to the caller"), "404": _error("Unknown, or outside the scope"),
                      "409": _error("Already acted on, or the case changed meanwhile"),
                      "422": _error("Bad action, step data or comment"), **BODY_ERRORS, **AUTH_ERRORS},
    }},
    "/api/v1/submissions/{id}/actions": {"post": {
        "summary": "Act on a case: withdraw (the submitter), comment, urge a task, reopen a closed case",
        "parameters": [_path("id", "Submission id")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["action"],
            "properties": {"action": {"enum": ["withdraw", "comment", "urge", "reopen"]},
                           "comment": {"type": "string"}, "task": {"type": "integer"}, "to": {"type": "string"}}}}}},
        "responses": {"200": _json(_ref("Case"), "The case after the action"),
                      "403": _error("Not allowed for the caller"), "404": _error("Unknown, or outside the scope"),
                      "409": _error("Not possible in the case's state"), "429": _error("Urged too recently"),
                      "422": _error("Bad action"), **BODY_ERRORS, **AUTH_ERRORS},
    }},
    "/api/v1/attachments": {"post": {
        "summary": "Upload files (photos are re-encoded without metadata); use the ids in `attachment` fields",
        "parameters": [_query("kind", "`photo`: accept images only", {"type": "string", "enum": ["photo"]})],
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "properties": {"file": {"type": "array", "items": {
                "type": "string", "format": "binary"}}}}}}},
        "responses": {"201": _json({"type": "object", "properties": {"items": {"type": "array", "items": {
            "type": "object", "properties": {
                "id": {"type": "string", "description": "SHA-256 of the stored file"},
                "filename": {"type": "string"}, "content_type": {"type": "string"},
                "size": {"type": "integer"}, "width": {"type": ["integer", "null"]},
                "height": {"type": ["integer", "null"]}}}}}}, "The stored files"),
            "413": _error("A file is too large"), "422": _error("No file, or not an accepted type"),
            **AUTH_ERRORS},
    }},
    "/api/v1/attachments/{id}": {"get": {
        "summary": "Download a file the caller uploaded or may see through a case",
        "parameters": [_path("id", "SHA-256 of the file"),
                       _query("thumb", "`1`: the 320-pixel thumbnail of a photo", {"type": "string"})],
        "responses": {"200": {"description": "The file"},
                      "404": _error("Unknown, or not visible to the caller"), **AUTH_ERRORS},
    }},
    "/api/v1/grids": {"get": {
        "summary": "Children of a node in scope; without parent, the top nodes of the caller's scope",
        "parameters": [_query("parent", "Parent grid code")],
        "responses": {"200": _json({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("Grid")}}}, "The nodes"),
            "404": _error("Unknown parent, or outside the caller's scope"), **AUTH_ERRORS},
    }},
    "/api/v1/grids/{code}": {"get": {
        "summary": "One grid node",
        "parameters": [_path("code", "Grid code")],
        "responses": {"200": _json(_ref("Grid"), "The node"),
                      "404": _error("Unknown, or outside the caller's scope"), **AUTH_ERRORS},
    }},
    "/api/v1/openapi.json": {"get": {
        "summary": "This document", "security": [],
        "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
    }},
}


@functools.cache
def openapi_document() -> dict:
    """Return the OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "gridflow API", "version": "1",
                 "description": "表单、提交与网格接口。"
                                "错误统一为 {error, message, errors[]}，message 为中文。"},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "gridflow token create USERNAME 生成的令牌"}},
            "schemas": SCHEMAS,
        },
        "paths": PATHS,
    }
