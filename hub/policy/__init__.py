"""Policy as code: the schema, the loader, CEL, the decision engine, export/diff, policy tests.

    from hub.policy import load_policy, ToolCall, CallContext

    policy = load_policy(text, filename="policy.yaml")    # raises PolicyError (every problem)
    decision = policy.decide(ToolCall(tool="bash", args={...}, context=CallContext(time=now)))
    decision.action, decision.rule, decision.workflow, decision.message, decision.explanation

See docs/policies.md for the file format and the rules of evaluation.
"""

from hub.policy.bench import BenchResult, Latency, generate_policy, run_policy_bench
from hub.policy.cases import (
    CaseReport,
    CaseResult,
    PolicyCase,
    load_cases,
    load_cases_file,
    run_cases,
)
from hub.policy.cel import (
    ENGINES,
    POLICY_VARIABLES,
    CelCompileError,
    CelEngine,
    CelEvaluationError,
    CelProgram,
    CelPythonEngine,
    default_engine,
    engine_named,
)
from hub.policy.diff import diff_policies
from hub.policy.engine import (
    CallContext,
    CompiledPolicy,
    CompiledRule,
    CompiledTool,
    Decision,
    Principal,
    ToolCall,
)
from hub.policy.export import export_policy, policy_digest
from hub.policy.loader import load_policy, load_policy_file
from hub.policy.model import (
    SUPPORTED_VERSIONS,
    Action,
    ApprovalWorkflow,
    Channel,
    Defaults,
    Escalation,
    JustificationMode,
    McpServerSpec,
    Metadata,
    OnError,
    OnTimeout,
    PolicyDocument,
    Rule,
    Tool,
    ToolSource,
    Transport,
)
from hub.policy.servers import resolve_server_env

__all__ = [
    "ENGINES",
    "POLICY_VARIABLES",
    "SUPPORTED_VERSIONS",
    "Action",
    "ApprovalWorkflow",
    "BenchResult",
    "CallContext",
    "CaseReport",
    "CaseResult",
    "CelCompileError",
    "CelEngine",
    "CelEvaluationError",
    "CelProgram",
    "CelPythonEngine",
    "Channel",
    "CompiledPolicy",
    "CompiledRule",
    "CompiledTool",
    "Decision",
    "Defaults",
    "Escalation",
    "JustificationMode",
    "Latency",
    "McpServerSpec",
    "Metadata",
    "OnError",
    "OnTimeout",
    "PolicyCase",
    "PolicyDocument",
    "Principal",
    "Rule",
    "Tool",
    "ToolCall",
    "ToolSource",
    "Transport",
    "default_engine",
    "diff_policies",
    "engine_named",
    "export_policy",
    "generate_policy",
    "load_cases",
    "load_cases_file",
    "load_policy",
    "load_policy_file",
    "policy_digest",
    "resolve_server_env",
    "run_cases",
    "run_policy_bench",
]
