"""The Markdown tables: throughput with latency, ratios against direct, the issue's targets, and
the Python peers measured in the same run (only when at least one was)."""

from __future__ import annotations

import math
from dataclasses import dataclass

Medians = dict[str, dict[str, float]]

#: The middleware in other configurations, measured beside "middleware" ([fast] engine when
#: installed): the bare install's aiohttp engine, and aiohttp's upstream WebSocket client.
VARIANTS = ("middleware (aiohttp)", "middleware (websockets ws)")

#: The offload columns (benchmarks/offload.py).
OFFLOAD = ("offload", "offload+cache")
_CACHE_NOTE = "an answer reused for 5 s for the same request line, Host, Origin and cookies"

# (row label, metric row, latency rows or None, target ratio or None)
_THROUGHPUT = [
    ("GET 1 KiB, 32 conns (req/s)", "GET 1 KiB, 32 conns", 0.35),
    ("GET 1 KiB, 1 conn (req/s)", "GET 1 KiB, 1 conn", None),
    ("GET 1 MiB, 32 conns (req/s)", "GET 1 MiB, 32 conns", 0.25),
    ("GET 1 MiB, 1 conn (req/s)", "GET 1 MiB, 1 conn", None),
    ("POST 1 MiB, 1 conn (req/s)", "POST 1 MiB, 1 conn", None),
]
_RATES = [
    ("WS 100 B round trips (/s)", 0.70),
    ("WS 1 MiB echo (MiB/s)", 0.50),
    ("WS 20 MiB echo (MiB/s)", None),
]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile (0..1) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or not base or math.isnan(value) or math.isnan(base):
        return None
    return value / base


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✅" if ok else " ❌")


def _ratio_cell(ratio: float | None, target: float | None, *, judged: bool = True) -> str:
    if ratio is None:
        return "–"
    ok = None if target is None or not judged else ratio >= target
    return f"{ratio:.2f}x{_mark(ok)}"


@dataclass
class _Row:
    """One scenario: its cells and ratios per target, and the number that says it was measured."""

    label: str
    values: dict[str, float]
    cells: dict[str, str]
    ratios: dict[str, str]
    target: str


def _rows(m: Medians, targets: list[str]) -> list[_Row]:
    rows: list[_Row] = []
    for label, key, goal in _THROUGHPUT:
        values = m.get(f"{key} (req/s)", {})
        p50 = m.get(f"{key} p50 (ms)", {})
        p99 = m.get(f"{key} p99 (ms)", {})
        cells = {
            t: f"{_num(values.get(t))} ({_num(p50.get(t), 2)} / {_num(p99.get(t), 2)} ms)"
            for t in targets
            if t in values
        }
        base = values.get("direct")
        ratios = {
            t: _ratio_cell(_ratio(values.get(t), base), goal, judged=t == "middleware")
            for t in targets[1:]
        }
        rows.append(_Row(label, values, cells, ratios, f"≥ {goal:.2f}x" if goal else ""))
    upload_key = next((k for k in m if k.startswith("POST ") and k.endswith("(MiB/s)")), None)
    if upload_key:
        values = m[upload_key]
        cells = {t: _num(values.get(t)) for t in targets if t in values}
        ratios = {
            t: _ratio_cell(_ratio(values.get(t), values.get("direct")), None) for t in targets[1:]
        }
        label = upload_key.replace("POST", "POST upload, 1 conn,")
        rows.append(_Row(label, values, cells, ratios, ""))
    for key, goal in _RATES:
        values = m.get(key, {})
        p50 = m.get("WS 100 B round trip p50 (ms)", {}) if key.startswith("WS 100") else {}
        cells = {
            t: _num(values.get(t)) + (f" (p50 {_num(p50.get(t), 3)} ms)" if p50 else "")
            for t in targets
            if t in values
        }
        ratios = {
            t: _ratio_cell(
                _ratio(values.get(t), values.get("direct")), goal, judged=t == "middleware"
            )
            for t in targets[1:]
        }
        rows.append(_Row(key, values, cells, ratios, f"≥ {goal:.2f}x" if goal else ""))
    cpu = m.get("GET 1 KiB, 32 conns server CPU (µs/req)", {})
    cells = {t: _num(cpu.get(t), 1) for t in targets if t in cpu}
    mw_cpu = cpu.get("middleware")
    cells["middleware"] = cells.get("middleware", "–") + _mark(
        None if mw_cpu is None else mw_cpu <= 150
    )
    label = "server CPU per 1 KiB request, 32 conns (µs)"
    rows.append(_Row(label, cpu, cells, {}, "middleware ≤ 150 µs"))
    for direction in ("down", "up"):
        found = [k for k in m if k.startswith("stream ") and f" {direction}: peak" in k]
        if not found:
            continue
        key = found[0]
        idle_key = key.replace("peak RSS over idle", "idle RSS")
        rate_key = key.split(":")[0] + " (MiB/s)"
        cells = {}
        for t in targets:
            if t in m[key]:
                ok = m[key][t] <= 32 if t == "middleware" else None
                cells[t] = (
                    f"+{_num(m[key][t], 1)} MiB over {_num(m[idle_key].get(t), 0)} MiB"
                    f"{_mark(ok)}, {_num(m[rate_key].get(t))} MiB/s"
                )
        label = key.split(":")[0] + ": peak RSS"
        rows.append(_Row(label, m[key], cells, {}, "≤ idle + 32 MiB"))
    return rows


