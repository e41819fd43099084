"""Login storms: Qlik logins per user per period, against what explains them.

Qlik's count of sessions created per user is snapshot when each fault starts and at the end.
Each login must be explained by a credit: the user's first login; one per app logout (the login
after it may come periods later); and one per fault that loses sessions (`SESSION_LOSING`). That
last credit does not stack: it stays until the user's next login uses it or the next such fault
replaces it (a user kept waiting by a latency spike logs in again only after the next fault
began). So a user logs in at most once per restart, plus once per logout.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable

from .figures import Examples

__all__ = ["SESSION_LOSING", "judge_logins"]

#: Faults after which every user needs one new Qlik login (their session is gone or forgotten).
#: A killed instance may take a login in flight with it: Qlik made the session, nobody stored it.
SESSION_LOSING = frozenset({"qlik_restart", "redis_restart", "instance_restart"})

Snapshot = tuple[float, dict[str, int]]


def judge_logins(
    snapshots: list[Snapshot],
    logouts: list[tuple[float, str]],
    kind_at: Callable[[float], str],
    violations: list[str],
) -> dict[str, object]:
    """The login figures; a violation appended per storm. `kind_at(t)`: the kind of the fault
    that started last at `t` ("start" before the first)."""
    if len(snapshots) < 2:
        violations.append("fewer than two Qlik login snapshots: logins were not checked")
        return {}
    users = set().union(*(counts for _, counts in snapshots))
    credit: Counter[str] = Counter(dict.fromkeys(users, 1))  # first login, then one per logout
    lost: set[str] = set()  # users whose session a fault lost, not logged in again since
    storms = Examples()
    worst: dict[str, int] = {}
    for period, ((start, before), (end, after)) in enumerate(itertools.pairwise(snapshots)):
        kind = kind_at(start)
        if kind in SESSION_LOSING:
            lost = set(users)
        for at, user in logouts:
            if start <= at < end:
                credit[user] += 1
        for user in users:
            used = after.get(user, 0) - before.get(user, 0)
            worst[kind] = max(worst.get(kind, 0), used)
            explained = (user in lost) + credit[user]
            if used > explained:
                storms.add(f"{user}: {used} logins in period {period} (after {kind})")
            if used and user in lost:
                lost.discard(user)
                used -= 1
            credit[user] = max(0, credit[user] - used)
    if storms.count:
        violations.append(f"{storms.count} login storms, e.g. {storms.seen[:3]}")
    final = snapshots[-1][1]
    return {
        "total": sum(final.values()),
        "users": len(final),
        "max_per_user": max(final.values(), default=0),
        "max_per_user_per_period": worst,
        "storms": storms.count,
        "snapshots": [(round(at, 1), sum(counts.values())) for at, counts in snapshots],
    }
