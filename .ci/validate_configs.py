#!/usr/bin/env python3
"""Validate the deployment configuration offline.

- docker-compose.yml against the Compose Specification JSON schema vendored in
  check-jsonschema (after Compose-style variable interpolation), plus checks the schema
  cannot express (depends_on targets, named volumes, build paths, bind mounts) and project
  rules (heartbeat health checks, the broker and cache Redis roles, every metrics port
  scraped and every scrape target real).
- The Prometheus config and the Grafana provisioning files compose mounts, against schemas
  written for this project (.ci/schemas/), plus what Prometheus would refuse at start-up.
- Every Grafana dashboard: structure, layout, datasources, and every panel query parsed for
  the metric names and labels it uses, each checked against the metric definitions in
  infra/metrics.py (with the _total, _bucket, _sum, _count series prometheus-client adds).
- Every manifest under k8s/ (overlays included) against the Kubernetes JSON schemas bundled
  in kubernetes-validate, in strict mode (unknown fields are errors); KEDA's ScaledObject
  (a CRD) against .ci/schemas/scaledobject-keda-v1alpha1.json. Plus cross-resource checks
  (selectors, references, names, quantities, scale targets, kustomize patch targets) and
  project rules (probes, metrics ports, Redis roles, the dashboard ConfigMap = the JSON).
  Kustomization is not a Kubernetes kind: it gets a structural check instead.
- uv.lock: the Dockerfile and .ci/run install from it with the same uv release.

Usage: python .ci/validate_configs.py [--kubernetes-version 1.30] [--write-dashboards]
Exit status: 0 valid, 1 invalid, 2 cannot run (missing package or schema).
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:
    import jsonschema
    import yaml
    from referencing import Registry, Resource
except ImportError as exc:  # pragma: no cover - depends on the environment
    print(
        f"validate_configs: cannot run, missing package: {exc.name}. "
        "Install the dev extra: uv pip install -e '.[dev]'",
        file=sys.stderr,
    )
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
BASE = ROOT  # paths in messages are relative to the repository checked (--root)
# Errors, not notes, once every setting compose and k8s use is in example.env on main.
STRICT_SETTINGS = True
DEFAULT_KUBERNETES_VERSION = "1.30"
REQUIRED_COMPOSE_SERVICES = (
    "postgres", "redis", "redis-cache", "migrate", "api", "worker", "worker-webhooks",
    "scheduler", "flower", "prometheus", "grafana",
)  # fmt: skip
KUSTOMIZATION_FIELDS = {
    "apiVersion", "kind", "metadata", "resources", "components", "crds", "namespace",
    "namePrefix", "nameSuffix", "labels", "commonLabels", "commonAnnotations", "images",
    "replicas", "patches", "patchesStrategicMerge", "patchesJson6902", "replacements", "vars",
    "configMapGenerator", "secretGenerator", "generatorOptions", "generators", "transformers",
    "validators", "openapi", "buildMetadata", "sortOptions", "helmCharts", "helmGlobals",
    "configurations",
}  # fmt: skip
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$")
# Kinds whose objects live in a namespace (the ones this project uses, and common others).
NAMESPACED = {
    "ConfigMap", "Secret", "Service", "ServiceAccount", "Deployment", "StatefulSet",
    "DaemonSet", "Job", "CronJob", "PodDisruptionBudget", "HorizontalPodAutoscaler",
    "NetworkPolicy", "Ingress", "Role", "RoleBinding", "PersistentVolumeClaim", "Pod",
    "ScaledObject",
}  # fmt: skip
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")


# --- YAML ------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as stream:  # a stream, so errors name the file
        return [doc for doc in yaml.load_all(stream, Loader=_StrictLoader) if doc is not None]


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(BASE))
    except ValueError:
        return str(path)


def json_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document root)"


def _known_properties(
    schema: Any, root: dict[str, Any], depth: int = 0
) -> tuple[set[str], list[str]]:
    """Property names and patterns a (sub)schema declares, following local $refs and allOf."""
    names: set[str] = set()
    patterns: list[str] = []
    if not isinstance(schema, dict) or depth > 10:
        return names, patterns
    names.update(schema.get("properties") or {})
    patterns.extend(schema.get("patternProperties") or {})
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        sub_names, sub_patterns = _known_properties(target, root, depth + 1)
        names |= sub_names
        patterns += sub_patterns
    for sub in schema.get("allOf") or []:
        sub_names, sub_patterns = _known_properties(sub, root, depth + 1)
        names |= sub_names
        patterns += sub_patterns
    return names, patterns


def _unevaluated_message(err: Any, root: dict[str, Any]) -> str | None:
    """unevaluatedProperties also lists valid keys whose sibling check failed elsewhere
    (a failed allOf branch drops its annotations). Report only the keys no schema declares."""
    names, patterns = _known_properties(err.schema, root)
    unknown = [
        key
        for key in err.instance
        if key not in names and not any(re.search(p, key) for p in patterns)
    ]
    if not unknown:
        return None
    return f"unknown field(s) {', '.join(map(repr, unknown))}"


def schema_errors(validator: Any, instance: Any) -> Iterator[str]:
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path))):
        message = err.message
        if err.validator == "unevaluatedProperties" and isinstance(err.instance, dict):
            refined = _unevaluated_message(err, validator.schema)
            if refined is None:
                continue
            message = refined
        if err.context:  # oneOf/anyOf: the deepest complaint is usually the real one
            deepest = err
            while deepest.context:
                deepest = max(deepest.context, key=lambda e: len(e.absolute_path))
            message = (
                f"matches none of the allowed forms; closest: "
                f"{json_path(deepest.absolute_path)}: {deepest.message}"
            )
        if len(message) > 400:
            message = message[:400] + "..."
        yield f"{json_path(err.absolute_path)}: {message}"


# --- Metrics and PromQL ------------------------------------------------------------------

# Series prometheus-client exposes for each kind of metric defined as NAME (a Counter's
# NAME loses a trailing _total first). `_created` is on by default.
METRIC_SERIES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_count", "_sum", "_created"),
    "Summary": ("", "_count", "_sum", "_created"),
    "Info": ("_info",),
    "Enum": ("",),
}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
PROMQL_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
PROMQL_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_KEYWORDS = {"offset", "bool", "and", "or", "unless", "inf", "nan", "atan2"}
_PROMQL_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      |(?P<range>\[[^\]]*\])
      |(?P<number>(?:0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)[a-z]*)
      |(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
      |(?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}@])
      |(?P<space>\s+)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class MetricCatalog:
    """Every series name infra/metrics.py makes prometheus-client expose, with its labels."""

    source: str
    series: dict[str, frozenset[str]]
    defined: dict[str, str]  # name as written -> kind

    def describe(self) -> str:
        return ", ".join(f"{name} ({kind})" for name, kind in sorted(self.defined.items()))


def _string_list(node: ast.expr | None) -> list[str] | None:
    if node is None:
        return []
    if isinstance(node, ast.List | ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return [e.value for e in node.elts if isinstance(e, ast.Constant)]
    return None


def load_metric_catalog(path: Path, report: Report) -> MetricCatalog | None:
    """Parse the metric definitions (Counter("name", "help", ["label", ...]) and kin)."""
    name = rel(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError) as exc:
        report.error(name, f"cannot parse the metric definitions: {exc}")
        return None
    series: dict[str, frozenset[str]] = {}
    defined: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        kind = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if kind not in METRIC_SERIES:
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        name_node = node.args[0] if node.args else keywords.get("name")
        labels_node = node.args[2] if len(node.args) > 2 else keywords.get("labelnames")
        parts = [keywords.get("namespace"), keywords.get("subsystem"), name_node]
        if (
            not all(
                p is None or (isinstance(p, ast.Constant) and isinstance(p.value, str))
                for p in parts
            )
            or name_node is None
        ):
            report.error(name, f"line {node.lineno}: {kind} name is not a string literal")
            continue
        labels = _string_list(labels_node)
        if labels is None:
            report.error(name, f"line {node.lineno}: {kind} labels are not a literal list")
            continue
        full = "_".join(p.value for p in parts if isinstance(p, ast.Constant) and p.value)
        if kind == "Counter":
            full = full.removesuffix("_total")
        defined[full] = kind
        for suffix in METRIC_SERIES[kind]:
            extra = {"le"} if suffix == "_bucket" else set()
            if kind == "Summary" and suffix == "":
                extra = {"quantile"}
            series[full + suffix] = frozenset(labels) | extra
    if not defined:
        report.error(name, "defines no Prometheus metric")
        return None
    return MetricCatalog(name, series, defined)


@dataclass
class PromQLReferences:
    selectors: list[tuple[str, list[str]]] = field(default_factory=list)  # metric, its matchers
    grouping: list[str] = field(default_factory=list)  # labels in by/without/on/... lists
    problems: list[str] = field(default_factory=list)


def _matchers(tokens: list[tuple[str, str]], start: int) -> tuple[list[str], str | None, int]:
    """Label names of a {...} selector starting at tokens[start] == '{'; __name__ if given."""
    labels: list[str] = []
    metric = None
    index = start + 1
    while index < len(tokens) and tokens[index][1] != "}":
        kind, text = tokens[index]
        if kind == "ident" and index + 2 < len(tokens) and tokens[index + 1][0] == "op":
            if (
                text == "__name__"
                and tokens[index + 1][1] == "="
                and tokens[index + 2][0] == "string"
            ):
                metric = tokens[index + 2][1][1:-1]
            else:
                labels.append(text)
            index += 3
            continue
        index += 1
    return labels, metric, index + 1


def _promql_tokens(expr: str, refs: PromQLReferences) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expr):
        match = _PROMQL_TOKEN.match(expr, position)
        if match is None:
            refs.problems.append(f"unexpected character {expr[position]!r} at {position}")
            return []
        position = match.end()
        if match.lastgroup != "space":
            tokens.append((str(match.lastgroup), match.group(0)))
    depth = 0
    for _, text in tokens:
        depth += {"(": 1, ")": -1}.get(text, 0)
        if depth < 0:
            break
    if depth != 0:
        refs.problems.append("unbalanced parentheses")
    return tokens


def promql_references(expr: str) -> PromQLReferences:
    """The metric selectors and grouping labels of a PromQL expression.

    A tokenizer, not a parser: an identifier is a metric unless it is a keyword, an
    aggregation, a function (followed by '('), a label in {...} or in a by/on/... list.
    """
    refs = PromQLReferences()
    tokens = _promql_tokens(expr, refs)
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "ident" and text in PROMQL_LABEL_LISTS and following == "(":
            index += 2
            while index < len(tokens) and tokens[index][1] != ")":
                if tokens[index][0] == "ident":
                    refs.grouping.append(tokens[index][1])
                index += 1
            index += 1
        elif text == "{":
            labels, metric, index = _matchers(tokens, index)
            if metric is None:
                refs.problems.append("a selector names no metric")
            else:
                refs.selectors.append((metric, labels))
        elif kind == "ident":
            if (
                text in PROMQL_KEYWORDS | PROMQL_AGGREGATIONS | PROMQL_LABEL_LISTS
                or following == "("
            ):
                index += 1
                continue
            labels: list[str] = []
            index += 1
            if following == "{":
                labels, _, index = _matchers(tokens, index)
            refs.selectors.append((text, labels))
        else:
            index += 1
    return refs


def check_query(where: str, expr: str, catalog: MetricCatalog | None, report: Report) -> list[str]:
    """Every metric the query names exists in infra/metrics.py, with the labels it uses."""
    refs = promql_references(expr)
    for problem in refs.problems:
        report.error(where, f"query {expr!r}: {problem}")
    if not refs.selectors:
        report.error(where, f"query {expr!r} names no metric")
    if catalog is None:
        return [metric for metric, _ in refs.selectors]
    known_labels: set[str] = set(TARGET_LABELS)
    for metric, labels in refs.selectors:
        if metric not in catalog.series:
            hint = ""
            if metric + "_total" in catalog.series:
                hint = f" (a counter: use {metric}_total)"
            elif metric + "_bucket" in catalog.series:
                hint = f" (a histogram: use {metric}_bucket, _sum or _count)"
            report.error(
                where,
                f"query {expr!r} names metric {metric!r}, which {catalog.source} does not "
                f"define{hint}",
            )
            continue
        allowed = catalog.series[metric] | TARGET_LABELS
        known_labels |= allowed
        for label in labels:
            if label not in allowed:
                report.error(
                    where,
                    f"query {expr!r} matches label {label!r}, which {metric} does not have "
                    f"(it has: {', '.join(sorted(catalog.series[metric])) or 'none'})",
                )
    for label in refs.grouping:
        if label not in known_labels:
            report.error(
                where, f"query {expr!r} groups by {label!r}, a label of none of its metrics"
            )
    if "histogram_quantile" in expr and refs.grouping and "le" not in refs.grouping:
        report.error(where, f"query {expr!r}: histogram_quantile needs the 'le' label kept")
    return [metric for metric, _ in refs.selectors]


# --- Prometheus and Grafana ----------------------------------------------------------------

_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
                     "y": 31536000}  # fmt: skip


def seconds(duration: str) -> float:
    return sum(int(n) * _DURATION_SECONDS[unit] for n, unit in _DURATION.findall(duration))


def project_schema(filename: str) -> Any:
    schema = json.loads((SCHEMAS_DIR / filename).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def load_yaml_file(path: Path, report: Report) -> Any:
    if not path.is_file():
        report.error(rel(path), "file not found")
        return None
    try:
        docs = load_yaml_documents(path)
    except yaml.YAMLError as exc:
        report.error(rel(path), f"not valid YAML: {exc}")
        return None
    if len(docs) != 1:
        report.error(rel(path), "must hold exactly one YAML document")
        return None
    return docs[0]


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    host: str
    port: int


def check_prometheus_config(path: Path, report: Report) -> list[ScrapeTarget]:
    """Structure (schema) plus what Prometheus would refuse at start-up."""
    name = rel(path)
    config = load_yaml_file(path, report)
    if config is None:
        return []
    before = len(report.errors)
    for problem in schema_errors(project_schema("prometheus-config.json"), config):
        report.error(name, problem)
    if len(report.errors) != before:
        return []
    defaults = config.get("global") or {}
    targets: list[ScrapeTarget] = []
    jobs: set[str] = set()
    for job in config["scrape_configs"]:
        where = f"{name}: job {job['job_name']!r}"
        if job["job_name"] in jobs:
            report.error(where, "job_name is used twice")
        jobs.add(job["job_name"])
        interval = job.get("scrape_interval", defaults.get("scrape_interval", "1m"))
        timeout = job.get("scrape_timeout", defaults.get("scrape_timeout", "10s"))
        if seconds(timeout) > seconds(interval):
            report.error(where, f"scrape_timeout {timeout} exceeds scrape_interval {interval}")
        for relabel in job.get("relabel_configs", []) + job.get("metric_relabel_configs", []):
            try:
                re.compile(relabel.get("regex", "(.*)"))
            except re.error as exc:
                report.error(where, f"relabel regex {relabel.get('regex')!r}: {exc}")
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                targets.append(ScrapeTarget(job["job_name"], host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            targets.extend(ScrapeTarget(job["job_name"], n, dns["port"]) for n in dns["names"])
    print(f"prometheus {name}: jobs {', '.join(sorted(jobs))}")
    return targets


def check_grafana_provisioning(
    directories: list[Path], report: Report
) -> tuple[set[str], list[str], list[str]]:
    """Datasource uids, dashboard provider paths and datasource urls they provision."""
    uids: set[str] = set()
    provider_paths: list[str] = []
    urls: list[str] = []
    files = sorted(p for d in directories for p in d.rglob("*") if p.suffix in {".yaml", ".yml"})
    if not files:
        report.error(", ".join(map(rel, directories)) or "grafana", "no provisioning files")
    validator = project_schema("grafana-provisioning.json")
    for path in files:
        doc = load_yaml_file(path, report)
        if doc is None:
            continue
        before = len(report.errors)
        for problem in schema_errors(validator, doc):
            report.error(rel(path), problem)
        if len(report.errors) != before:
            continue
        for source in doc.get("datasources", []):
            if source["uid"] in uids:
                report.error(rel(path), f"datasource uid {source['uid']!r} is used twice")
            uids.add(source["uid"])
            urls.append(source["url"])
        provider_paths.extend(p["options"]["path"] for p in doc.get("providers", []))
        print(f"grafana  {rel(path)}: provisioning")
    return uids, provider_paths, urls


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def check_dashboard(
    path: Path, catalog: MetricCatalog | None, datasource_uids: set[str], report: Report
) -> None:
    """Structure, layout, datasources, and that every query names metrics that exist."""
    name = rel(path)
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.error(name, f"not valid JSON: {exc}")
        return
    before = len(report.errors)
    for problem in schema_errors(project_schema("grafana-dashboard.json"), dashboard):
        report.error(name, problem)
    if len(report.errors) != before:
        return
    variables = {v["name"]: v for v in (dashboard.get("templating") or {}).get("list", [])}
    ids: set[int] = set()
    placed: list[tuple[str, dict[str, int]]] = []
    queries = 0
    metrics: set[str] = set()
    for panel in dashboard["panels"]:
        where = f"{name}: panel {panel['id']} {panel['title']!r}"
        if panel["id"] in ids:
            report.error(where, "panel id is used twice")
        ids.add(panel["id"])
        grid = panel["gridPos"]
        if grid["x"] + grid["w"] > 24:
            report.error(where, "gridPos reaches past the 24 columns")
        for other, other_grid in placed:
            if _overlaps(grid, other_grid):
                report.error(where, f"overlaps {other}")
        placed.append((f"panel {panel['id']}", grid))
        ref_ids: set[str] = set()
        for target in panel.get("targets", []):
            queries += 1
            if target["refId"] in ref_ids:
                report.error(where, f"refId {target['refId']} is used twice")
            ref_ids.add(target["refId"])
            source = target.get("datasource", panel.get("datasource"))
            check_datasource_ref(where, source, variables, datasource_uids, report)
            metrics.update(check_query(where, target["expr"], catalog, report))
    print(
        f"grafana  {name}: {len(ids)} panels, {queries} queries on "
        f"{len(metrics)} series, each checked against {catalog.source if catalog else '?'}"
    )


def check_datasource_ref(
    where: str,
    source: dict[str, str] | None,
    variables: dict[str, Any],
    datasource_uids: set[str],
    report: Report,
) -> None:
    if not source or source.get("type") != "prometheus":
        report.error(where, "queries must use a Prometheus datasource")
        return
    uid = source["uid"]
    variable = re.fullmatch(r"\$\{?(\w+)\}?", uid)
    if variable:
        declared = variables.get(variable.group(1))
        if (
            not declared
            or declared.get("type") != "datasource"
            or declared.get("query") != "prometheus"
        ):
            report.error(where, f"datasource {uid} is not a Prometheus datasource variable")
    elif uid not in datasource_uids:
        report.error(
            where, f"datasource uid {uid!r} is not provisioned ({sorted(datasource_uids)})"
        )


# --- Compose ---------------------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>))"
)
_BRACED = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$"
)


def interpolate(value: Any, where: str, report: Report) -> Any:
    """Compose interpolation with NO variables set, so results never depend on the shell:
    ${X:-d} and ${X-d} give d, ${X:?e} gives a stand-in (Compose would demand X), others ''."""
    if isinstance(value, dict):
        return {k: interpolate(v, f"{where}.{k}", report) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{where}[{i}]", report) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return ""
        braced = _BRACED.match(match["braced"] or "") if match["braced"] is not None else None
        if braced is None:
            report.error(where, f"invalid interpolation {match.group(0)!r} in {value!r}")
            return ""
        op, arg = braced["op"], braced["arg"] or ""
        if op in {":-", "-"}:
            return arg
        if op in {":?", "?"}:
            return f"<{braced['name']}>"
        return ""

    return _INTERPOLATION.sub(replace, value)


def compose_schema() -> tuple[dict[str, Any], str]:
    ref = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    raw = ref.read_bytes()
    origin = (
        f"compose-spec.json vendored in check-jsonschema {metadata.version('check-jsonschema')} "
        f"(sha256 {hashlib.sha256(raw).hexdigest()[:12]})"
    )
    return json.loads(raw), origin


def check_compose(path: Path, catalog: MetricCatalog | None, report: Report) -> Path | None:
    """Returns the Grafana dashboards directory compose mounts (checked), if any."""
    name = rel(path)
    if not path.is_file():
        report.error(name, "file not found")
        return None
    try:
        schema, origin = compose_schema()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        print(
            f"validate_configs: cannot run: Compose schema not found ({exc}); "
            "install check-jsonschema (dev extra)",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        docs = load_yaml_documents(path)
    except yaml.YAMLError as exc:
        report.error(name, f"not valid YAML: {exc}")
        return None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        report.error(name, "must be exactly one YAML mapping")
        return None
    project = interpolate(docs[0], name, report)
    validator = jsonschema.Draft202012Validator(schema)
    before = len(report.errors)
    for problem in schema_errors(validator, project):
        report.error(name, problem)
    services = sorted(project.get("services") or {})
    print(f"compose  {name}: services {', '.join(services)}")
    print(f"         schema: {origin}")
    if len(report.errors) == before:
        compose_semantics(path, project, report)
        return compose_operations(path, project.get("services") or {}, catalog, report)
    return None


def compose_semantics(path: Path, project: dict[str, Any], report: Report) -> None:
    name = rel(path)
    services: dict[str, Any] = project.get("services") or {}
    volumes = set(project.get("volumes") or {})
    if "version" in project:
        report.notes.append(f"{name}: top-level 'version' is obsolete in Compose v2; drop it")
    for svc_name, svc in services.items():
        where = f"{name}: services.{svc_name}"
        depends = svc.get("depends_on") or []
        for target in depends if isinstance(depends, list) else depends.keys():
            if target not in services:
                report.error(where, f"depends_on names undefined service {target!r}")
        for mount in svc.get("volumes") or []:
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source")
            kind = "bind" if isinstance(mount, str) else mount.get("type", "volume")
            is_named = source and not source.startswith((".", "/", "~", "$"))
            if kind in {"bind", "volume"} and is_named and source not in volumes:
                report.error(where, f"volume {source!r} is not declared under top-level volumes")
        build = svc.get("build")
        if build is not None:
            context = path.parent / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile"
            if isinstance(build, dict):
                dockerfile = build.get("dockerfile", dockerfile)
            if not context.is_dir():
                report.error(where, f"build context {rel(context)} is not a directory")
            elif not (context / dockerfile).is_file():
                report.error(where, f"Dockerfile {rel(context / dockerfile)} does not exist")
        env_files = svc.get("env_file") or []
        for entry in [env_files] if isinstance(env_files, str) else env_files:
            env_path = entry if isinstance(entry, str) else entry.get("path")
            required = isinstance(entry, str) or entry.get("required", True)
            if required and not (path.parent / env_path).is_file():
                report.error(where, f"env_file {env_path!r} does not exist")
    compose_project_rules(name, services, report)


def compose_project_rules(name: str, services: dict[str, Any], report: Report) -> None:
    """Rules from ARCHITECTURE.md that the Compose schema cannot know."""
    for required in REQUIRED_COMPOSE_SERVICES:
        if required not in services:
            report.error(name, f"service {required!r} is missing")
    scheduler = services.get("scheduler") or {}
    replicas = (scheduler.get("deploy") or {}).get("replicas", scheduler.get("scale", 1))
    if str(replicas) != "1":
        report.error(f"{name}: services.scheduler", "Celery beat must run exactly once")
    if "api" in services and "healthcheck" not in services["api"]:
        report.error(f"{name}: services.api", "needs a healthcheck (GET /health/ready)")


# --- Compose: operations (monitoring, health, Redis roles) ---------------------------------


def service_env(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(str(item).partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_args(command: Any) -> list[str]:
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command or []]


def option_value(args: list[str], flag: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def bind_mounts(svc: dict[str, Any]) -> list[tuple[str, str]]:
    """(host source, container target) of the bind mounts whose source is a host path."""
    mounts = []
    for mount in svc.get("volumes") or []:
        if isinstance(mount, str):
            parts = mount.split(":")
            source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
        else:
            source, target = str(mount.get("source", "")), str(mount.get("target", ""))
        if source.startswith((".", "/", "~")):
            mounts.append((source, target))
    return mounts


def host_path(svc: dict[str, Any], container_path: str, base: Path) -> Path | None:
    """The file in the repository that a service sees at container_path, through its mounts."""
    for source, target in bind_mounts(svc):
        mounted = target.rstrip("/")
        if container_path == mounted or container_path.startswith(mounted + "/"):
            return (base / source / container_path[len(mounted) :].lstrip("/")).resolve()
    return None


def url_host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or default_port


def redis_policy(args: list[str]) -> tuple[str | None, str | None]:
    """(maxmemory, maxmemory-policy) given to redis-server on its command line."""
    return option_value(args, "--maxmemory"), option_value(args, "--maxmemory-policy")


def check_redis_roles(
    where: str, env: dict[str, str], servers: dict[str, list[str]], report: Report
) -> None:
    """The broker Redis never evicts; the cache Redis is bounded and evicts LRU; not one server."""
    if "REDIS_URL" not in env:
        report.error(where, "REDIS_URL is not set")
        return
    broker, _ = url_host_port(env["REDIS_URL"], 6379)
    cache, _ = url_host_port(env.get("CACHE_REDIS_URL", env["REDIS_URL"]), 6379)
    if cache == broker:
        report.error(
            where,
            "the availability cache shares the broker's Redis: set CACHE_REDIS_URL to a Redis "
            "of its own, so evicting cache entries can never drop a queue",
        )
    for host, role, wanted in ((broker, "broker", "noeviction"), (cache, "cache", "allkeys-lru")):
        if host not in servers:
            report.notes.append(
                f"{where}: {role} Redis {host!r} is not defined here; configure "
                f"it with maxmemory-policy {wanted}"
            )
            continue
        maxmemory, policy = redis_policy(servers[host])
        if policy != wanted:
            report.error(
                where,
                f"{role} Redis {host!r} needs --maxmemory-policy {wanted} "
                f"(explicitly), has {policy!r}",
            )
        if role == "cache" and not maxmemory:
            report.error(where, f"cache Redis {host!r} needs --maxmemory (or it never evicts)")


def heartbeat_probe_problem(args: list[str]) -> str | None:
    """None if args run `booking probe --max-age N`, else why not."""
    if args[:2] != ["booking", "probe"]:
        return "must run `booking probe --max-age SECONDS` (the heartbeat file's age)"
    age = option_value(args, "--max-age")
    try:
        if age is None or float(age) <= 0:
            raise ValueError
    except ValueError:
        return f"`booking probe` needs a positive --max-age, got {age!r}"
    return None


def compose_operations(
    path: Path, services: dict[str, Any], catalog: MetricCatalog | None, report: Report
) -> Path | None:
    """Monitoring, health checks and Redis roles; returns the dashboards directory it checked."""
    name, base = rel(path), path.parent
    for svc_name, svc in services.items():
        for source, _ in bind_mounts(svc):
            if not source.startswith("~") and not (base / source).exists():
                report.error(
                    f"{name}: services.{svc_name}", f"bind mount {source!r} does not exist"
                )
    servers = {n: command_args(s.get("command")) for n, s in services.items()}
    app_env = service_env(services.get("api") or {})
    check_redis_roles(name, app_env, servers, report)
    flower = services.get("flower")
    if flower is not None:
        broker = service_env(flower).get("CELERY_BROKER_URL") or option_value(
            servers["flower"], "--broker"
        )
        if (
            not broker
            or url_host_port(broker, 6379)[0]
            != url_host_port(app_env.get("REDIS_URL", ""), 6379)[0]
        ):
            report.error(f"{name}: services.flower", "must watch the broker Redis (REDIS_URL)")
    check_compose_workers(name, services, servers, report)
    check_compose_scraping(path, services, servers, report)
    return check_compose_grafana(path, services, catalog, report)


def check_compose_workers(
    name: str, services: dict[str, Any], servers: dict[str, list[str]], report: Report
) -> None:
    """Heartbeat health checks on workers and the scheduler; workers scale; webhooks alone."""
    for svc_name, svc in services.items():
        args = servers[svc_name]
        if args[:2] not in (["booking", "worker"], ["booking", "scheduler"]):
            continue
        where = f"{name}: services.{svc_name}"
        test = command_args((svc.get("healthcheck") or {}).get("test"))
        if test[:1] == ["CMD-SHELL"]:
            test = shlex.split(" ".join(test[1:]))
        elif test[:1] == ["CMD"]:
            test = test[1:]
        if problem := heartbeat_probe_problem(test):
            report.error(where, f"healthcheck {problem}")
        if not service_env(svc).get("HEARTBEAT_FILE"):
            report.error(where, "HEARTBEAT_FILE is not set, so `booking probe` has nothing to read")
        if args[:2] == ["booking", "worker"]:
            for key in ("container_name", "ports"):
                if key in svc:
                    report.error(where, f"{key!r} stops `--scale {svc_name}=N`")
    webhooks = services.get("worker-webhooks")
    if webhooks is not None and option_value(servers["worker-webhooks"], "--queues") != "webhooks":
        report.error(
            f"{name}: services.worker-webhooks", "must run `booking worker --queues webhooks`"
        )


def check_compose_scraping(
    path: Path, services: dict[str, Any], servers: dict[str, list[str]], report: Report
) -> None:
    name, base = rel(path), path.parent
    prometheus = services.get("prometheus")
    if prometheus is None:
        return
    config_path = option_value(servers["prometheus"], "--config.file") or (
        "/etc/prometheus/prometheus.yml"
    )
    config = host_path(prometheus, config_path, base)
    if config is None:
        report.error(f"{name}: services.prometheus", f"{config_path} is not mounted from the repo")
        return
    targets = check_prometheus_config(config, report)
    serving: dict[str, set[int]] = {}
    for svc_name, svc in services.items():
        args, env = servers[svc_name], service_env(svc)
        if args[:2] == ["booking", "api"]:
            serving[svc_name] = {int(option_value(args, "--port") or 8000)}
        elif env.get("METRICS_PORT", "0") not in {"", "0"}:
            serving[svc_name] = {int(env["METRICS_PORT"])}
    for target in targets:
        where = f"{rel(config)}: job {target.job!r}"
        if target.host not in services:
            report.error(where, f"scrapes {target.host!r}, which is not a service of {name}")
        elif target.port not in serving.get(target.host, set()):
            ports = sorted(serving.get(target.host, set())) or "no port (METRICS_PORT unset?)"
            report.error(
                where, f"scrapes {target.host}:{target.port}; it serves metrics on {ports}"
            )
    scraped = {(t.host, t.port) for t in targets}
    for svc_name, ports in serving.items():
        for port in sorted(ports - {p for h, p in scraped if h == svc_name}):
            report.error(f"{rel(config)}", f"no job scrapes service {svc_name!r} on port {port}")


def check_compose_grafana(
    path: Path, services: dict[str, Any], catalog: MetricCatalog | None, report: Report
) -> Path | None:
    name, base = rel(path), path.parent
    grafana = services.get("grafana")
    if grafana is None:
        return None
    where = f"{name}: services.grafana"
    provisioning = [
        (base / source).resolve()
        for source, target in bind_mounts(grafana)
        if (target.rstrip("/") + "/").startswith("/etc/grafana/provisioning/")
    ]
    if not provisioning or not all(d.is_dir() for d in provisioning):
        report.error(where, "/etc/grafana/provisioning is not mounted from directories of the repo")
        return None
    uids, provider_paths, urls = check_grafana_provisioning(provisioning, report)
    prometheus_port = 9090
    for url in urls:
        host, port = url_host_port(url, 80)
        if host not in services or port != prometheus_port:
            report.error(where, f"datasource url {url} is not the prometheus service on :9090")
    dashboards_dir = None
    for provider_path in provider_paths:
        directory = host_path(grafana, provider_path, base)
        if directory is None or not directory.is_dir():
            report.error(
                where, f"dashboard provider path {provider_path} is not mounted from the repo"
            )
            continue
        dashboards = sorted(directory.glob("*.json"))
        if not dashboards:
            report.error(rel(directory), "holds no dashboard")
        for dashboard in dashboards:
            check_dashboard(dashboard, catalog, uids, report)
        dashboards_dir = directory
    home = service_env(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        home_path = host_path(grafana, home, base)
        if home_path is None or not home_path.is_file():
            report.error(where, f"home dashboard {home} is not a mounted file")
    return dashboards_dir


# --- Kubernetes --------------------------------------------------------------------------


@dataclass
class K8sSchemas:
    version: str
    directory: Any  # importlib.resources Traversable
    registry: Registry[Any]
    validators: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, version: str) -> K8sSchemas:
        try:
            base = resources.files("kubernetes_validate") / "kubernetes-json-schema"
        except ModuleNotFoundError:
            print(
                "validate_configs: cannot run: kubernetes-validate is not installed "
                "(it ships the Kubernetes schemas); install the dev extra",
                file=sys.stderr,
            )
            sys.exit(2)
        directory = base / f"v{version}.0-local-strict"
        if not directory.is_dir():
            available = sorted(
                p.name[1:].removesuffix(".0-local-strict")
                for p in base.iterdir()
                if p.name.endswith("-local-strict")
            )
            print(
                f"validate_configs: cannot run: no Kubernetes {version} schemas in "
                f"kubernetes-validate; available: {', '.join(available)}",
                file=sys.stderr,
            )
            sys.exit(2)
        definitions = json.loads((directory / "_definitions.json").read_bytes())
        registry: Registry[Any] = Resource.from_contents(definitions) @ Registry()
        return cls(version, directory, registry)

    @staticmethod
    def filename(api_version: str, kind: str) -> str:
        # rbac.authorization.k8s.io/v1 -> rbac-v1; apps/v1 -> apps-v1; keda.sh/v1alpha1 ->
        # keda-v1alpha1
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        return f"{kind.lower()}-{group_version}.json"

    def origin(self, api_version: str, kind: str) -> str:
        """Where a kind's schema comes from, when it is not Kubernetes' own."""
        filename = self.filename(api_version, kind)
        if (self.directory / filename).is_file():
            return ""
        return f", CRD schema {rel(SCHEMAS_DIR / filename)}"

    def validator_for(self, api_version: str, kind: str) -> Any | None:
        filename = self.filename(api_version, kind)
        if filename not in self.validators:
            schema_file = self.directory / filename
            if not schema_file.is_file():
                schema_file = SCHEMAS_DIR / filename  # a CRD's schema, written for this project
            if not schema_file.is_file():
                return None
            schema = json.loads(schema_file.read_bytes())
            self.validators[filename] = jsonschema.Draft202012Validator(
                schema, registry=self.registry
            )
        return self.validators[filename]


@dataclass
class K8sObject:
    file: str
    doc: dict[str, Any]
    valid: bool = True  # passed its schema; invalid ones only serve as reference targets

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind"))

    @property
    def name(self) -> str:
        return str((self.doc.get("metadata") or {}).get("name"))

    @property
    def where(self) -> str:
        return f"{self.file}: {self.kind}/{self.name}"


def pod_spec(obj: K8sObject) -> dict[str, Any] | None:
    if obj.kind not in WORKLOADS:
        return None
    spec: dict[str, Any] = ((obj.doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return spec


def pod_labels(obj: K8sObject) -> dict[str, str]:
    node: Any = obj.doc
    for key in ("spec", "template", "metadata", "labels"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def check_kubernetes(
    directory: Path,
    version: str,
    catalog: MetricCatalog | None,
    dashboards_dir: Path | None,
    report: Report,
) -> None:
    schemas = K8sSchemas.load(version)
    files = sorted(p for p in directory.rglob("*") if p.suffix in {".yaml", ".yml"})
    if not files:
        report.error(rel(directory), "no manifests found")
        return
    objects: list[K8sObject] = []
    unparsed: list[str] = []
    kustomizations: list[tuple[Path, dict[str, Any]]] = []
    for path in files:
        try:
            docs = load_yaml_documents(path)
        except yaml.YAMLError as exc:
            report.error(rel(path), f"not valid YAML: {exc}")
            unparsed.append(rel(path))
            continue
        for index, doc in enumerate(docs):
            where = f"{rel(path)} (document {index + 1})"
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
                report.error(where, "needs apiVersion and kind")
                continue
            if str(doc["apiVersion"]).startswith("kustomize.config.k8s.io/"):
                kustomizations.append((path, doc))
                continue
            obj = K8sObject(rel(path), doc)
            validator = schemas.validator_for(str(doc["apiVersion"]), obj.kind)
            if validator is None:
                report.error(
                    where,
                    f"no schema for kind {obj.kind!r} apiVersion {doc['apiVersion']!r} "
                    f"in Kubernetes {version}",
                )
                continue
            before = len(report.errors)
            for problem in schema_errors(validator, doc):
                report.error(obj.where, problem)
            obj.valid = len(report.errors) == before
            objects.append(obj)
            origin = schemas.origin(str(doc["apiVersion"]), obj.kind)
            print(f"k8s      {obj.where} ({doc['apiVersion']}{origin})")
    for path, doc in kustomizations:
        check_kustomization(path, doc, files, objects, report)
    if unparsed:
        report.notes.append(f"cross-resource checks skipped: {', '.join(unparsed)} did not parse")
    else:
        k8s_semantics(objects, catalog, report)
    check_dashboard_configmaps(directory, dashboards_dir, catalog, report)
    print(
        f"         schema: Kubernetes {version} strict JSON schemas from "
        f"kubernetes-validate {metadata.version('kubernetes-validate')}"
    )


def kustomization_header_problems(doc: dict[str, Any]) -> list[str]:
    kind = doc.get("kind")
    expected = {"Kustomization": "v1beta1", "Component": "v1alpha1"}
    problems = [
        f"unknown Kustomization field {key!r}" for key in doc if key not in KUSTOMIZATION_FIELDS
    ]
    if kind not in expected:
        problems.append(f"kind must be Kustomization or Component, got {kind!r}")
    elif doc.get("apiVersion") != f"kustomize.config.k8s.io/{expected[kind]}":
        problems.append(f"a {kind} has apiVersion kustomize.config.k8s.io/{expected[kind]}")
    return problems


def check_kustomization(
    path: Path,
    doc: dict[str, Any],
    files: list[Path],
    objects: list[K8sObject],
    report: Report,
) -> None:
    name = rel(path)
    kind = doc.get("kind")
    print(f"kustomize {name}: structural check only ({kind} is not a Kubernetes kind)")
    for problem in kustomization_header_problems(doc):
        report.error(name, problem)
    listed = doc.get("resources") or []
    components = doc.get("components") or []
    if not all(
        isinstance(e, list) and all(isinstance(r, str) for r in e) for e in (listed, components)
    ):
        report.error(name, "resources and components must be lists of paths")
        return
    for entry in listed:
        if not (path.parent / entry).exists():
            report.error(name, f"resources entry {entry!r} does not exist")
        elif (path.parent / entry).resolve() in path.parent.resolve().parents:
            report.error(name, f"resources entry {entry!r} contains this directory (a cycle)")
    for entry in components:
        component = path.parent / entry / "kustomization.yaml"
        if not component.is_file():
            report.error(name, f"component {entry!r} has no kustomization.yaml")
    listed_paths = {(path.parent / entry).resolve() for entry in listed}
    for other in files:
        if other.parent == path.parent and other != path and other.resolve() not in listed_paths:
            report.notes.append(f"{name}: {other.name} is not listed, so `apply -k` skips it")
    for patch in doc.get("patches") or []:
        target = patch.get("target") or {}
        if not any(o.kind == target.get("kind") and o.name == target.get("name") for o in objects):
            report.error(
                name, f"patch target {target.get('kind')}/{target.get('name')} is undefined"
            )


def k8s_semantics(objects: list[K8sObject], catalog: MetricCatalog | None, report: Report) -> None:
    """Checks across resources; run on schema-valid objects, resolving references to all."""
    valid = [o for o in objects if o.valid]
    namespaces = {o.name for o in objects if o.kind == "Namespace"}
    seen: set[tuple[str, str, str]] = set()
    for obj in valid:
        meta = obj.doc.get("metadata") or {}
        key = (obj.kind, str(meta.get("namespace")), obj.name)
        if key in seen:
            report.error(obj.where, "defined twice")
        seen.add(key)
        check_names_and_labels(obj, report)
        if obj.kind in NAMESPACED and namespaces and meta.get("namespace") not in namespaces:
            report.error(obj.where, f"metadata.namespace should be one of {sorted(namespaces)}")
        spec = pod_spec(obj)
        if spec is not None:
            check_workload(obj, spec, objects, report)
    check_selectors(valid, objects, report)
    for obj in valid:
        if obj.kind == "ScaledObject":
            check_scaled_object(obj, objects, catalog, report)
    check_project_rules(valid, report)
    check_operations_rules(valid, report)
    check_k8s_redis_roles(valid, report)


def check_names_and_labels(obj: K8sObject, report: Report) -> None:
    pattern = DNS_LABEL if obj.kind in {"Namespace", "Service"} else DNS_SUBDOMAIN
    limit = 63 if pattern is DNS_LABEL else 253
    if not pattern.match(obj.name) or len(obj.name) > limit:
        report.error(obj.where, f"metadata.name {obj.name!r} is not a valid DNS name")
    label_sets = [(obj.doc.get("metadata") or {}).get("labels") or {}]
    if obj.kind in WORKLOADS:
        label_sets.append(pod_labels(obj))
    for labels in label_sets:
        for k, v in labels.items():
            name_part = k.rsplit("/", 1)[-1]
            if not LABEL_NAME.match(name_part) or len(name_part) > 63:
                report.error(obj.where, f"label key {k!r} is invalid")
            if v and (not LABEL_NAME.match(str(v)) or len(str(v)) > 63):
                report.error(obj.where, f"label value {v!r} is invalid")


def check_workload(
    obj: K8sObject, spec: dict[str, Any], objects: list[K8sObject], report: Report
) -> None:
    defined = {(o.kind, o.name) for o in objects}
    selector = ((obj.doc.get("spec") or {}).get("selector") or {}).get("matchLabels")
    if obj.kind != "Job" and not selects(selector, pod_labels(obj)):
        report.error(obj.where, "spec.selector.matchLabels does not match the pod template labels")
    account = spec.get("serviceAccountName")
    if account and account != "default" and ("ServiceAccount", account) not in defined:
        report.error(obj.where, f"serviceAccountName {account!r} is not defined here")
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    claims = (obj.doc.get("spec") or {}).get("volumeClaimTemplates") or []
    volumes |= {(claim.get("metadata") or {}).get("name") for claim in claims}
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        where = f"{obj.where} container {container.get('name')}"
        check_container(where, container, defined, volumes, report)


def check_container(
    where: str,
    container: dict[str, Any],
    defined: set[tuple[str, str]],
    volumes: set[str],
    report: Report,
) -> None:
    if not DNS_LABEL.match(str(container.get("name"))):
        report.error(where, "container name is not a valid DNS label")
    for source in container.get("envFrom") or []:
        for ref_key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = source.get(ref_key)
            if ref and not ref.get("optional") and (kind, ref.get("name")) not in defined:
                report.error(where, f"{ref_key} {ref.get('name')!r} is not defined here")
    for mount in container.get("volumeMounts") or []:
        if mount.get("name") not in volumes:
            report.error(where, f"volumeMount {mount.get('name')!r} has no matching volume")
    ports = {p.get("name") for p in container.get("ports") or []}
    for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
        port = ((container.get(probe_name) or {}).get("httpGet") or {}).get("port")
        if isinstance(port, str) and port not in ports:
            report.error(where, f"{probe_name} uses port {port!r}, not a named container port")
    resources_ = container.get("resources") or {}
    for section in ("requests", "limits"):
        for resource, quantity in (resources_.get(section) or {}).items():
            if not QUANTITY.match(str(quantity)):
                report.error(
                    where, f"resources.{section}.{resource} {quantity!r} is not a quantity"
                )


def check_selectors(valid: list[K8sObject], objects: list[K8sObject], report: Report) -> None:
    workloads = [o for o in objects if o.kind in WORKLOADS]
    for obj in valid:
        spec = obj.doc.get("spec") or {}
        if obj.kind == "Service" and spec.get("selector"):
            targets = [w for w in workloads if selects(spec["selector"], pod_labels(w))]
            if not targets:
                report.error(obj.where, "spec.selector matches no workload's pods")
            named_ports = {
                p.get("name")
                for w in targets
                if w.valid
                for c in (pod_spec(w) or {}).get("containers") or []
                for p in c.get("ports") or []
            }
            for port in spec.get("ports") or []:
                target = port.get("targetPort")
                checkable = targets and all(w.valid for w in targets)
                if checkable and isinstance(target, str) and target not in named_ports:
                    report.error(obj.where, f"targetPort {target!r} is not a port of the pods")
        elif obj.kind == "PodDisruptionBudget":
            selector = (spec.get("selector") or {}).get("matchLabels")
            if not any(selects(selector, pod_labels(w)) for w in workloads):
                report.error(obj.where, "spec.selector matches no workload's pods")
        elif obj.kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            wanted = (ref.get("kind"), ref.get("name"))
            target = next((w for w in workloads if (w.kind, w.name) == wanted), None)
            if target is None:
                report.error(obj.where, f"scaleTargetRef {'/'.join(map(str, wanted))} is undefined")
                continue
            if not target.valid:
                continue
            for c in (pod_spec(target) or {}).get("containers") or []:
                if "cpu" not in ((c.get("resources") or {}).get("requests") or {}):
                    report.error(obj.where, f"CPU target needs cpu requests on {c.get('name')}")


def check_project_rules(valid: list[K8sObject], report: Report) -> None:
    """Rules from ARCHITECTURE.md and the deployment brief."""
    for obj in valid:
        spec = pod_spec(obj)
        if spec is None:
            continue
        pod_security = spec.get("securityContext") or {}
        for container in spec.get("containers") or []:
            where = f"{obj.where} container {container.get('name')}"
            resources_ = container.get("resources") or {}
            if not resources_.get("requests") or not resources_.get("limits"):
                report.error(where, "needs resources.requests and resources.limits")
            non_root = (container.get("securityContext") or {}).get(
                "runAsNonRoot", pod_security.get("runAsNonRoot")
            )
            if non_root is not True:
                report.error(where, "needs securityContext.runAsNonRoot: true")
        component = pod_labels(obj).get("app.kubernetes.io/component")
        deployment_spec = obj.doc.get("spec") or {}
        if component == "scheduler":
            if deployment_spec.get("replicas") != 1:
                report.error(obj.where, "Celery beat must run exactly once: replicas 1")
            if (deployment_spec.get("strategy") or {}).get("type") != "Recreate":
                report.error(obj.where, "Celery beat needs strategy Recreate (never two at once)")
        grace = spec.get("terminationGracePeriodSeconds") or 30
        if component in {"worker", "webhooks-worker"} and grace < 60:
            report.error(obj.where, "workers need terminationGracePeriodSeconds >= 60")


# --- Kubernetes: autoscaling, operations, dashboards ---------------------------------------


def container_args(container: dict[str, Any]) -> list[str]:
    return command_args(container.get("command")) + command_args(container.get("args"))


def container_env(container: dict[str, Any]) -> dict[str, str]:
    return {
        str(e.get("name")): str(e.get("value", ""))
        for e in container.get("env") or []
        if "value" in e
    }


def config_data(objects: list[K8sObject]) -> dict[str, str]:
    """booking-config's settings (what envFrom gives every app container)."""
    for obj in objects:
        if obj.kind == "ConfigMap" and obj.name == "booking-config":
            return {str(k): str(v) for k, v in (obj.doc.get("data") or {}).items()}
    return {}


