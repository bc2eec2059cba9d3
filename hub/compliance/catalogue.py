"""The compliance catalogue: the metrics (DoR, INVEST, Risk), their model prompts and the rule
sets of the offline scorer, read from a YAML file (the packaged ``catalogue.yaml``, or the
operator's own through ``PRELOOP_SEARCH_COMPLIANCE_CATALOGUE``).

Loading is strict and happens once, when the server starts: an unknown key, a missing field, a
bad weight, a regular expression that does not compile or a missing metric is a
``ConfigError`` naming the file and the field (``$.metrics[1].rules[0].pattern``). The
catalogue's ``digest`` (SHA-256 of the file) is part of every cached model answer's key, so a
changed catalogue never serves an answer the old one produced.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import yaml

from hub.errors import ConfigError, ValidationError

PACKAGED = Path(__file__).with_name("catalogue.yaml")
METRICS = ("DoR", "INVEST", "Risk")  # what a catalogue must define, and all it may
FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL

Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$")]
Prose = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=20000)]
Weight = Annotated[float, msgspec.Meta(gt=0, le=100)]
Count = Annotated[int, msgspec.Meta(ge=0, le=100000)]
Where = Literal["title", "body", "text"]  # text: the title, a blank line, the body


class _Check(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    weight: Weight = 1.0
    reason: Prose  # what the reason says when the check fails
    suggestion: Prose
    section: str = ""  # what improve adds to the description when it fails


class TitleCheck(_Check, frozen=True, kw_only=True, tag_field="check", tag="title"):
    min_words: Count = 3
    vague: tuple[str, ...] = ()


class MinWords(_Check, frozen=True, kw_only=True, tag_field="check", tag="min_words"):
    where: Where = "body"
    min: Count


class MaxWords(_Check, frozen=True, kw_only=True, tag_field="check", tag="max_words"):
    where: Where = "body"
    max: Count


class Labels(_Check, frozen=True, kw_only=True, tag_field="check", tag="labels"):
    min: Count = 1


class Matches(_Check, frozen=True, kw_only=True, tag_field="check", tag="matches"):
    where: Where = "body"
    pattern: Prose


class Absent(_Check, frozen=True, kw_only=True, tag_field="check", tag="absent"):
    where: Where = "body"
    pattern: Prose


class MaxCount(_Check, frozen=True, kw_only=True, tag_field="check", tag="max_count"):
    where: Where = "body"
    pattern: Prose
    max: Count


class IfMentioned(_Check, frozen=True, kw_only=True, tag_field="check", tag="if_mentioned"):
    where: Where = "text"
    when: Prose
    pattern: Prose


Check = TitleCheck | MinWords | MaxWords | Labels | Matches | Absent | MaxCount | IfMentioned


class Prompts(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    evaluate: Prompt
    propose_improvement: Prompt


class Metric(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    title: Prose
    description: Prose
    scale: Prose  # what 1.0 and 0.0 mean (for Risk: a high score is a low risk)
    prompts: Prompts
    rules: Annotated[tuple[Check, ...], msgspec.Meta(min_length=1, max_length=50)]


class _File(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1)]
    metrics: Annotated[tuple[Metric, ...], msgspec.Meta(min_length=1, max_length=10)]


class Catalogue(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded, checked catalogue; ``digest`` identifies its exact text."""

    source: str
    version: int
    digest: str
    metrics: dict[str, Metric]

    def metric(self, name: str) -> Metric:
        found = self.metrics.get(name)
        if found is None:
            raise ValidationError(
                f"metric: {name!r} is not a compliance metric (one of {', '.join(METRICS)})",
                field="metric",
            )
        return found


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """The catalogue at ``path`` (the packaged one when empty), checked strictly."""
    source = Path(path) if path else PACKAGED
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"compliance catalogue {source}: cannot read it: {exc}") from exc
    return parse_catalogue(raw, str(source))


@functools.cache
def packaged_catalogue() -> Catalogue:
    """The catalogue shipped with Preloop, read once per process."""
    return load_catalogue(PACKAGED)


def parse_catalogue(raw: bytes, source: str) -> Catalogue:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"compliance catalogue {source}: {problem}")

    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {exc}") from exc
    try:
        parsed = msgspec.convert(data, type=_File, strict=True)
    except msgspec.ValidationError as exc:
        raise fail(str(exc)) from exc
    metrics: dict[str, Metric] = {}
    for i, metric in enumerate(parsed.metrics):
        at = f"$.metrics[{i}]"
        if metric.name not in METRICS:
            raise fail(f"unknown metric {metric.name!r} - at `{at}.name` (one of {METRICS})")
        if metric.name in metrics:
            raise fail(f"metric {metric.name!r} is defined twice - at `{at}.name`")
        _check_rules(metric, at, source)
        metrics[metric.name] = metric
    missing = [m for m in METRICS if m not in metrics]
    if missing:
        raise fail(f"metric {', '.join(missing)} is missing - at `$.metrics`")
    return Catalogue(
        source=source,
        version=parsed.version,
        digest=hashlib.sha256(raw).hexdigest(),
        metrics=metrics,
    )


def _check_rules(metric: Metric, at: str, source: str) -> None:
    names: set[str] = set()
    for j, rule in enumerate(metric.rules):
        here = f"{at}.rules[{j}]"
        if rule.name in names:
            raise ConfigError(
                f"compliance catalogue {source}: rule {rule.name!r} is defined twice "
                f"- at `{here}.name`"
            )
        names.add(rule.name)
        for field in ("pattern", "when"):
            text = getattr(rule, field, None)
            if text is None:
                continue
            try:
                re.compile(text, FLAGS)
            except re.error as exc:
                raise ConfigError(
                    f"compliance catalogue {source}: not a regular expression ({exc}) "
                    f"- at `{here}.{field}`"
                ) from exc


@functools.cache
def compiled(pattern: str) -> re.Pattern[str]:
    """A catalogue pattern, compiled once per process (they were checked at load)."""
    return re.compile(pattern, FLAGS)
