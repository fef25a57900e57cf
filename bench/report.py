"""Medians, ratios, the printed table and the PNG chart of a benchmark run."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def summarize(
    rows: list[dict[str, Any]],
    bcrypt: list[dict[str, Any]],
    endpoints: Sequence[Any],
    workers: int,
) -> dict[str, Any]:
    """Per target and endpoint: medians over rounds, and the median of per-round ratios.

    A ratio is taken within its round (Warden's run against the floor run of the same round,
    or the bcrypt bound timed on each side of the run), so a machine that drifts between
    rounds shifts both sides alike.
    """
    floor = {row["round"]: row for row in rows if row["target"] == "floor"}
    summary: dict[str, Any] = {
        "floor": {
            "rps": round(_median([r["rps"] for r in floor.values()]), 1),
            "p50_ms": round(_median([r["p50_ms"] for r in floor.values()]), 2),
            "p99_ms": round(_median([r["p99_ms"] for r in floor.values()]), 2),
            "server_cpu_ms": round(_median([r["server_cpu_ms"] for r in floor.values()]), 3),
        },
        "bcrypt": {
            "workers": workers,
            "verify_ms": round(
                _median([t["verify_s"] for b in bcrypt for t in (b["before"], b["after"])]) * 1000,
                1,
            ),
            "bound_rps": round(_median([b["bound_rps"] for b in bcrypt]), 3),
        }
        if bcrypt
        else None,
        "targets": {},
    }
    for target in dict.fromkeys(row["target"] for row in rows if row["target"] != "floor"):
        per_endpoint: dict[str, Any] = {}
        for endpoint in endpoints:
            mine = [r for r in rows if r["target"] == target and r["endpoint"] == endpoint.key]
            if not mine:
                continue
            ratios, p50_ratios, p99_ratios = [], [], []
            for row in mine:
                if endpoint.compare == "floor" and row["round"] in floor:
                    base = floor[row["round"]]
                    ratios.append(row["rps"] / base["rps"])
                    p50_ratios.append(row["p50_ms"] / base["p50_ms"])
                    p99_ratios.append(row["p99_ms"] / base["p99_ms"])
                elif endpoint.compare == "bcrypt" and "bound_rps" in row:
                    ratios.append(row["rps"] / row["bound_rps"])
            ratio = _median(ratios)
            per_endpoint[endpoint.key] = {
                "label": endpoint.label,
                "compared_to": "floor req/s" if endpoint.compare == "floor" else "bcrypt bound",
                "rps": round(_median([r["rps"] for r in mine]), 2),
                "p50_ms": round(_median([r["p50_ms"] for r in mine]), 2),
                "p99_ms": round(_median([r["p99_ms"] for r in mine]), 2),
                "server_cpu_ms": round(_median([r["server_cpu_ms"] for r in mine]), 3),
                "ratio": round(ratio, 3),
                "ratio_rounds": [round(value, 3) for value in ratios],
                "p50_ratio_to_floor": round(_median(p50_ratios), 2) if p50_ratios else None,
                "p99_ratio_to_floor": round(_median(p99_ratios), 2) if p99_ratios else None,
                "target": endpoint.target,
                "met": None if endpoint.target is None else bool(ratio >= endpoint.target),
                "non_2xx": sum(r["status_errors"] for r in mine),
                "socket_errors": sum(r["errors"] for r in mine),
                "refresh_pool_exhausted": any(r["exhausted"] for r in mine),
                "other_cpu_median": round(_median([r["cpu"]["other"] for r in mine]), 3),
            }
        summary["targets"][target] = per_endpoint
    compare_targets(summary, rows)
    return summary


def compare_targets(summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """With several targets: each one's req/s and CPU per request against the first's.

    Per round, then the median, like the floor ratios: the targets of one round ran back
    to back, so they saw the same machine.
    """
    targets = list(summary["targets"])
    if len(targets) < 2:
        return
    first = targets[0]
    index = {(r["target"], r["endpoint"], r["round"]): r for r in rows}
    for target in targets:
        for key, entry in summary["targets"][target].items():
            speed, cpu = [], []
            for (name, endpoint, round_no), row in index.items():
                base = index.get((first, endpoint, round_no))
                if name != target or endpoint != key or base is None:
                    continue
                speed.append(row["rps"] / base["rps"])
                cpu.append(row["server_cpu_ms"] / base["server_cpu_ms"])
            entry[f"rps_vs_{first}"] = round(_median(speed), 3)
            entry[f"rps_vs_{first}_rounds"] = [round(v, 3) for v in speed]
            entry[f"cpu_vs_{first}"] = round(_median(cpu), 3)
            entry[f"cpu_vs_{first}_rounds"] = [round(v, 3) for v in cpu]


def compare_peers(
    summary: dict[str, Any], rows: list[dict[str, Any]], wardens: list[str], peers: list[str]
) -> None:
    """/users/me of each Warden as a multiple of the fastest peer's, per round, then the
    median (each peer's own ratio to the floor is in its ``targets`` entry)."""
    if not peers:
        return
    ratio = {
        (r["target"], r["round"]): r["rps"] for r in rows if r["endpoint"] in ("users_me", "floor")
    }
    rounds = sorted({r["round"] for r in rows})
    section: dict[str, Any] = {"peers": peers}
    for peer in peers:
        for entry in summary["targets"].get(peer, {}).values():
            entry.update(label="GET /users/me (peer)", target=None, met=None)
    for warden in wardens:
        multiples = []
        for round_no in rounds:
            fastest = max((ratio.get((peer, round_no), 0.0) for peer in peers), default=0.0)
            mine = ratio.get((warden, round_no))
            if fastest and mine:
                multiples.append(mine / fastest)
        section[warden] = {
            "users_me_vs_fastest_peer": round(_median(multiples), 3),
            "rounds": [round(value, 3) for value in multiples],
        }
    summary["peers"] = section


def table(document: dict[str, Any]) -> str:
    """A plain-text table of the summary."""
    summary = document["summary"]
    lines = []
    settings = document["settings"]
    lines.append(
        f"Warden benchmark: {settings['rounds']} rounds, wrk -t{settings['wrk_threads']} "
        f"-c{settings['wrk_connections']}, {settings['duration_s']:g} s per run "
        f"({settings['bcrypt_endpoint_duration_s']:g} s for bcrypt endpoints, in a closed "
        f"loop of as many clients), "
        f"{settings['web_concurrency']} workers, BCRYPT_ROUNDS={settings['bcrypt_rounds']}"
    )
    machine = document["machine"]
    lines.append(f"machine: {machine['nproc']} x {machine['cpu_model']}, {machine['wrk']}")
    if summary["bcrypt"]:
        b = summary["bcrypt"]
        lines.append(
            f"bcrypt verify {b['verify_ms']:.0f} ms ({b['workers']} at once) -> bound "
            f"{b['workers']} / verify = {b['bound_rps']:.2f} req/s"
        )
    header = (
        f"{'target':<13} {'endpoint':<30} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} "
        f"{'ratio':>6} {'of':<13} {'target':>6}  {'met':<4} {'p50x':>6} {'p99x':>6} "
        f"{'cpu ms':>7}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    floor = summary["floor"]
    lines.append(
        f"{'floor':<13} {'GET user JSON, no auth':<30} {floor['rps']:9.1f} {floor['p50_ms']:9.2f} "
        f"{floor['p99_ms']:9.2f} {'1.000':>6} {'':<13} {'':>6}  {'':<4} {'1.00':>6} {'1.00':>6} "
        f"{floor['server_cpu_ms']:7.2f}"
    )
    for target, endpoints in summary["targets"].items():
        for entry in endpoints.values():
            met = "-" if entry["met"] is None else ("yes" if entry["met"] else "NO")
            target_text = "" if entry["target"] is None else f">={entry['target']}"
            p50x = entry["p50_ratio_to_floor"]
            p99x = entry["p99_ratio_to_floor"]
            warn = ""
            if entry["non_2xx"] or entry["socket_errors"]:
                warn += f"  ({entry['non_2xx']} non-2xx, {entry['socket_errors']} socket errors)"
            if entry["refresh_pool_exhausted"]:
                warn += "  (refresh pool exhausted: a lower bound)"
            lines.append(
                f"{target:<13} {entry['label']:<30} {entry['rps']:9.1f} {entry['p50_ms']:9.2f} "
                f"{entry['p99_ms']:9.2f} {entry['ratio']:6.3f} {entry['compared_to']:<13} "
                f"{target_text:>6}  {met:<4} "
                f"{'' if p50x is None else f'{p50x:.2f}':>6} "
                f"{'' if p99x is None else f'{p99x:.2f}':>6} "
                f"{entry['server_cpu_ms']:7.2f}{warn}"
            )
    lines.append(
        "ratio: median over rounds of (req/s / floor req/s in the same round), or of "
        "(req/s / bcrypt bound) for login and register; p50x/p99x: latency / floor latency;"
    )
    lines.append("cpu ms: CPU time of the gunicorn workers per answer (median over rounds).")
    targets = list(summary["targets"])
    if len(targets) > 1:
        first = targets[0]
        lines.append("")
        lines.append(f"against {first}, same round (median of per-round ratios):")
        for target in targets[1:]:
            for key, entry in summary["targets"][target].items():
                lines.append(
                    f"  {target:<12} {key:<13} req/s x{entry[f'rps_vs_{first}']:.3f}  "
                    f"cpu/req x{entry[f'cpu_vs_{first}']:.3f}"
                )
    if summary.get("peers"):
        section = summary["peers"]
        lines.append("")
        for name, entry in section.items():
            if name != "peers":
                lines.append(
                    f"{name} GET /users/me: x{entry['users_me_vs_fastest_peer']:.2f} the "
                    f"fastest peer's req/s (median of rounds {entry['rounds']})"
                )
    if document.get("load"):
        before, after = document["load"]["before"], document["load"]["after"]
        lines.append(
            f"machine load before: {before['loadavg']} (busy {before['busy']:.0%}); "
            f"after: {after['loadavg']} (busy {after['busy']:.0%})"
        )
    if document.get("mail"):
        mail = document["mail"]
        lines.append(
            f"mail: {mail['mails_delivered']} verification mails delivered to the SMTP sink "
            f"for {mail['registrations']} registrations"
        )
    return "\n".join(lines)


def chart(document: dict[str, Any], path: Path) -> None:
    """Two panels: ratios against their reference with targets, and latencies (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = document["summary"]
    targets = list(summary["targets"])
    keys = list(dict.fromkeys(k for t in targets for k in summary["targets"][t]))
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    width = 0.8 / max(len(targets), 1)
    for index, target in enumerate(targets):
        entries = summary["targets"][target]
        xs = [i + index * width for i, key in enumerate(keys) if key in entries]
        ratios = [entries[key]["ratio"] for key in keys if key in entries]
        bars = left.bar(xs, ratios, width, label=target)
        for bar, value in zip(bars, ratios, strict=True):
            left.annotate(
                f"{value:.2f}",
                (bar.get_x() + bar.get_width() / 2, value),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    for i, key in enumerate(keys):
        entry = summary["targets"][targets[0]][key]
        if entry["target"] is not None:
            left.hlines(
                entry["target"], i - 0.1, i + 0.8 - 0.1 + 0.1, colors="red", linestyles="--"
            )
    left.set_xticks([i + width * (len(targets) - 1) / 2 for i in range(len(keys))])
    references = {
        key: summary["targets"][targets[0]][key]["compared_to"].split()[0] for key in keys
    }
    left.set_xticklabels([f"{key}\n(vs {references[key]})" for key in keys], fontsize=8)
    left.set_ylabel("req/s ratio (red dashes: target)")
    left.set_title("Throughput against the floor app or the bcrypt bound")
    left.legend(fontsize=8)

    labels = ["floor", *keys]
    first = summary["targets"][targets[0]]
    p50 = [summary["floor"]["p50_ms"]] + [first[key]["p50_ms"] for key in keys]
    p99 = [summary["floor"]["p99_ms"]] + [first[key]["p99_ms"] for key in keys]
    positions = range(len(labels))
    right.bar([p - 0.2 for p in positions], p50, 0.4, label="p50")
    right.bar([p + 0.2 for p in positions], p99, 0.4, label="p99")
    right.set_yscale("log")
    right.set_xticks(list(positions))
    right.set_xticklabels(labels, fontsize=8, rotation=20)
    right.set_ylabel("latency, ms (log)")
    right.set_title(f"Latency under wrk -c{document['settings']['wrk_connections']} ({targets[0]})")
    right.legend(fontsize=8)
    machine = document["machine"]
    figure.suptitle(
        f"Warden benchmark {document['generated_at']} - {machine['nproc']} x "
        f"{machine['cpu_model']}, {document['settings']['web_concurrency']} sync workers, "
        f"BCRYPT_ROUNDS={document['settings']['bcrypt_rounds']}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
