"""Which AWS partition a region belongs to: every ARN and service domain is built from this."""

from __future__ import annotations


def partition(region: str) -> str:
    """`aws-cn` for China, `aws-us-gov` for GovCloud, `aws` for every commercial region."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def dns_suffix(region: str) -> str:
    """The domain AWS service endpoints (and ECR registries) use in `region`."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
