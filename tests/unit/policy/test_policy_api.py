"""The public API of hub.policy."""

from __future__ import annotations

import subprocess
import sys

import hub.policy


def test_every_name_in_all_exists() -> None:
    missing = [name for name in hub.policy.__all__ if not hasattr(hub.policy, name)]

    assert missing == []
    assert len(hub.policy.__all__) == len(set(hub.policy.__all__))


def test_the_core_api_is_exported() -> None:
    expected = {
        "load_policy",
        "load_policy_file",
        "CompiledPolicy",
        "PolicyDocument",
        "ToolCall",
        "Principal",
        "CallContext",
        "Decision",
        "Action",
        "export_policy",
        "diff_policies",
        "load_cases",
        "run_cases",
        "CaseReport",
        "resolve_server_env",
        "CelEngine",
        "generate_policy",
        "run_policy_bench",
    }

    assert expected <= set(hub.policy.__all__)


def test_importing_the_policy_package_pulls_in_no_framework() -> None:
    code = (
        "import sys, hub.policy; "
        "bad = [m for m in ('litestar', 'textual', 'sqlalchemy', 'mcp', 'httpx', 'click') "
        "if m in sys.modules]; print(','.join(bad))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == ""
