"""The loader Lambda: Hub snapshot (or a training output) → reproducible model.tar.gz → S3.

Runs inside the loader Lambda and in-process for the `local` runner; never imports Pulumi.
Entry point: `loader.handler.handler`. The archive's format version: `loader.version`.
"""
