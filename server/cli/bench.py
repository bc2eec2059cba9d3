"""``preloop bench``: benchmarks whose figures go to docs/performance.md."""

from __future__ import annotations

import os
import platform

import click

from server.cli.output import echo_json, json_option, table


@click.group()
def bench() -> None:
    """Measure Preloop's performance on this machine."""


def progress(message: str) -> None:
    """A benchmark's progress line, on stderr (stdout carries the results)."""
    click.echo(message, err=True)


def positive_ints(text: str, option: str) -> tuple[int, ...]:
    """``"1,10"`` → ``(1, 10)``; ``BadParameter`` naming ``option`` otherwise."""
    try:
        parsed = tuple(int(c) for c in text.split(","))
    except ValueError as exc:
        raise click.BadParameter(f"{option} must be integers separated by commas: {exc}") from exc
    if any(c < 1 for c in parsed):
        raise click.BadParameter(f"{option} must be positive")
    return parsed


def machine_summary() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average unknown"
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, {load}"
    )


@bench.command(name="policy")
@click.option(
    "--sizes",
    default="10,100,1000,10000",
    show_default=True,
    help="Policy sizes (tools), comma-separated.",
)
@click.option(
    "--rules", "rules_per_tool", type=int, default=5, show_default=True, help="Rules per tool."
)
@click.option(
    "--decisions",
    type=int,
    default=2000,
    show_default=True,
    help="Decisions measured per size and kind.",
)
@click.option(
    "--engine",
    "engines",
    multiple=True,
    metavar="NAME",
    help=(
        "CEL engine to measure: cel-rust (the default engine), cel-python (the reference "
        "engine) or all. Repeatable. Default: all available engines."
    ),
)
@click.option(
    "--prechecks/--no-prechecks",
    default=True,
    show_default=True,
    help="Answer simple rules with quick checks before the engine, as the server does.",
)
@json_option
def policy_bench(
    sizes: str,
    rules_per_tool: int,
    decisions: int,
    engines: tuple[str, ...],
    prechecks: bool,
    as_json: bool,
) -> None:
    """Policy load time and decision latency (p50, p99) by policy size, for the default CEL
    engine and the reference engine (cel-python), in one run."""
    import msgspec

    from hub.policy.bench import run_policy_bench
    from hub.policy.cel import ENGINES, REFERENCE_ENGINE, default_engine

    parsed = positive_ints(sizes, "--sizes")
    default = default_engine().name
    baseline = REFERENCE_ENGINE
    available = sorted(ENGINES, key=lambda name: (name != baseline, name))
    chosen: list[str] = []
    for name in engines or ("all",):
        names = sorted(available, key=lambda n: n != default) if name == "all" else [name]
        for engine in names:
            if engine not in ENGINES:
                raise click.BadParameter(
                    f"unknown engine '{engine}'; available: {', '.join(available)}, all",
                    param_hint="--engine",
                )
            if engine not in chosen:
                chosen.append(engine)

    results = run_policy_bench(
        sizes=parsed,
        rules_per_tool=rules_per_tool,
        decisions=decisions,
        progress=progress,
        engine=chosen,
        prechecks=prechecks,
    )
    load = load_summary()
    if as_json:
        echo_json(
            {
                "machine": machine_summary(),
                "load": load,
                "default_engine": default,
                "reference_engine": baseline,
                "results": msgspec.to_builtins(results),
            }
        )
        return
    click.echo(f"machine: {machine_summary()}")
    click.echo(f"load average (1, 5, 15 min): {load}")
    click.echo(
        f"settings: {rules_per_tool} rules per tool, {decisions} decisions per row, "
        f"quick checks {'on' if prechecks else 'off'}; default engine {default}, "
        f"reference engine {baseline}\n"
    )
    # How much faster than the reference engine each engine decides (unknown tools evaluate
    # no rule: no comparison there).
    base_p50 = {r.n_tools: r.last_rule.p50_us for r in results if r.engine == baseline}
    roles = {default: "default", baseline: "reference"}
    rows = []
    for r in results:
        for kind, latency in (("last rule", r.last_rule), ("unknown tool", r.unknown_tool)):
            reference = base_p50.get(r.n_tools)
            speedup = (
                f"{reference / latency.p50_us:.1f}x"
                if kind == "last rule" and r.engine != baseline and reference and latency.p50_us
                else "-"
            )
            role = roles.get(r.engine)
            rows.append(
                [
                    r.n_tools,
                    r.n_tools * r.rules_per_tool,
                    r.distinct_expressions,
                    f"{r.engine} ({role})" if role else r.engine,
                    f"{r.load_ms:.0f}",
                    kind,
                    f"{latency.p50_us:.1f}",
                    f"{latency.p99_us:.1f}",
                    f"{latency.mean_us:.1f}",
                    speedup,
                ]
            )
    headers = [
        "tools",
        "rules",
        "distinct CEL",
        "engine",
        "load (ms)",
        "decision",
        "p50 (us)",
        "p99 (us)",
        "mean (us)",
        f"p50 vs {baseline}",
    ]
    click.echo(table(headers, rows))
    summary = [r for r in results if r.engine == default]
    if summary:
        p50s = " / ".join(f"{r.last_rule.p50_us:.1f}" for r in summary)
        counts = " / ".join(f"{r.n_tools:,}" for r in summary)
        click.echo(
            f"\n{rules_per_tool}-rule tool, last rule, default engine ({default}): "
            f"p50 {p50s} us at {counts} tools"
        )


