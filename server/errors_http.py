"""HTTP errors as JSON for the API and as a short Chinese page elsewhere; never a bare 500."""

from __future__ import annotations

import logging
import uuid

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

MESSAGES = {
    400: "请求格式不正确",
    401: "请先登录",
    403: "您无权进行此操作",
    404: "找不到该地址",
    405: "不支持该请求方法",
    413: "请求体过大",
    415: "不支持的请求体类型",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误，请稍后再试",
    503: "服务暂时不可用",
}

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
         429: "too_many_requests", 500: "internal", 503: "unavailable"}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_page(status: int, message: str):
    """Render the short Chinese error page of the web side."""
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app) -> None:
    """Register the error handlers."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = MESSAGES.get(status, exc.description or "")
        if status == 413:
            message = f"请求体过大（上限 {app.config['MAX_CONTENT_LENGTH']} 字节）"
        if not _wants_json():
            if status == 405 or request.method == "HEAD":
                return f"<!doctype html><meta charset=utf-8><title>{status}</title><p>{message}</p>", status
            # A view may abort with its own Chinese description; werkzeug's defaults are English.
            own = exc.description if exc.description != type(exc).description else None
            return error_page(status, own or message)
        response = jsonify({"error": CODES.get(status, "error"), "message": message, "errors": []})
        response.status_code = status
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # Flask sends HTTPExceptions to the handler above; only real failures come here.
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", incident, request.method, request.path)
        error = InternalServerError()
        response = http_error(error)
        if _wants_json():
            body = response.get_json()
            body["message"] += f"（错误编号 {incident}）"
            response.set_data(jsonify(body).get_data())
        return response