def check_scaled_object(
    obj: K8sObject, objects: list[K8sObject], catalog: MetricCatalog | None, report: Report
) -> None:
    spec = obj.doc.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    wanted = (ref.get("kind", "Deployment"), ref.get("name"))
    target = next((o for o in objects if (o.kind, o.name) == wanted), None)
    if target is None:
        report.error(obj.where, f"scaleTargetRef {'/'.join(map(str, wanted))} is undefined")
    for other in objects:
        other_ref = (other.doc.get("spec") or {}).get("scaleTargetRef") or {}
        if (
            other.kind == "HorizontalPodAutoscaler"
            and (
                other_ref.get("kind"),
                other_ref.get("name"),
            )
            == wanted
        ):
            report.error(
                obj.where, f"{other.where} scales the same target (KEDA makes its own HPA)"
            )
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if low > high:
        report.error(obj.where, f"minReplicaCount {low} exceeds maxReplicaCount {high}")
    if target is not None and target.name == "booking-worker":
        if low < 1:
            report.error(obj.where, "minReplicaCount must be >= 1: a worker runs the sweep")
        partitions = int(config_data(objects).get("BOOKING_PARTITIONS", "64"))
        if high > partitions:
            report.error(
                obj.where,
                f"maxReplicaCount {high} exceeds BOOKING_PARTITIONS {partitions}: the extra "
                "workers would own no partition",
            )
    for trigger in spec.get("triggers") or []:
        metadata = trigger.get("metadata") or {}
        if trigger.get("type") != "prometheus":
            continue
        where = f"{obj.where} trigger {trigger.get('name') or trigger.get('type')}"
        metrics = check_query(where, metadata.get("query", ""), catalog, report)
        if (
            target is not None
            and target.name == "booking-worker"
            and not any(m == "booking_queue_depth" for m in metrics)
        ):
            report.error(where, "booking workers scale on the queue depth (booking_queue_depth)")
        if float(metadata.get("threshold", "0") or 0) <= 0:
            report.error(where, "threshold must be > 0")


