#!/usr/bin/env python3
"""Derive the local resource spec (infra/local-resources.json) from template.yaml.

The SAM template is expanded offline with samtranslator (the same translator
CloudFormation runs), so implicit resources (event source mappings, HTTP API
routes) come from the expanded template, not from the SAM shorthand. The local
runner creates exactly what the spec lists in moto and wires the handlers.

    .venv/bin/python infra/derive_resources.py           # (re)write the spec
    .venv/bin/python infra/derive_resources.py --check   # exit 1 + diff if stale

Anything the spec cannot express (a resource type the local runner does not
model, an intrinsic it cannot resolve, a rule target that is not a queue...)
is an error, not a silent omission: extend this script and the runner together.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("SAM_CLI_TELEMETRY", "0")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "template.yaml"
DEFAULT_OUTPUT = ROOT / "infra" / "local-resources.json"

# Resource types that exist on AWS but have no local counterpart: IAM is not
# enforced by moto, alarms/logs/notifications are not simulated, the stage
# only prefixes URLs, queue/bucket policies only matter to IAM.
IGNORED_TYPES = {
    "AWS::ApiGatewayV2::Stage",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::IAM::Role",
    "AWS::Lambda::Permission",
    "AWS::Logs::LogGroup",
    "AWS::Logs::MetricFilter",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SNS::Topic",
    "AWS::SQS::QueuePolicy",
}

# What CloudFormation's Ref returns, per spec kind (documentation for readers
# of the spec; the runner resolves {"ref": X} with the same rule).
REF_KINDS = {
    "AWS::DynamoDB::Table": "table",  # table name
    "AWS::SQS::Queue": "queue",  # queue URL
    "AWS::Events::EventBus": "bus",  # bus name
    "AWS::S3::Bucket": "bucket",  # bucket name
    "AWS::SecretsManager::Secret": "secret",  # secret ARN
    "AWS::Scheduler::ScheduleGroup": "schedule_group",  # group name
}

# Pseudo parameters a Fn::Sub in a function's environment may use; the runner fills them
# with its local values (partition aws, region us-east-1, account 123456789012, the stack
# name = the resource prefix).
PSEUDO_PARAMETERS = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::StackName"}

# AWS::SQS::Queue properties that are SQS queue attributes (same names).
QUEUE_ATTRIBUTE_PROPS = {
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
}
# Properties handled separately, or irrelevant locally (names are the runner's).
QUEUE_OTHER_PROPS = {"FifoQueue", "QueueName", "RedrivePolicy", "RedriveAllowPolicy", "Tags"}

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
ANY_METHOD = "x-amazon-apigateway-any-method"


class SpecError(Exception):
    pass


class _NoManagedPolicies:
    """Offline managed-policy loader: names of AWS managed policies are not looked up."""

    def load(self) -> dict[str, str]:
        return {}


# --------------------------------------------------------------------------- expansion


def expand(template_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (source template, expanded CloudFormation template)."""
    source = yaml_parse(template_path.read_text())
    fragment = copy.deepcopy(source)
    for logical_id, res in fragment.get("Resources", {}).items():
        if res.get("Type") == "AWS::Serverless::Function":
            # samtranslator insists on an S3 location; the code itself is irrelevant here.
            res.setdefault("Properties", {})["CodeUri"] = f"s3://local-spec/{logical_id}.zip"
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    try:
        expanded = transform(fragment, {}, _NoManagedPolicies())
    except Exception as exc:  # InvalidDocumentException carries the useful causes
        causes = getattr(exc, "causes", None) or []
        detail = "; ".join(str(getattr(c, "message", c)) for c in causes) or str(exc)
        raise SpecError(f"samtranslator could not expand {template_path}: {detail}") from exc
    return source, expanded


# --------------------------------------------------------------------------- values


