"""Errors the engine raises to its callers (API, CLI), each with a stable machine code."""

from __future__ import annotations

from core.types import Problem


class EngineError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class ValidationFailed(EngineError):
    """The draft was refused; ``problems`` carry field paths. Nothing was stored."""

    code = "validation_failed"
    http_status = 422

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        summary = "; ".join(f"{'.'.join(map(str, p.path)) or '(draft)'}: {p.message}" for p in problems)
        super().__init__(f"the observation was refused: {summary}")


class NotFound(EngineError):
    code = "not_found"
    http_status = 404


class Conflict(EngineError):
    code = "conflict"
    http_status = 409


class Forbidden(EngineError):
    code = "forbidden"
    http_status = 403


class InvalidTransition(EngineError):
    code = "invalid_transition"
    http_status = 409