def check_operations_rules(valid: list[K8sObject], report: Report) -> None:
    """Heartbeat probes, metrics ports and the webhooks worker (ARCHITECTURE.md, issue 7)."""
    components = {pod_labels(o).get("app.kubernetes.io/component") for o in valid}
    for needed in ("worker", "webhooks-worker", "scheduler"):
        if needed not in components:
            report.error("k8s", f"no workload with component {needed!r}")
    for obj in valid:
        spec = pod_spec(obj)
        if spec is None:
            continue
        component = pod_labels(obj).get("app.kubernetes.io/component")
        annotations = ((obj.doc.get("spec") or {}).get("template") or {}).get("metadata") or {}
        annotations = annotations.get("annotations") or {}
        containers = spec.get("containers") or []
        ports = {p.get("containerPort") for c in containers for p in c.get("ports") or []}
        if annotations.get("prometheus.io/scrape") == "true":
            port = annotations.get("prometheus.io/port", "")
            if not port.isdigit() or int(port) not in ports:
                report.error(obj.where, f"prometheus.io/port {port!r} is not a container port")
        for container in containers:
            where = f"{obj.where} container {container.get('name')}"
            args, env = container_args(container), container_env(container)
            metrics_port = env.get("METRICS_PORT", "0")
            if (
                metrics_port not in {"", "0"}
                and annotations.get("prometheus.io/port") != metrics_port
            ):
                report.error(where, f"METRICS_PORT {metrics_port} is not the scraped port")
            if component not in {"worker", "webhooks-worker", "scheduler"}:
                continue
            check_heartbeat_probe(where, container, env, report)
            if component in {"worker", "webhooks-worker"} and metrics_port in {"", "0"}:
                report.error(where, "set METRICS_PORT so Prometheus can scrape this worker")
            if component == "webhooks-worker" and option_value(args, "--queues") != "webhooks":
                report.error(where, "must run `booking worker --queues webhooks`")
            if component == "worker" and option_value(args, "--queues") is not None:
                report.error(where, "booking workers take their share of partitions: no --queues")