class Resolver:
    def __init__(self, template: dict[str, Any]):
        self.parameters: dict[str, Any] = template.get("Parameters", {}) or {}
        self.resources: dict[str, Any] = template["Resources"]

    def kind(self, logical_id: str) -> str | None:
        res = self.resources.get(logical_id)
        return REF_KINDS.get(res["Type"]) if res else None

    def parameter_default(self, name: str, where: str) -> str:
        param = self.parameters.get(name)
        if param is None:
            raise SpecError(f"{where}: Ref {name!r} is neither a parameter nor a resource")
        if "Default" not in param:
            raise SpecError(f"{where}: parameter {name!r} has no Default to use locally")
        return scalar(param["Default"])

    def literal(self, value: Any, where: str) -> str:
        """A value that must be known without deploying: literals and parameter defaults."""
        if isinstance(value, (str, int, float, bool)):
            return scalar(value)
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self.parameters:
            return self.parameter_default(value["Ref"], where)
        if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return self._sub_parameters(value["Fn::Sub"], where)
        raise SpecError(f"{where}: {json.dumps(value)} cannot be resolved locally")

    def _sub_parameters(self, text: str, where: str, pseudo: bool = False) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.parameters:
                return self.parameter_default(name, where)
            if pseudo and name in PSEUDO_PARAMETERS:
                return match.group(0)
            raise SpecError(f"{where}: Fn::Sub reference ${{{name}}} is not a parameter")

        return re.sub(r"\$\{([^!}][^}]*)\}", one, text).replace("${!", "${")

    def env_value(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, dict) and set(value) == {"Ref"}:
            target = value["Ref"]
            if target in self.resources:
                if self.kind(target) is None:
                    raise SpecError(
                        f"{where}: Ref {target} ({self.resources[target]['Type']}) has no local counterpart"
                    )
                return {"ref": target}
            return {"value": self.parameter_default(target, where)}
        if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
            target, attr = getatt_parts(value["Fn::GetAtt"])
            rtype = (self.resources.get(target) or {}).get("Type")
            # ARNs of roles and functions exist locally as names only (moto enforces no IAM).
            if attr == "Arn" and rtype == "AWS::IAM::Role":
                return {"role_arn": target}
            if attr == "Arn" and rtype == "AWS::Lambda::Function":
                return {"function_arn": target}
            if self.kind(target) is None:
                raise SpecError(f"{where}: GetAtt of {target}, which has no local counterpart")
            return {"getatt": [target, attr]}
        if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            text = self._sub_parameters(value["Fn::Sub"], where, pseudo=True)
            if "${AWS::" in text:
                return {"sub": text}
            return {"value": text}
        return {"value": self.literal(value, where)}

    def resource_of(self, value: Any, kind: str, where: str, attr: str | None = None) -> str:
        """Logical id behind a Ref / GetAtt (optionally of a given attribute) to a resource of `kind`."""
        target: str | None = None
        if isinstance(value, dict) and set(value) == {"Ref"} and attr is None:
            target = value["Ref"]
        elif isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
            target, got = getatt_parts(value["Fn::GetAtt"])
            if attr is not None and got != attr:
                target = None
        if target is None or self.kind(target) != kind:
            raise SpecError(f"{where}: expected a reference to a {kind}, got {json.dumps(value)}")
        return target


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise SpecError(f"not a scalar: {json.dumps(value)}")


def getatt_parts(arg: Any) -> tuple[str, str]:
    if isinstance(arg, str):
        target, _, attr = arg.partition(".")
        return target, attr
    return arg[0], arg[1]


# --------------------------------------------------------------------------- per kind