def load_summary() -> str:
    """The machine's load average now, for the record next to the figures."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


@bench.command(name="mcp")
@click.option("--calls", type=int, default=300, show_default=True, help="Calls measured per row.")
@click.option(
    "--concurrency",
    "concurrencies",
    default="1,20",
    show_default=True,
    help="Concurrent sessions, comma-separated (each makes its share of the calls in turn).",
)
@click.option(
    "--engine",
    default="auto",
    show_default=True,
    help="CEL engine of the Preloop server (PRELOOP_POLICY_CEL_ENGINE: auto, cel-rust, "
    "cel-python).",
)
@json_option
def mcp_bench(calls: int, concurrencies: str, engine: str, as_json: bool) -> None:
    """MCP tool-call latency directly to an upstream and through Preloop, and Preloop's CPU.

    Runs from a Preloop checkout (the repo root): the upstream is the in-repo test server
    on streamable HTTP, and Preloop runs as a 'preloop serve' subprocess.
    """
    import msgspec

    from server.mcp.bench import run_mcp_bench

    parsed = positive_ints(concurrencies, "--concurrency")
    if calls < 1:
        raise click.BadParameter("--calls must be positive")

    results = run_mcp_bench(calls=calls, concurrencies=parsed, engine=engine, progress=progress)
    direct = {r.concurrency: r for r in results if r.path == "direct"}
    if as_json:
        echo_json(
            {
                "machine": machine_summary(),
                "engine": engine,
                "results": msgspec.to_builtins(results),
            }
        )
        return
    click.echo(f"machine: {machine_summary()}")
    click.echo(f"settings: {calls} calls per row, engine {engine}, upstream streamable HTTP\n")
    rows = []
    for r in results:
        base = direct.get(r.concurrency)
        proxied = r.path == "proxied" and base is not None
        rows.append(
            [
                r.concurrency,
                r.path,
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                f"{r.calls_per_s:.0f}",
                f"{100 * r.calls_per_s / base.calls_per_s:.0f}%"
                if proxied and base and base.calls_per_s
                else "-",
                f"{r.p50_ms - base.p50_ms:.2f}" if proxied and base else "-",
                f"{r.p99_ms - base.p99_ms:.2f}" if proxied and base else "-",
                f"{r.server_cpu_ms_per_call:.2f}" if r.server_cpu_ms_per_call is not None else "-",
                f"{r.upstream_cpu_ms_per_call:.2f}"
                if r.upstream_cpu_ms_per_call is not None
                else "-",
            ]
        )
    headers = [
        "concurrency",
        "path",
        "p50 (ms)",
        "p99 (ms)",
        "calls/s",
        "of direct",
        "overhead p50 (ms)",
        "overhead p99 (ms)",
        "Preloop CPU (ms/call)",
        "upstream CPU (ms/call)",
    ]
    click.echo(table(headers, rows))


@bench.command(name="approvals")
@click.option(
    "--rounds", type=int, default=100, show_default=True, help="Decisions measured per setup."
)
@click.option(
    "--postgres-url",
    default="",
    envvar="PRELOOP_BENCH_POSTGRES_URL",
    help="PostgreSQL for the two-replica setup (a database the benchmark may migrate). "
    "Default: a throwaway local cluster when PostgreSQL is installed, else skipped.",
)
@click.option(
    "--channel",
    "channels",
    multiple=True,
    type=click.Choice(["rest", "slack"]),
    help="How the decision arrives: the REST API, or a signed Slack button callback to "
    "/slack/events. Repeatable. Default: both.",
)
@json_option
def approvals_bench(
    rounds: int, postgres_url: str, channels: tuple[str, ...], as_json: bool
) -> None:
    """Time from a decision (REST or Slack callback) to the waiting agent's result (p50, p99),
    in one process (SQLite) and across two replicas (PostgreSQL).

    Runs from a Preloop checkout (the repo root): the upstream is the in-repo test server.
    """
    import msgspec

    from server.mcp.approvals_bench import CHANNELS, run_approvals_bench

    if rounds < 1:
        raise click.BadParameter("--rounds must be positive")
    chosen = tuple(dict.fromkeys(channels)) or CHANNELS

    results = run_approvals_bench(
        rounds=rounds, postgres_url=postgres_url, progress=progress, channels=chosen
    )
    if as_json:
        echo_json({"machine": machine_summary(), "results": msgspec.to_builtins(results)})
        return
    click.echo(f"machine: {machine_summary()}")
    click.echo(
        f"settings: {rounds} decisions per setup and channel, agent on MCP, "
        f"decision on {' and '.join(chosen)}\n"
    )
    rows = [
        [
            r.setup,
            r.database,
            r.channel,
            r.rounds,
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.max_ms:.1f}",
            f"{r.decide_p50_ms:.1f}",
            f"{r.decide_p99_ms:.1f}",
        ]
        for r in results
    ]
    headers = ["setup", "database", "channel", "rounds", "p50 (ms)", "p99 (ms)", "max (ms)"]
    click.echo(table([*headers, "decide p50 (ms)", "decide p99 (ms)"], rows))


@bench.command(name="gateway")
@click.option(
    "--requests", type=int, default=1000, show_default=True, help="Requests measured per row."
)
@click.option(
    "--concurrency",
    "concurrencies",
    default="1,10",
    show_default=True,
    help="Concurrent clients, comma-separated (each makes its share of the requests in turn).",
)
@json_option
def gateway_bench(requests: int, concurrencies: str, as_json: bool) -> None:
    """Model requests directly to a fake provider and through Preloop's gateway: overhead
    (p50, p99; time to first byte when streaming), req/s with the ledger persisted, Preloop's
    CPU per request, cold start and idle RSS, against the targets."""
    import msgspec

    from server.model_gateway.bench import overhead, run_gateway_bench

    parsed = positive_ints(concurrencies, "--concurrency")
    if requests < 1:
        raise click.BadParameter("--requests must be positive")

    result = run_gateway_bench(requests=requests, concurrencies=parsed, progress=progress)
    if as_json:
        echo_json({"machine": machine_summary(), **msgspec.to_builtins(result)})
        return
    click.echo(f"machine: {machine_summary()}")
    click.echo(
        f"settings: {requests} requests per row, SQLite ledger, fake provider answering "
        "instantly, runtime-token auth\n"
    )
    rows = []
    for r in result.rows:
        extra = overhead(result.rows, r.mode, r.concurrency, r.path) if r.path != "direct" else None
        rows.append(
            [
                r.mode,
                r.concurrency,
                r.path,
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                f"{r.requests_per_s:.0f}",
                f"{extra[0]:+.2f}" if extra else "-",
                f"{extra[1]:+.2f}" if extra else "-",
                f"{r.preloop_cpu_ms_per_request:.2f}"
                if r.preloop_cpu_ms_per_request is not None
                else "-",
            ]
        )
    headers = [
        "mode",
        "concurrency",
        "path",
        "p50 (ms)",
        "p99 (ms)",
        "req/s",
        "overhead p50",
        "overhead p99",
        "Preloop CPU (ms/req)",
    ]
    click.echo(table(headers, rows))
    click.echo(
        f"\ncold start {result.cold_start_s:.2f} s (new data dir), "
        f"restart {result.restart_s:.2f} s, idle RSS {result.idle_rss_mb:.0f} MB, "
        f"ledger rows {result.ledger_rows} for {result.proxied_requests} proxied requests; "
        f"capture: {result.captured_found} of the last {result.captured_checked} calls of the "
        "captured execution captured\n"
    )
    click.echo(
        table(
            ["target", "measured", "limit", "met"],
            [
                [
                    t.name,
                    f"{t.value:.2f} {t.unit}",
                    f"{t.limit:g} {t.unit}",
                    "yes" if t.met else "NO",
                ]
                for t in result.targets
            ],
        )
    )


@bench.command(name="start")
@click.option("--runs", type=int, default=5, show_default=True, help="Runs (each: new + restart).")
@json_option
def start_bench(runs: int, as_json: bool) -> None:
    """Cold start of 'preloop serve' to /healthz 200 (new data directory and restart), the
    first REST and MCP answers, and idle RSS: medians over the runs, against the targets."""
    import msgspec

    from server.start_bench import TARGET_RSS_MB, TARGET_START_S, medians, run_start_bench

    if runs < 1:
        raise click.BadParameter("--runs must be positive")
    result = run_start_bench(runs, progress)
    if as_json:
        echo_json({"machine": machine_summary(), **msgspec.to_builtins(result)})
        return
    click.echo(f"machine: {machine_summary()}")
    click.echo(
        f"settings: {runs} runs, SQLite; load average {result.load_before:.2f} before, "
        f"{result.load_after:.2f} after\n"
    )
    rows = []
    for kind in ("new", "restart"):
        m = medians(result, kind)
        every = ", ".join(f"{r.healthz_s:.2f}" for r in result.runs if r.data_dir == kind)
        rows.append(
            [
                kind,
                f"{m.healthz_s:.2f}",
                f"{m.healthz_cpu_s:.2f}",
                every,
                f"{m.api_s:.2f}",
                f"{m.idle_rss_mb:.0f}",
                f"{m.mcp_s:.2f}",
                f"{m.mcp_rss_mb:.0f}",
                "yes" if m.healthz_s <= TARGET_START_S and m.idle_rss_mb <= TARGET_RSS_MB else "NO",
            ]
        )
    headers = [
        "data dir",
        "/healthz 200 (s)",
        "CPU by then (s)",
        "every run (s)",
        "first REST (s)",
        "idle RSS (MB)",
        "first MCP request (s)",
        "RSS after MCP (MB)",
        f"<= {TARGET_START_S:g} s, <= {TARGET_RSS_MB:g} MB",
    ]
    click.echo(table(headers, rows))


@bench.command(name="sync")
@click.option("--issues", type=int, default=1000, show_default=True, help="Issues in the fake.")
@click.option("--comments", type=int, default=2, show_default=True, help="Comments on each issue.")
@click.option(
    "--per-page", type=int, default=100, show_default=True, help="Issues per page (max 100)."
)
@click.option("--runs", type=int, default=3, show_default=True, help="Runs of each row.")
@json_option
def sync_bench(issues: int, comments: int, per_page: int, runs: int, as_json: bool) -> None:
    """Tracker sync throughput: issues/s syncing a repository from the GitHub fake into SQLite,
    against only fetching the same pages and comments (run from a repository checkout: the
    fake is tests/integration/fakes/github.py)."""
    import msgspec

    from server.sync_bench import run_sync_bench

    if issues < 1 or comments < 0 or runs < 1 or not 1 <= per_page <= 100:
        raise click.BadParameter(
            "--issues and --runs must be positive, --comments not negative, --per-page 1 to 100"
        )
    result = run_sync_bench(
        issues=issues, comments=comments, per_page=per_page, runs=runs, progress=progress
    )
    if as_json:
        echo_json({"machine": machine_summary(), **msgspec.to_builtins(result)})
        return
    click.echo(f"machine: {machine_summary()}")
    click.echo(
        f"settings: {issues} issues with {comments} comments each, {per_page} per page, "
        f"{runs} runs (medians), the GitHub fake in its own process over HTTP, a new SQLite "
        "database per sync\n"
    )
    click.echo(
        table(
            [
                "mode",
                "issues",
                "requests",
                "seconds",
                "issues/s",
                "CPU (ms/issue)",
                "every run (s)",
            ],
            [
                [
                    r.mode,
                    r.issues,
                    r.requests,
                    f"{r.seconds:.2f}",
                    f"{r.issues_per_s:.0f}",
                    f"{r.cpu_ms_per_issue:.2f}",
                    ", ".join(f"{s:.2f}" for s in r.every_run_s),
                ]
                for r in result.rows
            ],
        )
    )
    click.echo(
        f"\nsyncing adds {result.added_ms_per_issue:.2f} ms per issue to fetching it; "
        f"{result.stored_issues} issues stored"
    )


@bench.command(name="search")
@click.option("--issues", type=int, default=10_000, show_default=True, help="Issues to index.")
@click.option("--queries", type=int, default=200, show_default=True, help="Queries of each kind.")
@click.option(
    "--database-url",
    default=None,
    help="A PostgreSQL database to run on as well (migrated and written to); default: a "
    "throwaway local cluster when the PostgreSQL binaries are installed (dev extras).",
)
@click.option("--no-postgres", is_flag=True, help="SQLite only.")
@click.option(
    "--write",
    "write_to",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also replace this bench's section of that Markdown file (docs/performance.md).",
)
@json_option
def search_bench(
    issues: int,
    queries: int,
    database_url: str | None,
    no_postgres: bool,
    write_to: str | None,
    as_json: bool,
) -> None:
    """Issue search: indexing throughput (issues/s: embedding alone, then embed + store) and
    query latency p50/p99 of full text, similarity and filtered similarity, on SQLite and
    PostgreSQL (pgvector when the server has it)."""
    import msgspec

    from server.search_bench import run_search_bench, section

    if issues < 1 or queries < 1:
        raise click.BadParameter("--issues and --queries must be positive")
    result = run_search_bench(
        issues=issues,
        queries=queries,
        database_url=database_url,
        postgres=not no_postgres,
        progress=progress,
    )
    machine = machine_summary()
    if write_to is not None:
        from pathlib import Path

        path = Path(write_to)
        path.write_text(section(path.read_text(encoding="utf-8"), result, machine), "utf-8")
        progress(f"wrote the results into {write_to}")
    if as_json:
        echo_json({"machine": machine, **msgspec.to_builtins(result)})
        return
    from server.search_bench import render

    click.echo(render(result, machine))
