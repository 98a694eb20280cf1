"""The stack's optional HTTP API: `POST {url}` signed with SigV4 for execute-api, under the
proxy's own per-request limits."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from embedding_client.backend import DEFAULT_OPTIONS, EmbeddingResult, TargetError
from embedding_client.batching import DEFAULT_BATCH_SIZE, check_texts, embed_in_batches
from embedding_client.transport import CONTENT_TYPE, json_post, post_with_retries
from facts.embedding_api import EmbeddingOptions
from facts.http_api import MAX_BODY_BYTES as HTTP_API_MAX_BODY_BYTES
from facts.http_api import MAX_INPUTS as HTTP_API_MAX_TEXTS


@dataclass(frozen=True)
class HttpApiBackend:
    url: str
    region: str
    batch_size: int = DEFAULT_BATCH_SIZE

    def embed(
        self, texts: list[str], options: EmbeddingOptions = DEFAULT_OPTIONS
    ) -> EmbeddingResult:
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        check_texts(texts)
        credentials = boto3.Session(region_name=self.region).get_credentials()
        if credentials is None:
            raise TargetError("no AWS credentials found to sign the HTTP API request")

        def send(body: bytes) -> bytes:
            def factory() -> urllib.request.Request:
                # Signed afresh on every attempt: a retried request needs a current timestamp.
                signed = AWSRequest(
                    method="POST", url=self.url, data=body, headers={"Content-Type": CONTENT_TYPE}
                )
                SigV4Auth(
                    credentials.get_frozen_credentials(), "execute-api", self.region
                ).add_auth(signed)
                return json_post(self.url, body, dict(signed.headers.items()))

            return post_with_retries(factory, self.url)

        return embed_in_batches(
            texts,
            options,
            max_texts=min(self.batch_size, HTTP_API_MAX_TEXTS),
            max_body_bytes=HTTP_API_MAX_BODY_BYTES,
            send=send,
            target=self.url,
        )
