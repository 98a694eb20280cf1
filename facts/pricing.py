"""Price estimates for the bulk-embedding cost summary, and the formulas that use them.

ESTIMATES, not quotes: on-demand list prices for us-east-1 from the AWS pricing pages
(https://aws.amazon.com/sagemaker/pricing/ "Serverless Inference" and "Batch Transform";
https://aws.amazon.com/bedrock/pricing/ embedding models) as published in 2025, written down on
PRICES_AS_OF. They were not re-read from the machine this was written on (no internet), other
regions differ (typically by 0-30 %), and AWS changes prices: `embed file --price-...` and
`embed batch --price-per-hour` override them, and docs/bulk.md gives the formulas.
"""

from __future__ import annotations

from facts.bedrock_models import MODELS

PRICES_AS_OF = "2025-06"
PRICES_REGION = "us-east-1"

# Serverless Inference: compute per second per GB of configured memory (1024 MB costs
# $0.0000200/s, 6144 MB six times that), plus data processed in and out.
SERVERLESS_PER_GB_SECOND = 0.0000200
SERVERLESS_DATA_PER_GB = 0.016

# Bedrock on-demand embeddings: $ per 1,000 input tokens (text), a field of each model's entry.
BEDROCK_PER_1K_TOKENS = {model_id: model.price_per_1k_tokens for model_id, model in MODELS.items()}

# Batch Transform: $ per instance-hour, billed per second while the job's instances run
# (start-up included). CPU types only: the endpoint's image is the DLC's CPU build.
BATCH_TRANSFORM_PER_HOUR = {
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
    "ml.c5.9xlarge": 1.836,
}

GB = 1_000_000_000


def serverless_cost(
    busy_seconds: float,
    memory_mb: int,
    bytes_processed: int,
    *,
    per_gb_second: float = SERVERLESS_PER_GB_SECOND,
    data_per_gb: float = SERVERLESS_DATA_PER_GB,
) -> float:
    """Σ request seconds × memory GB × $/GB-s  +  (bytes in + bytes out) / 1e9 × $/GB."""
    return busy_seconds * (memory_mb / 1024) * per_gb_second + bytes_processed / GB * data_per_gb


def bedrock_cost(tokens: int, per_1k_tokens: float) -> float:
    """Input tokens / 1000 × $ per 1,000 tokens."""
    return tokens / 1000 * per_1k_tokens


def batch_transform_cost(instance_seconds: float, per_hour: float) -> float:
    """Σ instance seconds (count × the job's run time) / 3600 × $ per instance-hour."""
    return instance_seconds / 3600 * per_hour