def check_heartbeat_probe(
    where: str, container: dict[str, Any], env: dict[str, str], report: Report
) -> None:
    """The liveness probe reads a heartbeat file the container can write."""
    probe = ((container.get("livenessProbe") or {}).get("exec") or {}).get("command")
    if problem := heartbeat_probe_problem(command_args(probe)):
        report.error(where, f"livenessProbe {problem}")
    heartbeat = env.get("HEARTBEAT_FILE")
    if not heartbeat:
        report.error(where, "HEARTBEAT_FILE is not set, so `booking probe` has nothing to read")
    elif (container.get("securityContext") or {}).get("readOnlyRootFilesystem"):
        mounts = [
            str(m.get("mountPath", "")).rstrip("/") for m in container.get("volumeMounts") or []
        ]
        if not any(heartbeat.startswith(m + "/") for m in mounts):
            report.error(where, f"HEARTBEAT_FILE {heartbeat} is on the read-only root filesystem")


def check_k8s_redis_roles(valid: list[K8sObject], report: Report) -> None:
    """The Redis servers that the ConfigMap's URLs name, through their Services."""
    config = config_data(valid)
    if not config:
        return
    workloads = [o for o in valid if o.kind in WORKLOADS]
    servers: dict[str, list[str]] = {}
    for service in (o for o in valid if o.kind == "Service"):
        selector = (service.doc.get("spec") or {}).get("selector")
        for workload in workloads:
            if selects(selector, pod_labels(workload)):
                for container in (pod_spec(workload) or {}).get("containers") or []:
                    servers[service.name] = container_args(container)
    check_redis_roles("k8s/configmap.yaml: booking-config", config, servers, report)


