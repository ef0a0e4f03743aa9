#!/usr/bin/env python3
"""Validate the deployment configuration offline.

- docker-compose.yml against the Compose Specification JSON schema vendored in
  check-jsonschema (after Compose-style variable interpolation), plus checks the schema
  cannot express (depends_on targets, named volumes, build paths) and project rules.
- Every manifest under k8s/ against the Kubernetes JSON schemas bundled in
  kubernetes-validate, in strict mode (unknown fields are errors), plus cross-resource
  checks (selectors, references, names, quantities) and project rules.
  k8s/kustomization.yaml is not a core kind: it gets a structural check instead.

Usage: python .ci/validate_configs.py [--kubernetes-version 1.30]
Exit status: 0 valid, 1 invalid, 2 cannot run (missing package or schema).
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

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
DEFAULT_KUBERNETES_VERSION = "1.30"
REQUIRED_COMPOSE_SERVICES = ("postgres", "redis", "migrate", "api", "worker", "scheduler")
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
        return str(path.relative_to(ROOT))
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


def check_compose(path: Path, report: Report) -> None:
    name = rel(path)
    if not path.is_file():
        report.error(name, "file not found")
        return
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
        return
    if len(docs) != 1 or not isinstance(docs[0], dict):
        report.error(name, "must be exactly one YAML mapping")
        return
    project = interpolate(docs[0], name, report)
    validator = jsonschema.Draft202012Validator(schema)
    before = len(report.errors)
    for problem in schema_errors(validator, project):
        report.error(name, problem)
    if len(report.errors) == before:
        compose_semantics(path, project, report)
    services = sorted(project.get("services") or {})
    print(f"compose  {name}: services {', '.join(services)}")
    print(f"         schema: {origin}")


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
    worker = services.get("worker") or {}
    for key in ("container_name", "ports"):
        if key in worker:
            report.error(f"{name}: services.worker", f"{key!r} stops `--scale worker=N`")
    scheduler = services.get("scheduler") or {}
    replicas = (scheduler.get("deploy") or {}).get("replicas", scheduler.get("scale", 1))
    if str(replicas) != "1":
        report.error(f"{name}: services.scheduler", "Celery beat must run exactly once")
    if "api" in services and "healthcheck" not in services["api"]:
        report.error(f"{name}: services.api", "needs a healthcheck (GET /health/ready)")


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

    def validator_for(self, api_version: str, kind: str) -> Any | None:
        # rbac.authorization.k8s.io/v1 -> rbac-v1; apps/v1 -> apps-v1; v1 -> v1
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        filename = f"{kind.lower()}-{group_version}.json"
        if filename not in self.validators:
            schema_file = self.directory / filename
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


def check_kubernetes(directory: Path, version: str, report: Report) -> None:
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
            print(f"k8s      {obj.where} ({doc['apiVersion']})")
    for path, doc in kustomizations:
        check_kustomization(path, doc, files, report)
    if unparsed:
        report.notes.append(f"cross-resource checks skipped: {', '.join(unparsed)} did not parse")
    else:
        k8s_semantics(objects, report)
    print(
        f"         schema: Kubernetes {version} strict JSON schemas from "
        f"kubernetes-validate {metadata.version('kubernetes-validate')}"
    )


def check_kustomization(path: Path, doc: dict[str, Any], files: list[Path], report: Report) -> None:
    name = rel(path)
    print(f"kustomize {name}: structural check only (Kustomization is not a core Kubernetes kind)")
    if doc.get("kind") != "Kustomization":
        report.error(name, f"kind must be Kustomization, got {doc.get('kind')!r}")
    for key in doc:
        if key not in KUSTOMIZATION_FIELDS:
            report.error(name, f"unknown Kustomization field {key!r}")
    listed = doc.get("resources") or []
    if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
        report.error(name, "resources must be a list of paths")
        return
    for entry in listed:
        if not (path.parent / entry).exists():
            report.error(name, f"resources entry {entry!r} does not exist")
    listed_paths = {(path.parent / entry).resolve() for entry in listed}
    for other in files:
        if other.parent == path.parent and other != path and other.resolve() not in listed_paths:
            report.notes.append(f"{name}: {other.name} is not listed, so `apply -k` skips it")


def k8s_semantics(objects: list[K8sObject], report: Report) -> None:
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
    check_project_rules(valid, report)


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
        if component == "worker" and (spec.get("terminationGracePeriodSeconds") or 30) < 60:
            report.error(obj.where, "workers need terminationGracePeriodSeconds >= 60")


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    parser.add_argument("--compose", type=Path, default=ROOT / "docker-compose.yml")
    parser.add_argument("--k8s-dir", type=Path, default=ROOT / "k8s")
    args = parser.parse_args(argv)

    report = Report()
    check_compose(args.compose.resolve(), report)
    check_kubernetes(args.k8s_dir.resolve(), args.kubernetes_version, report)

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
