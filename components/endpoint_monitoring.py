"""EndpointMonitoring: five CloudWatch alarms and a small dashboard for one serverless endpoint.

The alarms, their metrics and keys: docs/configuration.md. ModelLatency and ModelSetupTime are
in microseconds (thresholds are milliseconds); an idle serverless endpoint publishes nothing, so
missing data is "not breaching".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

import pulumi
import pulumi_aws as aws

from components.config_keys import Integer, declared, key
from facts.sagemaker_endpoints import VARIANT_NAME

NAMESPACE = "AWS/SageMaker"
PERIOD_SECONDS = 300
EVALUATION_PERIODS = 1
MICROSECONDS_PER_MS = 1000


@dataclass(frozen=True)
class AlarmThresholds:
    """When each alarm fires (stack config keys); the defaults suit a small model on a few vCPUs."""

    # Any server error means the model or container failed a request.
    server_errors: int = key(
        "alarmServerErrors",
        1,
        Integer(1, 1_000_000),
        "5xx answers in 5 minutes that fire the alarm (1–1000000)",
    )
    # Clients sending bad input now and then is normal, a stream is not.
    client_errors: int = key(
        "alarmClientErrors",
        10,
        Integer(1, 1_000_000),
        "4xx answers in 5 minutes that fire the alarm (1–1000000)",
    )
    # Invocations are cut off at 60 s.
    model_latency_ms: int = key(
        "alarmModelLatencyMs",
        5000,
        Integer(1, 60_000),
        "p90 model latency over 5 minutes that fires the alarm, in ms (1–60000)",
    )
    # A container must be ready within 3 minutes.
    model_setup_time_ms: int = key(
        "alarmModelSetupTimeMs",
        120_000,
        Integer(1, 600_000),
        "the slowest cold start in 5 minutes that fires the alarm, in ms (1–600000)",
    )
    # At 100% more requests than maxConcurrency allows are throttled, unseen by other metrics.
    concurrency_percent: int = key(
        "alarmConcurrencyPercent",
        100,
        Integer(1, 100),
        "the busiest share of maxConcurrency in use in 5 minutes that fires the alarm, in % "
        "(1–100; at 100 requests are being throttled)",
    )


# The stack config key of each threshold, and the values it may take (read off the fields).
THRESHOLD_KEYS = {
    item.name: (spec.name, spec.parse.low, spec.parse.high)
    for item, spec in declared(AlarmThresholds)
}


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: which metric, which statistic, which threshold and its unit conversion."""

    suffix: str
    metric: str
    threshold_field: str
    statistic: str | None = None
    extended_statistic: str | None = None
    # The metric's unit per configured unit (microseconds per ms; a ratio per percent).
    factor: float = 1
    description: str = ""


ALARMS = (
    AlarmSpec(
        "server-errors",
        "Invocation5XXErrors",
        "server_errors",
        statistic="Sum",
        description="the endpoint answered 5xx (model or container errors); see its log group",
    ),
    AlarmSpec(
        "client-errors",
        "Invocation4XXErrors",
        "client_errors",
        statistic="Sum",
        description="the endpoint answered 4xx (bad or too large requests, or model errors)",
    ),
    AlarmSpec(
        "model-latency",
        "ModelLatency",
        "model_latency_ms",
        extended_statistic="p90",
        factor=MICROSECONDS_PER_MS,
        description="p90 model latency above the threshold (ModelLatency is in microseconds)",
    ),
    AlarmSpec(
        "cold-start",
        "ModelSetupTime",
        "model_setup_time_ms",
        statistic="Maximum",
        factor=MICROSECONDS_PER_MS,
        description="a serverless cold start took longer than the threshold (microseconds)",
    ),
    AlarmSpec(
        "concurrency",
        "ServerlessConcurrentExecutionsUtilization",
        "concurrency_percent",
        statistic="Maximum",
        factor=0.01,
        description="concurrent executions reached the threshold share of maxConcurrency; at "
        "1.0 requests beyond it are throttled before they reach the model",
    ),
)


def alarm_threshold(spec: AlarmSpec, thresholds: AlarmThresholds) -> float:
    """The threshold in the metric's own unit."""
    return float(getattr(thresholds, spec.threshold_field) * spec.factor)


def dashboard_body(endpoint_name: str, region: str) -> dict:
    """Traffic, errors, latency and cold starts of one endpoint, side by side."""
    dimensions = ["EndpointName", endpoint_name, "VariantName", VARIANT_NAME]

    def widget(title: str, x: int, metrics: list[list]) -> dict:
        return {
            "type": "metric",
            "x": x,
            "y": 0,
            "width": 6,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "period": PERIOD_SECONDS,
                "view": "timeSeries",
                "metrics": metrics,
            },
        }

    def metric(name: str, stat: str) -> list:
        return [NAMESPACE, name, *dimensions, {"stat": stat}]

    errors = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors")
    panels = (
        ("Invocations and errors", [metric(name, "Sum") for name in errors]),
        ("Model latency (microseconds)", [metric("ModelLatency", s) for s in ("p50", "p90")]),
        ("Cold start: ModelSetupTime (microseconds)", [metric("ModelSetupTime", "Maximum")]),
        ("SageMaker overhead (microseconds)", [metric("OverheadLatency", "p90")]),
    )
    return {"widgets": [widget(title, 6 * i, rows) for i, (title, rows) in enumerate(panels)]}


@dataclass(frozen=True)
class EndpointMonitoringArgs:
    """Which endpoint to watch, the thresholds, and where notifications go."""

    endpoint_name: str
    region: str
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    # An SNS topic ARN (validated in the stack config); None: the alarms only change state.
    alarm_topic_arn: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for threshold in fields(self.thresholds):
            key, low, high = THRESHOLD_KEYS[threshold.name]
            value = getattr(self.thresholds, threshold.name)
            if not low <= value <= high:
                raise ValueError(
                    f"EndpointMonitoringArgs.thresholds.{threshold.name} {value}: expected "
                    f"{low}-{high} (stack config key {key})"
                )


class EndpointMonitoring(pulumi.ComponentResource):
    """Five CloudWatch alarms and a dashboard for one SageMaker endpoint."""

    alarm_names: list[pulumi.Output[str]]
    dashboard_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: EndpointMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("embedding-endpoint:index:EndpointMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        actions = [args.alarm_topic_arn] if args.alarm_topic_arn else []
        self.alarm_names = []
        for spec in ALARMS:
            alarm = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.suffix}",
                name=f"{args.endpoint_name}-{spec.suffix}",
                alarm_description=f"{args.endpoint_name}: {spec.description}",
                namespace=NAMESPACE,
                metric_name=spec.metric,
                dimensions={"EndpointName": args.endpoint_name, "VariantName": VARIANT_NAME},
                statistic=spec.statistic,
                extended_statistic=spec.extended_statistic,
                period=PERIOD_SECONDS,
                evaluation_periods=EVALUATION_PERIODS,
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=alarm_threshold(spec, args.thresholds),
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
                tags=dict(args.tags),
                opts=child,
            )
            self.alarm_names.append(alarm.name)
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.endpoint_name,
            dashboard_body=json.dumps(dashboard_body(args.endpoint_name, args.region)),
            opts=child,
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs(
            {"alarm_names": self.alarm_names, "dashboard_name": self.dashboard_name}
        )