def _own_work(m: Medians) -> str:
    """The middleware's cost above the floor, where both were measured."""
    parts = []
    cpu = m.get("GET 1 KiB, 32 conns server CPU (µs/req)", {})
    if not _failed(cpu.get("middleware")) and not _failed(cpu.get("floor")):
        parts.append(f"{cpu['middleware'] - cpu['floor']:.0f} µs of CPU per 1 KiB request")
    rtt = m.get("WS 100 B round trip p50 (ms)", {})
    if not _failed(rtt.get("middleware")) and not _failed(rtt.get("floor")):
        added = (rtt["middleware"] - rtt["floor"]) * 1e3
        # Below the run's noise the relay's own checks are not measurable: say so, not "-3 µs".
        parts.append(
            f"{added:.0f} µs per WS round trip (p50)"
            if added > 5
            else "no measurable cost per WS round trip (p50 within 5 µs of the floor's)"
        )
    return ": " + ", ".join(parts) if parts else ""


def _failed(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _peers_table(rows: list[_Row], peers: list[str], notes: dict[str, str]) -> list[str]:
    """Middleware against the Python peers: values, and each one's ratio to direct."""
    head = "| scenario | direct | middleware | middleware / direct |"
    rule = "|---|---:|---:|---:|"
    for p in peers:
        head += f" {p} | {p} / direct |"
        rule += "---:|---:|"
    lines = [
        "## Python peers, same run",
        "",
        "Each peer in its own uvicorn process, pinned like the middleware and measured interleaved",
        "with the columns above; set up as its docs say (`benchmarks/peers.py`), it forwards",
        "requests as they are (no login, identity header, path or Origin checks: it has none).",
        "",
        *(f"- {notes.get(p, p)}" for p in peers),
        "",
        '"fails": an error, a non-2xx answer or a timeout (the run\'s stderr says which).',
        "",
        head,
        rule,
    ]
    for r in rows:
        line = (
            f"| {r.label} | {r.cells.get('direct', '–')} | {r.cells.get('middleware', '–')} "
            f"| {r.ratios.get('middleware', '–')} |"
        )
        for p in peers:
            if _failed(r.values.get(p)):
                line += " fails | – |"
            else:
                line += f" {r.cells.get(p, '–')} | {r.ratios.get(p, '–')} |"
        lines.append(line)
    return [*lines, ""]


def render(
    header: str,
    m: Medians,
    extra: dict[str, float],
    stream_bytes: int,
    storm_users: int,
    *,
    peers: list[str] | None = None,
    peer_notes: dict[str, str] | None = None,
) -> str:
    """The Markdown report; `peers` (columns of `m`) adds the table of the Python peers."""
    peers = peers or []
    targets = ["direct", "middleware", *VARIANTS, "floor", "nginx", *OFFLOAD]
    measured = {t for cols in m.values() for t in cols}
    columns = [t for t in targets[1:] if t in measured]
    head = "| scenario | direct |" + "".join(f" {t} | {t} / direct |" for t in columns)
    lines = [
        "# Benchmark results",
        "",
        header,
        "",
        head + " target |",
        "|---|---:|" + "---:|---:|" * len(columns) + "---|",
    ]
    rows = _rows(m, targets + peers)
    for r in rows:
        cells, ratios = r.cells, r.ratios
        line = f"| {r.label} | {cells.get('direct', '–')} |"
        for t in columns:
            line += f" {cells.get(t, '–')} | {ratios.get(t, '–')} |"
        lines.append(line + f" {r.target} |")
    size = (
        f"{stream_bytes // 2**20} MiB" if stream_bytes < 2**30 else f"{stream_bytes // 2**30} GiB"
    )
    lines += [
        "",
        "Direct = the upstream itself (its RSS and CPU); cells are medians, with p50 / p99 latency.",
        "Floor = `benchmarks/floor.py`: the same server and client libraries as the middleware",
        "(uvicorn, pyreqwest, `websockets`) forwarding with no checks, no identity and no session:",
        "the cheapest proxy this architecture allows. Middleware minus floor is the middleware's own",
        f"work{_own_work(m)}.",
        f"Streaming rows move {size} through one connection with curl; RSS is the server's own",
        "process tree (nginx: master + worker), sampled every 5 ms.",
        "Offload = nginx configured by `qlik-sso front-config` asking the app",
        "(`benchmarks.proxied:create_offload_app`, its own uvicorn process) on every request;",
        f"offload+cache = the same with nginx's auth cache ({_CACHE_NOTE}). Their CPU and RSS are",
        "nginx's and the app's together.",
        "",
    ]
    if any(t in measured for t in OFFLOAD):
        lines += _offload_table(m)
    if peers:
        lines += _peers_table(rows, peers, peer_notes or {})
    if not extra:  # a run of selected scenarios without the login and in-process ones
        return "\n".join(lines)
    lines += [
        "| middleware only | value | target |",
        "|---|---:|---|",
        f"| first request of a new user (login included), median | {_num(extra.get('first_ms'), 2)} ms "
        f"(cached: {_num(extra.get('cached_ms'), 2)} ms) | |",
        f"| {storm_users:,} distinct users logging in at once | "
        f"{_num(extra.get('storm_logins_s'))} logins/s ({_num(extra.get('storm_seconds'), 2)} s, "
        f"{_num(extra.get('storm_errors'))} errors), peak RSS +{_num(extra.get('storm_rss_mib'), 1)} MiB | |",
        f"| memory per cached session ({_num(extra.get('session_users'))} users, in-process) | "
        f"{_num(extra.get('session_bytes'))} bytes | |",
        f"| CPU for identity + store + headers per cached-session request (in-process) | "
        f"{_num(extra.get('micro_us'), 1)} µs{_mark(extra.get('micro_us', 99) <= 30)} "
        f"(of which the app's resolver: {_num(extra.get('micro_resolver_us'), 1)} µs) | ≤ 30 µs |",
        "",
    ]
    return "\n".join(lines)


# (row, metric, target ratio to direct) of issue 20's offload targets.
_OFFLOAD_GOALS = [
    ("GET 1 KiB, 32 conns", "GET 1 KiB, 32 conns (req/s)", 0.45),
    ("WS 100 B round trips", "WS 100 B round trips (/s)", 0.70),
    ("WS 1 MiB echo", "WS 1 MiB echo (MiB/s)", 0.50),
]
_OFFLOAD_CPU = 60.0


def _goal_cell(value: float | None, goal: float, *, higher: bool = True) -> str:
    if _failed(value):
        return "–"
    assert value is not None
    ok = value >= goal if higher else value <= goal
    if ok:
        return f"{value:.2f}{'x' if higher else ' µs'} ✅"
    gap = goal - value if higher else value - goal
    unit = "x" if higher else " µs"
    return f"{value:.2f}{unit} ❌ (missed by {gap:.2f}{unit})"


def _offload_table(m: Medians) -> list[str]:
    """Issue 20's targets for offload mode: met, or missed by how much, and the numbers that say
    why (what nginx alone reaches, and the CPU the auth sub-request adds)."""
    lines = [
        "## Offload mode (nginx + the app's auth endpoint), same run",
        "",
        "| target | offload | offload+cache | nginx alone (no auth) | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for label, key, goal in _OFFLOAD_GOALS:
        values = m.get(key, {})
        ratio = {t: _ratio(values.get(t), values.get("direct")) for t in (*OFFLOAD, "nginx")}
        lines.append(
            f"| {label} / direct | {_goal_cell(ratio['offload'], goal)} | "
            f"{_goal_cell(ratio['offload+cache'], goal)} | {_num(ratio['nginx'], 2)}x | "
            f"≥ {goal:.2f}x |"
        )
    cpu = m.get("GET 1 KiB, 32 conns server CPU (µs/req)", {})
    lines.append(
        f"| server CPU per 1 KiB request (nginx + app, µs) | "
        f"{_goal_cell(cpu.get('offload'), _OFFLOAD_CPU, higher=False)} | "
        f"{_goal_cell(cpu.get('offload+cache'), _OFFLOAD_CPU, higher=False)} | "
        f"{_num(cpu.get('nginx'), 1)} | ≤ {_OFFLOAD_CPU:.0f} µs with caching |"
    )
    why = []
    if not _failed(cpu.get("offload")) and not _failed(cpu.get("nginx")):
        why.append(
            f"without the cache every request costs an auth sub-request to the app: "
            f"{cpu['offload'] - cpu['nginx']:.0f} µs of CPU above nginx alone"
        )
    if not _failed(cpu.get("offload+cache")) and not _failed(cpu.get("nginx")):
        why.append(
            f"with it, nginx's cache lookup and the second upstream hop cost "
            f"{cpu['offload+cache'] - cpu['nginx']:.0f} µs above nginx alone"
        )
    if why:
        lines += ["", "Why: " + "; ".join(why) + ".", ""]
    return lines
