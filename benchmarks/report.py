"""The Markdown table: throughput with latency, ratios against direct, and the issue's targets."""

from __future__ import annotations

import math

Medians = dict[str, dict[str, float]]

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


def render(
    header: str, m: Medians, extra: dict[str, float], stream_bytes: int, storm_users: int
) -> str:
    targets = ["direct", "middleware", "nginx"]
    has_nginx = any("nginx" in cols for cols in m.values())
    lines = [
        "# Benchmark results",
        "",
        header,
        "",
        "| scenario | direct | middleware | middleware / direct | nginx | nginx / direct | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]

    def row(label: str, cells: dict[str, str], ratios: dict[str, str], target: str) -> None:
        lines.append(
            f"| {label} | {cells.get('direct', '–')} | {cells.get('middleware', '–')} | "
            f"{ratios.get('middleware', '–')} | {cells.get('nginx', '–') if has_nginx else 'n/a'} "
            f"| {ratios.get('nginx', '–') if has_nginx else 'n/a'} | {target} |"
        )

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
        row(label, cells, ratios, f"≥ {goal:.2f}x" if goal else "")
    upload_key = next((k for k in m if k.startswith("POST ") and k.endswith("(MiB/s)")), None)
    if upload_key:
        values = m[upload_key]
        cells = {t: _num(values.get(t)) for t in targets if t in values}
        ratios = {
            t: _ratio_cell(_ratio(values.get(t), values.get("direct")), None) for t in targets[1:]
        }
        row(upload_key.replace("POST", "POST upload, 1 conn,"), cells, ratios, "")
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
        row(key, cells, ratios, f"≥ {goal:.2f}x" if goal else "")
    cpu = m.get("GET 1 KiB, 32 conns server CPU (µs/req)", {})
    cells = {t: _num(cpu.get(t), 1) for t in targets if t in cpu}
    mw_cpu = cpu.get("middleware")
    cells["middleware"] = cells.get("middleware", "–") + _mark(
        None if mw_cpu is None else mw_cpu <= 150
    )
    row("server CPU per 1 KiB request, 32 conns (µs)", cells, {}, "middleware ≤ 150 µs")
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
        row(key.split(":")[0] + ": peak RSS", cells, {}, "≤ idle + 32 MiB")
    size = (
        f"{stream_bytes // 2**20} MiB" if stream_bytes < 2**30 else f"{stream_bytes // 2**30} GiB"
    )
    lines += [
        "",
        "Direct = the upstream itself (its RSS and CPU); cells are medians, with p50 / p99 latency.",
        f"Streaming rows move {size} through one connection with curl; RSS is the server's own",
        "process tree (nginx: master + worker), sampled every 5 ms.",
        "",
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
