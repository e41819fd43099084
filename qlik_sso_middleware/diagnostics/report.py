"""Results of `qlik-sso check`: one `Step` per thing tested, rendered as ✓/✗ lines or JSON.

A failed step carries `fix` (what to do, for people) and, where the fix can be stated exactly,
`action` (the same, for machines; docs/cli.md lists the forms):

    {"config": {"auth.header_name": "CMI_Header"}}          set these keys (None: remove the key)
    {"virtual_proxy": {"prefix": "a_", "set": {...}}}       QMC edit of that VP (`VirtualProxy`
                                                            option names; a missing VP is created)
    {"access_pass": "CMI\\Me"}                              allocate that user an access pass
    {"end_sessions": "ACME\\checker"}                       end the user's sessions (QPS API)
    {"front_end": {"forward": "/a_/qps/csrftoken"}}         the server in front of Qlik must pass it

A value only the user knows is written `<like this>`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Action", "Report", "Status", "Step"]

Action = dict[str, Any]

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
    action: Action | None = None

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
        self,
        id: str,
        title: str,
        status: Status,
        detail: str = "",
        fix: str | None = None,
        action: Action | None = None,
    ) -> Step:
        step = Step(id, title, status, detail, fix, action)
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)
        return step

    def passed(self, id: str, title: str, detail: str = "") -> Step:
        return self.add(id, title, "pass", detail)

    def failed(
        self, id: str, title: str, detail: str, fix: str, action: Action | None = None
    ) -> Step:
        return self.add(id, title, "fail", detail, fix, action)

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
