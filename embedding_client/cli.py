"""The `embed` command: `embed file …` and `embed batch …` (docs/bulk.md); any other first word is
texts to embed (embedding_client/embed.py). Its own module, so neither imports the other back.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["file"]:
        from embedding_client import bulk_command

        return bulk_command.run(words[1:])
    if words[:1] == ["batch"]:
        from embedding_client import batch_transform

        return batch_transform.run(words[1:])
    from embedding_client import embed

    return embed.main(words)


if __name__ == "__main__":
    sys.exit(main())
