"""Policy benchmark: load time and decision latency by policy size (``preloop bench policy``).

:func:`generate_policy` writes a synthetic but realistic policy: every tool has ordered rules
over its arguments (``contains``, ``startsWith``/``endsWith``, case-insensitive ``matches``,
``has`` with comparisons, ``in`` lists, ``size``), some tools are tied to a server, and the last
rule of each tool allows commands with a tool-specific prefix. Expressions share a few shapes
and draw their literals from small pools, as real policies do, so many rules have the same
text; the loader compiles each distinct text once (the benchmark reports how many there were).

:func:`run_policy_bench` measures, per size and CEL engine (``cel-rust``, the default, and
``cel-python``, the reference; see :data:`hub.policy.cel.ENGINES`): load (parse + validate +
compile + index + digest), and decision latency for calls that reach the *last* rule of a
random tool (the slowest path: every rule evaluated) and for tools the policy does not list.
Every engine of a size decides the same calls, with quick checks (``prechecks``) as a server
runs them, or without. Nothing here asserts on timing; the numbers are for
``docs/performance.md``.
"""

from __future__ import annotations

import gc
import json
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec

from hub.policy.cel import engine_named
from hub.policy.engine import CallContext, CompiledPolicy, Principal, ToolCall
from hub.policy.loader import load_policy
from hub.policy.model import Action

__all__ = ["BenchResult", "Latency", "bench_call", "generate_policy", "run_policy_bench"]

_WORDS = ("deploy", "migrate", "rollback", "publish", "release", "scale", "restart", "drain")
_ENVS = ("production", "prod", "staging")
_DIRS = ("etc", "root", "var/lib", "srv", "boot")
_EXTS = ("pem", "key", "env", "sqlite", "kdbx")
_TABLES = ("users", "orders", "payments", "accounts", "sessions", "audit")
_ROLES = ("admin", "operator", "release-manager")
_PREFIXES = ("ls", "cat", "git status", "git diff", "grep", "head", "tail", "wc", "find", "du")
_SERVERS = 8
_NOON = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

_SHAPES: tuple[tuple[str, Action], ...] = (
    ("args.command.contains('{word}') && args.env == '{env}'", Action.REQUIRE_APPROVAL),
    ("args.path.startsWith('/{dir}/') || args.path.endsWith('.{ext}')", Action.DENY),
    ("args.query.matches('(?i)^\\\\s*(drop|truncate)\\\\s+(table\\\\s+)?{table}')", Action.DENY),
    ("has(args.limit) && args.limit > {limit}", Action.REQUIRE_APPROVAL),
    ("principal.role == '{role}' && args.env in ['prod', 'staging']", Action.ALLOW),
    ("size(args.items) > {count} || args.command.endsWith('--force')", Action.DENY),
)


