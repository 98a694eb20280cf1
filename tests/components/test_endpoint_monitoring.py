"""EndpointMonitoring under mocks: which metrics alarm, at which thresholds, who is notified."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from components.endpoint_monitoring import (
    AlarmThresholds,
    EndpointMonitoring,
    EndpointMonitoringArgs,
)
from tests.fixtures.pulumi_mocks import ProgramRun

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:embedding-alerts"
NAME = "embedding-endpoint-dev"


def _run(pulumi_program: Callable[..., ProgramRun], args: EndpointMonitoringArgs) -> ProgramRun:
    return pulumi_program(
        {"aws:region": args.region}, program=lambda: EndpointMonitoring("monitoring", args)
    )


@pytest.fixture
def defaults(pulumi_program: Callable[..., ProgramRun]) -> ProgramRun:
    return _run(pulumi_program, EndpointMonitoringArgs(NAME, "eu-west-1"))


def _alarms(run: ProgramRun) -> dict[str, dict]:
    return {alarm.inputs["metricName"]: alarm.inputs for alarm in run.of_type(ALARM)}


def test_errors_latency_cold_start_and_throttling_each_have_an_alarm(defaults: ProgramRun) -> None:
    assert set(_alarms(defaults)) == {
        "Invocation5XXErrors",
        "Invocation4XXErrors",
        "ModelLatency",
        "ModelSetupTime",
        "ServerlessConcurrentExecutionsUtilization",
    }


def test_the_concurrency_alarm_fires_when_max_concurrency_is_all_in_use(
    pulumi_program: Callable[..., ProgramRun], defaults: ProgramRun
) -> None:
    """Requests past maxConcurrency are throttled: no invocation metric ever counts them."""
    alarm = _alarms(defaults)["ServerlessConcurrentExecutionsUtilization"]
    assert (alarm["statistic"], alarm["comparisonOperator"]) == (
        "Maximum",
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["threshold"] == pytest.approx(1.0)
    earlier = AlarmThresholds(concurrency_percent=80)
    run = _run(pulumi_program, EndpointMonitoringArgs(NAME, "eu-west-1", earlier))
    assert _alarms(run)["ServerlessConcurrentExecutionsUtilization"]["threshold"] == (
        pytest.approx(0.8)
    )


def test_alarms_watch_this_endpoints_variant_in_sagemakers_namespace(defaults: ProgramRun) -> None:
    for metric, alarm in _alarms(defaults).items():
        assert alarm["namespace"] == "AWS/SageMaker", metric
        assert alarm["dimensions"] == {"EndpointName": NAME, "VariantName": "AllTraffic"}, metric
        assert alarm["period"] == 300
        assert alarm["treatMissingData"] == "notBreaching", "an idle serverless endpoint is fine"


def test_error_alarms_count_answers_and_latency_alarms_convert_ms_to_microseconds(
    defaults: ProgramRun,
) -> None:
    alarms = _alarms(defaults)
    assert (
        alarms["Invocation5XXErrors"]["statistic"],
        alarms["Invocation5XXErrors"]["threshold"],
    ) == (
        "Sum",
        1,
    )
    assert alarms["Invocation4XXErrors"]["threshold"] == 10
    assert alarms["ModelLatency"]["extendedStatistic"] == "p90"
    assert alarms["ModelLatency"]["threshold"] == 5000 * 1000
    assert alarms["ModelSetupTime"]["statistic"] == "Maximum"
    assert alarms["ModelSetupTime"]["threshold"] == 120_000 * 1000


def test_thresholds_come_from_the_args(pulumi_program: Callable[..., ProgramRun]) -> None:
    thresholds = AlarmThresholds(server_errors=3, model_latency_ms=750)
    alarms = _alarms(_run(pulumi_program, EndpointMonitoringArgs(NAME, "eu-west-1", thresholds)))
    assert alarms["Invocation5XXErrors"]["threshold"] == 3
    assert alarms["ModelLatency"]["threshold"] == 750_000


def test_without_a_topic_the_alarms_notify_nobody(defaults: ProgramRun) -> None:
    for alarm in _alarms(defaults).values():
        assert not alarm.get("alarmActions") and not alarm.get("okActions")


def test_a_topic_hears_when_an_alarm_fires_and_when_it_recovers(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = _run(pulumi_program, EndpointMonitoringArgs(NAME, "eu-west-1", alarm_topic_arn=TOPIC))
    for alarm in _alarms(run).values():
        assert alarm["alarmActions"] == [TOPIC]
        assert alarm["okActions"] == [TOPIC]


def test_alarm_names_carry_the_endpoint_name(defaults: ProgramRun) -> None:
    names = {alarm.inputs["name"] for alarm in defaults.of_type(ALARM)}
    assert names == {
        f"{NAME}-server-errors",
        f"{NAME}-client-errors",
        f"{NAME}-model-latency",
        f"{NAME}-cold-start",
        f"{NAME}-concurrency",
    }


def test_the_dashboard_shows_this_endpoints_metrics(defaults: ProgramRun) -> None:
    dashboard = defaults.one(DASHBOARD).inputs
    assert dashboard["dashboardName"] == NAME
    body = json.loads(dashboard["dashboardBody"])
    metrics = [line for widget in body["widgets"] for line in widget["properties"]["metrics"]]
    assert {line[1] for line in metrics} >= {
        "Invocations",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "ModelLatency",
        "ModelSetupTime",
    }
    assert all(line[0] == "AWS/SageMaker" and NAME in line for line in metrics)
    assert {widget["properties"]["region"] for widget in body["widgets"]} == {"eu-west-1"}


@pytest.mark.parametrize(
    ("thresholds", "key"),
    [
        (AlarmThresholds(server_errors=0), "alarmServerErrors"),
        (AlarmThresholds(model_latency_ms=61_000), "alarmModelLatencyMs"),
    ],
)
def test_out_of_range_thresholds_are_refused_naming_the_config_key(
    thresholds: AlarmThresholds, key: str
) -> None:
    with pytest.raises(ValueError, match=key):
        EndpointMonitoringArgs(NAME, "eu-west-1", thresholds)