def dashboard_configmap(name: str, key: str, text: str) -> str:
    """The ConfigMap that carries a dashboard JSON file, byte for byte (see --write-dashboards)."""
    body = "".join(f"    {line}\n" if line else "\n" for line in text.splitlines())
    return (
        "# GENERATED from deploy/grafana/dashboards/ by "
        "`python .ci/validate_configs.py --write-dashboards`;\n"
        "# CI fails if it differs. Grafana's sidecar loads it (label grafana_dashboard).\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  namespace: booking\n"
        "  labels:\n"
        "    app.kubernetes.io/part-of: booking\n"
        '    grafana_dashboard: "1"\n'
        "data:\n"
        f"  {key}: |\n"
        f"{body}"
    )


def dashboard_configmap_path(k8s_dir: Path, dashboard: Path) -> Path:
    return k8s_dir / f"grafana-dashboard-{dashboard.stem}.yaml"


def check_dashboard_configmaps(
    k8s_dir: Path,
    dashboards_dir: Path | None,
    catalog: MetricCatalog | None,
    report: Report,
) -> None:
    """Each dashboard under deploy/ ships in k8s/ as a ConfigMap with the same bytes."""
    if dashboards_dir is None:
        return
    for dashboard in sorted(dashboards_dir.glob("*.json")):
        configmap = dashboard_configmap_path(k8s_dir, dashboard)
        expected = dashboard_configmap(
            f"booking-grafana-dashboard-{dashboard.stem}",
            dashboard.name,
            dashboard.read_text(encoding="utf-8"),
        )
        if not configmap.is_file() or configmap.read_text(encoding="utf-8") != expected:
            report.error(
                rel(configmap),
                f"is not {rel(dashboard)} as a ConfigMap; regenerate it with "
                "`python .ci/validate_configs.py --write-dashboards`",
            )
        else:
            print(f"k8s      {rel(configmap)}: same bytes as {rel(dashboard)}")


