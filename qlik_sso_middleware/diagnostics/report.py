"""Results of `qlik-sso check`: one `Step` per thing tested, rendered as ✓/✗ lines or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ["Report", "Status", "Step"]

Status = Literal["pass", "fail", "skip"]
_MARK = {"pass": "✓", "fail": "✗", "skip": "-"}


@dataclass(frozen=True)
class Step:
    """One check: `id` is stable for machines (`proxy.tcp`), `title` for people; `fix` says what
    to change when it failed. Never holds a cookie, ticket, key or password."""

    id: str
    title: str
    status: Status
    detail: str = ""
    fix: str | None = None

    def render(self) -> str:
        line = f"{_MARK[self.status]} {self.title}"
        if self.detail:
            line += f": {self.detail}"
        if self.fix and self.status == "fail":
            line += f"\n    fix: {self.fix}"
        return line


@dataclass
class Report:
    """Steps in the order they ran; `on_step` shows progress as each one finishes."""

    steps: list[Step] = field(default_factory=list)
    on_step: Callable[[Step], None] | None = None

    def add(
        self, id: str, title: str, status: Status, detail: str = "", fix: str | None = None
    ) -> Step:
        step = Step(id, title, status, detail, fix)
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)
        return step

    def passed(self, id: str, title: str, detail: str = "") -> Step:
        return self.add(id, title, "pass", detail)

    def failed(self, id: str, title: str, detail: str, fix: str) -> Step:
        return self.add(id, title, "fail", detail, fix)

    def skipped(self, id: str, title: str, detail: str) -> Step:
        return self.add(id, title, "skip", detail)

    @property
    def ok(self) -> bool:
        return all(step.status != "fail" for step in self.steps)

    def failures(self) -> list[Step]:
        return [step for step in self.steps if step.status == "fail"]

    def summary(self) -> str:
        counts = {s: sum(1 for step in self.steps if step.status == s) for s in _MARK}
        verdict = "all checks passed" if self.ok else f"{counts['fail']} check(s) failed"
        return f"{verdict} ({counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped)"

    def to_json(self) -> str:
        return json.dumps(
            {"ok": self.ok, "steps": [asdict(step) for step in self.steps]},
            ensure_ascii=False,
            indent=2,
        )
