"""How long CloudWatch keeps the stack's logs (the endpoint's, the loader's, the proxy's)."""

from __future__ import annotations

# The documented default of `logRetentionDays` (README.md, docs/configuration.md).
DEFAULT_RETENTION_DAYS = 30
# The values PutRetentionPolicy accepts, in days.
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