def table_spec(lid: str, props: dict[str, Any], r: Resolver) -> dict[str, Any]:
    def keys(schema: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [{"name": k["AttributeName"], "key_type": k["KeyType"]} for k in schema]

    if props.get("LocalSecondaryIndexes"):
        raise SpecError(f"{lid}: local secondary indexes are not in the spec format")
    gsis = []
    for gsi in props.get("GlobalSecondaryIndexes", []) or []:
        projection = gsi.get("Projection", {}).get("ProjectionType", "ALL")
        if projection == "INCLUDE":
            raise SpecError(f"{lid}.{gsi['IndexName']}: INCLUDE projections are not in the spec format")
        gsis.append({"name": gsi["IndexName"], "key_schema": keys(gsi["KeySchema"]), "projection": projection})
    ttl = props.get("TimeToLiveSpecification")
    enabled = ttl and r.literal(ttl.get("Enabled", False), f"{lid}.TimeToLiveSpecification") == "true"
    return {
        "logical_id": lid,
        "attribute_definitions": [
            {"name": a["AttributeName"], "type": a["AttributeType"]} for a in props["AttributeDefinitions"]
        ],
        "key_schema": keys(props["KeySchema"]),
        "gsis": gsis,
        "ttl_attribute": ttl["AttributeName"] if enabled else None,
    }


def queue_spec(lid: str, props: dict[str, Any], r: Resolver) -> dict[str, Any]:
    unknown = set(props) - QUEUE_ATTRIBUTE_PROPS - QUEUE_OTHER_PROPS
    if unknown:
        raise SpecError(f"{lid}: queue properties {sorted(unknown)} are not mapped to SQS attributes")
    fifo = r.literal(props.get("FifoQueue", False), f"{lid}.FifoQueue") == "true"
    attributes = {
        name: r.literal(props[name], f"{lid}.{name}") for name in sorted(QUEUE_ATTRIBUTE_PROPS & set(props))
    }
    redrive = None
    policy = props.get("RedrivePolicy")
    if policy is not None:
        if isinstance(policy, str):
            policy = json.loads(policy)
        redrive = {
            "dlq": r.resource_of(policy["deadLetterTargetArn"], "queue", f"{lid}.RedrivePolicy", attr="Arn"),
            "max_receive_count": int(r.literal(policy["maxReceiveCount"], f"{lid}.RedrivePolicy")),
        }
    return {"logical_id": lid, "fifo": fifo, "attributes": attributes, "redrive": redrive}


def rule_spec(lid: str, props: dict[str, Any], r: Resolver) -> dict[str, Any] | None:
    if r.literal(props.get("State", "ENABLED"), f"{lid}.State") == "DISABLED":
        return None
    if "ScheduleExpression" in props or "EventPattern" not in props:
        raise SpecError(
            f"{lid}: scheduled EventBridge rules are not in the spec format; use a ScheduleV2 event "
            "(EventBridge Scheduler), which the runner ticks"
        )
    if "EventBusName" not in props:
        raise SpecError(f"{lid}: rules on the default bus are not in the spec format")
    bus_id = r.resource_of(props["EventBusName"], "bus", f"{lid}.EventBusName")
    pattern = props["EventPattern"]
    if isinstance(pattern, str):
        pattern = json.loads(pattern)
    targets = []
    for target in props.get("Targets", []):
        where = f"{lid}.Targets[{target.get('Id')}]"
        shaping = {"Input", "InputPath", "InputTransformer", "SqsParameters"} & set(target)
        if shaping:
            raise SpecError(f"{where}: {sorted(shaping)} are not in the spec format")
        targets.append({"queue": r.resource_of(target["Arn"], "queue", where, attr="Arn")})
    return {"logical_id": lid, "bus": bus_id, "pattern": pattern, "targets": targets}


# Schedule expressions the local runner can tick (`at(...)` one-offs are not modelled).
SCHEDULE_EXPRESSION = re.compile(r"^(rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$")
# Target properties of non-Lambda targets (a DeadLetterConfig or RetryPolicy only matters on AWS).
SCHEDULE_TARGET_UNSUPPORTED = {
    "EcsParameters",
    "EventBridgeParameters",
    "KinesisParameters",
    "SageMakerPipelineParameters",
    "SqsParameters",
}


def schedule_spec(lid: str, props: dict[str, Any], r: Resolver, functions: set[str]) -> dict[str, Any] | None:
    """An EventBridge Scheduler schedule that invokes a function of this template."""
    if r.literal(props.get("State", "ENABLED"), f"{lid}.State") == "DISABLED":
        return None
    if "GroupName" in props:
        raise SpecError(f"{lid}: schedule groups are not in the spec format")
    target = props.get("Target") or {}
    arn = target.get("Arn")
    fn = None
    if isinstance(arn, dict) and set(arn) == {"Fn::GetAtt"}:
        name, attr = getatt_parts(arn["Fn::GetAtt"])
        if attr == "Arn" and name in functions:
            fn = name
    if fn is None:
        raise SpecError(f"{lid}: schedule target {json.dumps(arn)} is not a function of this template")
    shaping = SCHEDULE_TARGET_UNSUPPORTED & set(target)
    if shaping:
        raise SpecError(f"{lid}: target {sorted(shaping)} are not in the spec format")
    expression = r.literal(props["ScheduleExpression"], f"{lid}.ScheduleExpression")
    if not SCHEDULE_EXPRESSION.match(expression):
        raise SpecError(f"{lid}: schedule expression {expression!r} cannot be ticked locally (rate(...) or cron(...))")
    payload = target.get("Input")
    return {
        "logical_id": lid,
        "function": fn,
        "expression": expression,
        "input": r.literal(payload, f"{lid}.Target.Input") if payload is not None else None,
    }


def secret_spec(lid: str, props: dict[str, Any]) -> dict[str, Any]:
    keys: set[str] = set()
    if "SecretString" in props:
        keys |= set(json.loads(props["SecretString"]))
    gen = props.get("GenerateSecretString")
    if gen:
        keys |= set(json.loads(gen.get("SecretStringTemplate", "{}")))
        if "GenerateStringKey" in gen:
            keys.add(gen["GenerateStringKey"])
    return {"logical_id": lid, "keys": sorted(keys)}


def function_spec(lid: str, res: dict[str, Any], r: Resolver) -> dict[str, Any]:
    props = res["Properties"]
    binary = (res.get("Metadata") or {}).get("BuildProperties", {}).get("Binary")
    if not binary:
        raise SpecError(f"{lid}: Metadata.BuildProperties.Binary is missing")
    variables = (props.get("Environment") or {}).get("Variables") or {}
    # Where AWS is, the local runner says itself (the template declares it for `sam local` only).
    variables = {k: v for k, v in variables.items() if k != "AWS_ENDPOINT_URL"}
    name = props.get("FunctionName")
    if name is not None:
        if not (isinstance(name, dict) and set(name) == {"Fn::Sub"} and isinstance(name["Fn::Sub"], str)):
            raise SpecError(f"{lid}: FunctionName must be a Fn::Sub string (e.g. ${{AWS::StackName}}-name)")
        name = r._sub_parameters(name["Fn::Sub"], f"{lid}.FunctionName", pseudo=True)
    return {
        "logical_id": lid,
        "binary": binary,
        "function_name": name,
        "timeout": int(r.literal(props.get("Timeout", 3), f"{lid}.Timeout")),
        "memory_size": int(r.literal(props.get("MemorySize", 128), f"{lid}.MemorySize")),
        "environment": {k: r.env_value(v, f"{lid}.Environment.{k}") for k, v in sorted(variables.items())},
        "sqs_sources": [],
        "http_routes": [],
    }


def event_source(lid: str, props: dict[str, Any], r: Resolver, functions: set[str]) -> tuple[str, dict[str, Any]]:
    fn = props.get("FunctionName")
    if not (isinstance(fn, dict) and set(fn) == {"Ref"} and fn["Ref"] in functions):
        raise SpecError(f"{lid}: FunctionName {json.dumps(fn)} is not a Ref to a function of this template")
    if "FilterCriteria" in props:
        raise SpecError(f"{lid}: FilterCriteria is not in the spec format")
    queue = r.resource_of(props["EventSourceArn"], "queue", f"{lid}.EventSourceArn", attr="Arn")
    if r.literal(props.get("Enabled", True), f"{lid}.Enabled") == "false":
        raise SpecError(f"{lid}: disabled event source mappings are not in the spec format")
    return fn["Ref"], {
        "queue": queue,
        "batch_size": int(r.literal(props.get("BatchSize", 10), f"{lid}.BatchSize")),
        "report_batch_item_failures": "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
    }


INTEGRATION_FN = re.compile(r"/functions/\$\{([A-Za-z0-9]+)\.Arn\}/invocations$")


def http_routes(lid: str, props: dict[str, Any], functions: set[str]) -> list[tuple[str, dict[str, str]]]:
    body = props.get("Body")
    if body is None:
        raise SpecError(f"{lid}: HTTP APIs without an OpenAPI Body (BodyS3Location, quick create) are not supported")
    routes = []
    for path, item in sorted(body.get("paths", {}).items()):
        for method, op in sorted(item.items()):
            if method == ANY_METHOD:
                verb = "ANY"
            elif method in HTTP_METHODS:
                verb = method.upper()
            else:
                continue  # path-level "parameters" and extensions
            where = f"{lid} {verb} {path}"
            integration = op.get("x-amazon-apigateway-integration") or {}
            uri = integration.get("uri")
            sub = uri.get("Fn::Sub") if isinstance(uri, dict) else None
            if isinstance(sub, list):
                sub = sub[0]
            match = INTEGRATION_FN.search(sub) if isinstance(sub, str) else None
            if integration.get("type") != "aws_proxy" or not match or match.group(1) not in functions:
                raise SpecError(f"{where}: integration is not a Lambda proxy to a function of this template")
            if integration.get("payloadFormatVersion", "2.0") != "2.0":
                raise SpecError(f"{where}: only payload format 2.0 is served locally")
            routes.append((match.group(1), {"method": verb, "path": path}))
    return routes


# --------------------------------------------------------------------------- spec


def order_queues(queues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dead-letter queues before the queues that redrive to them, then by logical id."""
    pending = sorted(queues, key=lambda q: q["logical_id"])
    ordered: list[dict[str, Any]] = []
    done: set[str] = set()
    while pending:
        ready = [q for q in pending if q["redrive"] is None or q["redrive"]["dlq"] in done]
        if not ready:
            raise SpecError(f"redrive cycle among {[q['logical_id'] for q in pending]}")
        ordered.append(ready[0])
        done.add(ready[0]["logical_id"])
        pending.remove(ready[0])
    return ordered


def derive(template_path: Path) -> dict[str, Any]:
    _, expanded = expand(template_path)
    r = Resolver(expanded)
    spec: dict[str, list[Any]] = {
        k: []
        for k in ("tables", "queues", "buses", "rules", "schedules", "schedule_groups", "buckets", "secrets", "functions")
    }
    functions: dict[str, dict[str, Any]] = {}
    sources: list[tuple[str, dict[str, Any]]] = []
    routes: list[tuple[str, dict[str, str]]] = []

    resources = expanded["Resources"]
    function_ids = {lid for lid, res in resources.items() if res["Type"] == "AWS::Lambda::Function"}
    unsupported = []
    for lid in sorted(resources):
        res = resources[lid]
        rtype, props = res["Type"], res.get("Properties", {}) or {}
        if rtype in IGNORED_TYPES:
            continue
        if "Condition" in res:
            raise SpecError(f"{lid}: conditional {rtype} resources are not in the spec format")
        if rtype == "AWS::DynamoDB::Table":
            spec["tables"].append(table_spec(lid, props, r))
        elif rtype == "AWS::SQS::Queue":
            spec["queues"].append(queue_spec(lid, props, r))
        elif rtype == "AWS::Events::EventBus":
            spec["buses"].append({"logical_id": lid})
        elif rtype == "AWS::Events::Rule":
            rule = rule_spec(lid, props, r)
            if rule:
                spec["rules"].append(rule)
        elif rtype == "AWS::Scheduler::Schedule":
            schedule = schedule_spec(lid, props, r, function_ids)
            if schedule:
                spec["schedules"].append(schedule)
        elif rtype == "AWS::S3::Bucket":
            spec["buckets"].append({"logical_id": lid})
        elif rtype == "AWS::Scheduler::ScheduleGroup":
            spec["schedule_groups"].append({"logical_id": lid})
        elif rtype == "AWS::SecretsManager::Secret":
            spec["secrets"].append(secret_spec(lid, props))
        elif rtype == "AWS::Lambda::Function":
            functions[lid] = function_spec(lid, res, r)
        elif rtype == "AWS::Lambda::EventSourceMapping":
            sources.append(event_source(lid, props, r, function_ids))
        elif rtype == "AWS::ApiGatewayV2::Api":
            routes.extend(http_routes(lid, props, function_ids))
        else:
            unsupported.append(f"{lid} ({rtype})")
    if unsupported:
        raise SpecError(
            "resources with no local counterpart: " + ", ".join(unsupported)
            + " (model them in the runner and here, or add the type to IGNORED_TYPES)"
        )

    seen_routes: dict[tuple[str, str], str] = {}
    for fn, route in routes:
        key = (route["method"], route["path"])
        if key in seen_routes:
            raise SpecError(f"route {key} is served by both {seen_routes[key]} and {fn}")
        seen_routes[key] = fn
        functions[fn]["http_routes"].append(route)
    for fn, source in sources:
        functions[fn]["sqs_sources"].append(source)
    for fn in functions.values():
        fn["http_routes"].sort(key=lambda x: (x["path"], x["method"]))
        fn["sqs_sources"].sort(key=lambda x: x["queue"])
    spec["functions"] = [functions[lid] for lid in sorted(functions)]
    spec["queues"] = order_queues(spec["queues"])
    return spec


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def summary(spec: dict[str, Any]) -> str:
    fns = spec["functions"]
    n_src = sum(len(f["sqs_sources"]) for f in fns)
    n_routes = sum(len(f["http_routes"]) for f in fns)
    return (
        f"{len(spec['tables'])} tables, {len(spec['queues'])} queues, {len(spec['buses'])} buses, "
        f"{len(spec['rules'])} rules, {len(spec['schedules'])} schedules, "
        f"{len(spec['schedule_groups'])} schedule groups, {len(spec['buckets'])} buckets, "
        f"{len(spec['secrets'])} secrets, "
        f"{len(fns)} functions ({n_src} SQS sources, {n_routes} HTTP routes)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 with a diff if the spec file is stale")
    ap.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = ap.parse_args(argv)

    try:
        text = render(derive(args.template))
    except SpecError as exc:
        print(f"derive_resources: error: {exc}", file=sys.stderr)
        return 2
    spec = json.loads(text)
    try:
        shown = args.output.relative_to(ROOT)
    except ValueError:
        shown = args.output

    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current == text:
            print(f"{shown} is up to date: {summary(spec)}")
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"{shown} (committed)",
                tofile=f"{shown} (derived from {args.template.name})",
            )
        )
        print(f"{shown} is stale: run .venv/bin/python infra/derive_resources.py", file=sys.stderr)
        return 1

    args.output.write_text(text)
    print(f"wrote {shown}: {summary(spec)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
