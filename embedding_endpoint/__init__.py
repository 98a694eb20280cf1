"""User tools: the local endpoint (`python -m embedding_endpoint serve`) and the `embed` client."""
