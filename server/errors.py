"""Refusals: a request that cannot be done, with its HTTP status and a message in Chinese."""

from __future__ import annotations

from .validation import FieldError


class Refusal(Exception):
    """Refuse a request: HTTP status, a stable code, a Chinese message, and field errors."""

    def __init__(self, status: int, code: str, message: str,
                 errors: list[FieldError] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.errors = errors or []

    def as_dict(self) -> dict:
        return {"error": self.code, "message": self.message,
                "errors": [e.as_dict() for e in self.errors]}
