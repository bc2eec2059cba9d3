from hub.redact import REDACTED, redact


def test_secret_keys_are_redacted_at_any_depth() -> None:
    data = {
        "command": "ls",
        "env": {"API_KEY": "abc", "nested": [{"password": "p"}]},
        "Authorization": "Bearer abc",
    }
    assert redact(data) == {
        "command": "ls",
        "env": {"API_KEY": REDACTED, "nested": [{"password": REDACTED}]},
        "Authorization": REDACTED,
    }


def test_secret_looking_values_are_redacted_inside_text() -> None:
    key = "pl_0123456789abcdef_" + "A" * 43
    text = f"curl -H 'Authorization: Bearer {'x' * 30}' --key {key} sk-{'a' * 40}"
    cleaned = redact({"command": text})["command"]
    assert key not in cleaned
    assert "sk-" + "a" * 40 not in cleaned
    assert "x" * 30 not in cleaned
    assert cleaned.startswith("curl -H")


def test_ordinary_values_are_kept() -> None:
    data = {"tokens_used": 0, "path": "/tmp/x", "count": 3, "flag": True, "none": None}
    assert redact(data) == {
        "tokens_used": 0,
        "path": "/tmp/x",
        "count": 3,
        "flag": True,
        "none": None,
    }
