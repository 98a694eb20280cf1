"""A stack's transform-job prefix: its endpoint's name when it fits, else a cut and a hash of it."""

from __future__ import annotations

from components.batch_access import JOB_PREFIX_MAX, batch_job_prefix
from components.endpoint import endpoint_name_for


def test_a_short_endpoint_name_is_the_prefix_whole():
    assert batch_job_prefix("embedding-endpoint-dev") == "embedding-endpoint-dev-batch-"


def test_two_long_names_that_share_their_start_get_different_prefixes():
    """Each prefix scopes its stack's role to its own job logs."""
    eu = batch_job_prefix(endpoint_name_for("embedding-endpoint", "customer-alpha-prod-eu"))
    us = batch_job_prefix(endpoint_name_for("embedding-endpoint", "customer-alpha-prod-us"))
    assert eu != us
    assert not eu.startswith(us) and not us.startswith(eu)
    assert max(len(eu), len(us)) <= JOB_PREFIX_MAX
