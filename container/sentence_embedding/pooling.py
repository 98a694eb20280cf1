"""One vector per text from token vectors, as sentence-transformers' Pooling computes it (torch)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pool(
    modes: Sequence[str], token_embeddings: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """One vector per text from token vectors, as sentence-transformers' Pooling computes it."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    batch, seq_len, hidden = token_embeddings.shape
    pooled: list[torch.Tensor] = []
    for mode in modes:
        if mode == "cls":
            first = attention_mask.to(torch.int).argmax(dim=1)  # first real token, any padding side
            index = first.view(-1, 1, 1).expand(-1, 1, hidden)
            pooled.append(torch.gather(token_embeddings, 1, index).squeeze(1))
        elif mode == "max":
            masked = token_embeddings.masked_fill(mask == 0, float("-inf"))
            pooled.append(masked.max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            summed = (token_embeddings * mask).sum(dim=1)
            counts = torch.clamp(mask.sum(dim=1), min=1e-9)
            pooled.append(summed / (counts if mode == "mean" else torch.sqrt(counts)))
        elif mode == "weightedmean":
            positions = torch.arange(1, seq_len + 1, dtype=token_embeddings.dtype)
            left_padding = attention_mask.to(torch.int32).argmax(dim=1).to(token_embeddings.dtype)
            weights = positions.view(1, -1, 1) - left_padding.view(-1, 1, 1)
            weighted = mask * weights
            summed = (token_embeddings * weighted).sum(dim=1)
            pooled.append(summed / torch.clamp(weighted.sum(dim=1), min=1e-9))
        elif mode == "lasttoken":
            values, from_end = attention_mask.flip(1).max(dim=1)
            from_end = torch.where(values == 0, torch.full_like(from_end, seq_len - 1), from_end)
            index = (seq_len - from_end - 1).view(-1, 1, 1).expand(-1, 1, hidden)
            pooled.append(torch.gather(token_embeddings * mask, 1, index).squeeze(1))
    return torch.cat(pooled, dim=-1)
