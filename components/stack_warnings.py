"""The stack's warnings: logged where `pulumi preview` shows them, and exported as `warnings`."""

from __future__ import annotations

import pulumi


def report_warnings(*warnings: pulumi.Input[str | None]) -> pulumi.Output[list[str]]:
    """Log each warning once known (outputs when they resolve), and return them all."""

    def log_late(warning: str | None) -> str | None:
        if warning:
            pulumi.log.warn(warning)
        return warning

    for warning in warnings:
        if isinstance(warning, str):
            pulumi.log.warn(warning)
    resolved = [
        warning if isinstance(warning, str) else pulumi.Output.from_input(warning).apply(log_late)
        for warning in warnings
    ]
    return pulumi.Output.all(*resolved).apply(lambda found: [w for w in found if w])
