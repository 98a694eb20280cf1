"""User tools: the local endpoint (`python -m embedding_client serve`) and the `embed` client."""
