"""The compliance catalogue: the packaged one loads; a bad one is refused naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.compliance.catalogue import (
    METRICS,
    PACKAGED,
    IfMentioned,
    load_catalogue,
    packaged_catalogue,
)
from hub.errors import ConfigError, ValidationError

GOOD = PACKAGED.read_text()


def test_the_packaged_catalogue_defines_the_three_metrics_with_prompts_and_rules() -> None:
    catalogue = packaged_catalogue()

    assert METRICS == tuple(catalogue.metrics)
    for metric in catalogue.metrics.values():
        assert metric.prompts.evaluate.strip()
        assert metric.prompts.propose_improvement.strip()
        assert metric.rules
    assert "A HIGH score means LOW risk" in catalogue.metric("Risk").scale
    assert any(isinstance(r, IfMentioned) for r in catalogue.metric("Risk").rules)
    assert 64 == len(catalogue.digest)
    assert load_catalogue(None).digest == catalogue.digest  # empty setting: the packaged one


def test_an_unknown_metric_name_is_a_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="metric: 'DoD' is not a compliance metric") as e:
        packaged_catalogue().metric("DoD")
    assert "metric" == e.value.field


def _bad(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_catalogue(path)
    message = raised.value.message
    assert message.startswith(f"compliance catalogue {path}: "), message
    return message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("version: 1", "version: 1\nextra: true", "unknown field `extra`"),
        ("  - name: INVEST", "  - name: Speed", "unknown metric 'Speed' - at `$.metrics[1].name`"),
        ("  - name: INVEST", "  - name: DoR", "metric 'DoR' is defined twice - at `$.metrics[1]"),
        ("min: 20", "min: -1", "at `$.metrics[0].rules[1].min`"),
        ("check: labels", "check: emoji", "`$.metrics[0].rules[4].check`"),
        ("name: labelled", "name: title", "rule 'title' is defined twice - at `$.metrics[0]"),
        (
            "      - check: labels\n",
            "      - check: labels\n        weight: 0\n",
            "rules[4].weight",
        ),
        ("  - name: DoR", "  - nme: DoR", "`$.metrics[0]`"),
    ],
)
def test_a_malformed_catalogue_names_the_file_and_the_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    assert expected in _bad(tmp_path, GOOD.replace(old, new, 1))


def test_a_regular_expression_that_does_not_compile_is_named(tmp_path: Path) -> None:
    text = GOOD.replace("pattern: 'acceptance criteria|", "pattern: '(acceptance criteria|", 1)
    message = _bad(tmp_path, text)
    assert "not a regular expression" in message
    assert "at `$.metrics[0].rules[2].pattern`" in message


def test_a_missing_metric_not_yaml_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    risk = GOOD.index("  - name: Risk")
    assert "metric Risk is missing" in _bad(tmp_path, GOOD[:risk])
    assert "not valid YAML" in _bad(tmp_path, "metrics: [\n")
    with pytest.raises(ConfigError, match="cannot read it"):
        load_catalogue(tmp_path / "absent.yaml")


def test_an_operators_catalogue_is_used_and_has_its_own_digest(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD.replace("min: 20", "min: 50", 1))

    mine = load_catalogue(path)

    assert mine.digest != packaged_catalogue().digest
    assert str(path) == mine.source