class Latency(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    p50_us: float
    p99_us: float
    mean_us: float


class BenchResult(msgspec.Struct, frozen=True, kw_only=True):
    engine: str
    prechecks: bool
    n_tools: int
    rules_per_tool: int
    distinct_expressions: int
    yaml_bytes: int
    load_ms: float
    last_rule: Latency
    unknown_tool: Latency


def _tool_name(index: int) -> str:
    return f"tool_{index:05d}"


def _server_of(index: int) -> str | None:
    return f"srv-{index % _SERVERS}" if index % 10 == 0 else None


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def generate_policy(n_tools: int, rules_per_tool: int = 5, *, seed: int = 0) -> str:
    """A policy with ``n_tools`` tools of ``rules_per_tool`` rules each, as YAML text."""
    if n_tools < 1 or rules_per_tool < 1:
        raise ValueError("n_tools and rules_per_tool must be at least 1")
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    out = [
        'version: "1.0"',
        "metadata:",
        f"  name: {_q(f'bench-{n_tools}x{rules_per_tool}')}",
        "  description: Synthetic policy for preloop bench policy",
        "defaults:",
        "  action: allow",
        "  unknown_tools: deny",
        "  approval_workflow: bench-approval",
        "  on_error: deny",
        "mcp_servers:",
    ]
    for k in range(_SERVERS):
        out += [f"  - name: srv-{k}", "    transport: streamable-http"]
        out += [f"    url: http://127.0.0.1:{9000 + k}/mcp"]
    out += ["approval_workflows:", "  - name: bench-approval", "    timeout_seconds: 300"]
    out.append("tools:")
    for index in range(n_tools):
        out.append(f"  - name: {_tool_name(index)}")
        server = _server_of(index)
        if server:
            out.append(f"    server: {server}")
        out.append("    conditions:")
        for position in range(rules_per_tool - 1):
            shape, action = _SHAPES[(index + position) % len(_SHAPES)]
            expression = shape.format(
                word=rng.choice(_WORDS),
                env=rng.choice(_ENVS),
                dir=rng.choice(_DIRS),
                ext=rng.choice(_EXTS),
                table=rng.choice(_TABLES),
                limit=rng.choice((100, 500, 1000)),
                role=rng.choice(_ROLES),
                count=rng.choice((50, 100)),
            )
            out.append(f"      - expression: {_q(expression)}")
            out.append(f"        action: {action.value}")
        prefix = _PREFIXES[index % len(_PREFIXES)]
        last = f"args.command.startsWith('{prefix}')"
        out.append(f"      - expression: {_q(last)}")
        out.append("        action: allow")
        out.append("        description: read-only commands")
    return "\n".join(out) + "\n"


def bench_call(index: int, *, when: CallContext | None = None) -> ToolCall:
    """A call to tool ``index`` of a generated policy that reaches (and matches) its last rule."""
    return ToolCall(
        tool=_tool_name(index),
        server=_server_of(index) or "",
        args={
            "command": f"{_PREFIXES[index % len(_PREFIXES)]} -la /home/agent/project",
            "env": "dev",
            "path": "/home/agent/project/README.md",
            "query": "select id from users limit 10",
            "limit": 10,
            "items": [1, 2, 3],
        },
        principal=Principal(key_id="bench", role="agent"),
        context=when or CallContext(time=_NOON),
        justification=None,
    )


def _latency(samples: Sequence[int]) -> Latency:
    ordered = sorted(samples)
    count = len(ordered)

    def pct(q: float) -> float:
        return ordered[min(count - 1, round(q * (count - 1)))] / 1000

    return Latency(
        count=count, p50_us=pct(0.50), p99_us=pct(0.99), mean_us=sum(ordered) / count / 1000
    )


def _measure(policy: CompiledPolicy, calls: Sequence[ToolCall]) -> Latency:
    samples: list[int] = []
    clock = time.perf_counter_ns
    for call in calls:
        start = clock()
        policy.decide(call)
        samples.append(clock() - start)
    return _latency(samples)


def run_policy_bench(
    sizes: Sequence[int] = (10, 100, 1000, 10000),
    decisions: int = 1000,
    progress: Callable[[str], None] | None = None,
    *,
    rules_per_tool: int = 5,
    seed: int = 0,
    engine: str | Sequence[str] = "cel-python",
    prechecks: bool = True,
) -> list[BenchResult]:
    """Load and decide with generated policies of each size, with each CEL engine named in
    ``engine`` (``ValueError`` for an unknown one); one :class:`BenchResult` per size and
    engine, in that order. ``prechecks=False``: every rule goes to the engine."""
    engines = [engine] if isinstance(engine, str) else list(engine)
    for name in engines:
        engine_named(name)  # fail before any work on a name that is not an engine
    say = progress or (lambda _message: None)
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    results: list[BenchResult] = []
    for size in sizes:
        say(f"generating a policy with {size} tools x {rules_per_tool} rules")
        text = generate_policy(size, rules_per_tool, seed=seed)
        hits = [bench_call(rng.randrange(size)) for _ in range(decisions)]
        unknown = [
            msgspec.structs.replace(call, tool=f"unknown_{i}", server="")
            for i, call in enumerate(hits)
        ]
        for name in engines:
            say(f"[{name}] loading {len(text) / 1e6:.1f} MB of YAML")
            gc.collect()  # the previous policy's garbage is not this load's cost
            start = time.perf_counter_ns()
            policy = load_policy(
                text,
                filename=f"bench-{size}.yaml",
                engine=engine_named(name),
                prechecks=prechecks,
            )
            load_ns = time.perf_counter_ns() - start
            expected = f"{_tool_name(size - 1)}#{rules_per_tool}"
            check = policy.decide(bench_call(size - 1))
            if check.action is not Action.ALLOW or check.rule.rsplit("/", 1)[-1] != expected:
                raise RuntimeError(f"benchmark policy misbehaves: {check.explanation}")
            say(f"[{name}] deciding {decisions} calls that reach the last rule")
            last = _measure(policy, hits)
            say(f"[{name}] deciding {decisions} calls to unknown tools")
            missing = _measure(policy, unknown)
            distinct = {
                rule.expression for tool in policy.document.tools for rule in tool.conditions
            }
            results.append(
                BenchResult(
                    engine=name,
                    prechecks=prechecks,
                    n_tools=size,
                    rules_per_tool=rules_per_tool,
                    distinct_expressions=len(distinct),
                    yaml_bytes=len(text.encode()),
                    load_ms=load_ns / 1e6,
                    last_rule=last,
                    unknown_tool=missing,
                )
            )
            del policy
    return results