# --- Settings ---------------------------------------------------------------------------

_SETTING_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def documented_settings(root: Path) -> set[str]:
    """Every variable example.env lists (set or commented out)."""
    path = root / "example.env"
    return set(_SETTING_LINE.findall(path.read_text(encoding="utf-8"))) if path.is_file() else set()


def app_settings_compose(root: Path) -> dict[str, set[str]]:
    """Variables docker-compose.yml gives the services that run our image, by service."""
    docs = load_yaml_documents(root / "docker-compose.yml")
    services = (docs[0] if docs else {}).get("services") or {}
    return {
        name: set(service_env(svc))
        for name, svc in services.items()
        if command_args(svc.get("command"))[:1] == ["booking"]
    }


def app_settings_k8s(root: Path) -> dict[str, set[str]]:
    """Variables the manifests give containers that run our image, by where they are set."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / "k8s").rglob("*.yaml")):
        for doc in load_yaml_documents(path):
            if not isinstance(doc, dict):
                continue
            name = (doc.get("metadata") or {}).get("name")
            if doc.get("kind") == "ConfigMap" and name == "booking-config":
                found[f"ConfigMap/{name}"] = set(doc.get("data") or {})
            elif doc.get("kind") == "Secret" and name == "booking-secrets":
                found[f"Secret/{name}"] = set(doc.get("stringData") or {}) | set(
                    doc.get("data") or {}
                )
            elif doc.get("kind") in WORKLOADS:
                obj = K8sObject(rel(path), doc)
                for container in (pod_spec(obj) or {}).get("containers") or []:
                    if str(container.get("image", "")).startswith("booking-backend"):
                        env = {str(e.get("name")) for e in container.get("env") or []}
                        found[f"{obj.kind}/{obj.name}"] = env
    return found


def check_settings_documented(root: Path, strict: bool, report: Report) -> None:
    """Compose and k8s set only variables the code reads: example.env lists every one."""
    documented = documented_settings(root)
    try:
        by_place = {f"docker-compose.yml: {k}": v for k, v in app_settings_compose(root).items()}
        by_place |= {f"k8s: {k}": v for k, v in app_settings_k8s(root).items()}
    except (OSError, yaml.YAMLError):
        return  # reported by the compose and k8s checks
    for place, names in sorted(by_place.items()):
        for unknown in sorted(names - documented):
            message = f"sets {unknown}, which example.env does not list (does the code read it?)"
            if strict:
                report.error(place, message)
            else:
                report.notes.append(f"{place}: {message}")


# --- The lock file ------------------------------------------------------------------------


def check_lock_usage(root: Path, report: Report) -> None:
    """uv.lock exists; the image and CI install from it, frozen, with the same uv release."""
    lock, dockerfile, ci = root / "uv.lock", root / "Dockerfile", root / ".ci" / "run"
    for path in (lock, dockerfile, ci):
        if not path.is_file():
            report.error(rel(path), "file not found")
            return
    docker_text, ci_text = dockerfile.read_text(encoding="utf-8"), ci.read_text(encoding="utf-8")
    docker_uv = re.search(r"^ARG UV_VERSION=(\S+)", docker_text, re.MULTILINE)
    ci_uv = re.search(r"^uv_version=(\S+)", ci_text, re.MULTILINE)
    if not docker_uv or not ci_uv or docker_uv.group(1) != ci_uv.group(1):
        report.error(
            "Dockerfile, .ci/run",
            "must pin the same uv release (ARG UV_VERSION= and uv_version=), which reads uv.lock",
        )
    if not re.search(r"COPY [^\n]*uv\.lock", docker_text):
        report.error(rel(dockerfile), "does not copy uv.lock into the build")
    for path, text in ((dockerfile, docker_text), (ci, ci_text)):
        if not re.search(r"uv sync\b[^\n]*--frozen", text):
            report.error(rel(path), "must install with `uv sync --frozen` (exactly the lock)")
    if not re.search(r"^uv lock --check", ci_text, re.MULTILINE):
        report.error(rel(ci), "must check that uv.lock is current (`uv lock --check`)")
    version = ci_uv.group(1) if ci_uv else "?"
    print(f"lock     {rel(lock)}: installed frozen by Dockerfile and .ci/run with uv {version}")


def write_dashboards(root: Path) -> int:
    """Regenerate k8s/grafana-dashboard-*.yaml from deploy/grafana/dashboards/*.json."""
    for dashboard in sorted((root / "deploy" / "grafana" / "dashboards").glob("*.json")):
        target = dashboard_configmap_path(root / "k8s", dashboard)
        target.write_text(
            dashboard_configmap(
                f"booking-grafana-dashboard-{dashboard.stem}",
                dashboard.name,
                dashboard.read_text(encoding="utf-8"),
            ),
            encoding="utf-8",
        )
        print(f"wrote {rel(target)}")
    return 0


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository to check")
    parser.add_argument(
        "--write-dashboards",
        action="store_true",
        help="regenerate the k8s dashboard ConfigMaps from deploy/grafana/dashboards, then stop",
    )
    parser.add_argument(
        "--strict-settings",
        action=argparse.BooleanOptionalAction,
        default=STRICT_SETTINGS,
        help="a variable set in compose or k8s that example.env does not list is an error",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    global BASE  # noqa: PLW0603 - set once, before any message is written
    BASE = root
    if args.write_dashboards:
        return write_dashboards(root)

    report = Report()
    catalog = load_metric_catalog(root / "infra" / "metrics.py", report)
    if catalog is not None:
        print(f"metrics  {catalog.source}: {catalog.describe()}")
    dashboards_dir = check_compose(root / "docker-compose.yml", catalog, report)
    check_kubernetes(root / "k8s", args.kubernetes_version, catalog, dashboards_dir, report)
    check_lock_usage(root, report)
    check_settings_documented(root, args.strict_settings, report)

    for note in report.notes:
        print(f"note: {note}")
    if report.errors:
        print(f"\nINVALID: {len(report.errors)} problem(s):", file=sys.stderr)
        for problem in report.errors:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print("OK: deployment configuration is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
