"""Clients nobody here wrote, pointed at the local endpoint by URL alone: the `openai` SDK on
`/v1/embeddings`, boto3's sagemaker-runtime `invoke_endpoint` on SageMaker Runtime's own path,
and LangChain's OpenAIEmbeddings and SagemakerEndpointEmbeddings. Vectors must match
sentence-transformers."""

from __future__ import annotations

import json

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from sentence_transformers import SentenceTransformer

from tests.support.models import DIMENSIONS, REFERENCE_MODEL_DIR

SENTENCES = ["A man is eating food.", "A man is riding a horse.", "Stocks fell sharply."]


@pytest.fixture(scope="module")
def reference() -> SentenceTransformer:
    return SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu")


def cosines(ours, theirs) -> np.ndarray:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return (ours * theirs).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )


@pytest.fixture
def openai_client(reference_endpoint):
    from openai import OpenAI

    return OpenAI(base_url=f"{reference_endpoint.url}/v1", api_key="unused", max_retries=0)


def test_openai_sdk_default_call_decodes_our_base64(openai_client, reference):
    # With no encoding_format the SDK asks for base64 and decodes it itself.
    answer = openai_client.embeddings.create(input=SENTENCES, model="all-MiniLM-L6-v2")
    vectors = [item.embedding for item in answer.data]
    assert np.asarray(vectors).shape == (3, DIMENSIONS)
    assert cosines(vectors, reference.encode(SENTENCES, normalize_embeddings=True)).min() >= 0.9999
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 0


def test_openai_sdk_float_equals_its_base64_bit_for_bit(openai_client):
    floats = openai_client.embeddings.create(input=SENTENCES, model="m", encoding_format="float")
    packed = openai_client.embeddings.create(input=SENTENCES, model="m")
    assert np.array_equal(
        np.float32([item.embedding for item in floats.data]),
        np.float32([item.embedding for item in packed.data]),
    )


@pytest.mark.parametrize("dimensions", [64, 256])
def test_openai_sdk_dimensions_match_truncate_dim(openai_client, reference, dimensions):
    answer = openai_client.embeddings.create(input=SENTENCES, model="m", dimensions=dimensions)
    vectors = [item.embedding for item in answer.data]
    theirs = reference.encode(SENTENCES, truncate_dim=dimensions, normalize_embeddings=True)
    assert np.asarray(vectors).shape == (3, dimensions)
    assert cosines(vectors, theirs).min() >= 0.9999


def test_openai_sdk_sees_our_error_message(openai_client):
    from openai import BadRequestError

    with pytest.raises(BadRequestError, match=f"this model gives 1 to {DIMENSIONS}"):
        openai_client.embeddings.create(input="a", model="m", dimensions=DIMENSIONS + 1)


@pytest.fixture
def runtime(reference_endpoint):
    """boto3's sagemaker-runtime client, pointed at the local endpoint by URL alone."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=reference_endpoint.url,
        region_name="us-east-1",
        aws_access_key_id="any",
        aws_secret_access_key="any",
    )


def test_boto3_invoke_endpoint_reaches_the_model(runtime, reference):
    response = runtime.invoke_endpoint(
        EndpointName="embedding-endpoint-local",
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"inputs": SENTENCES}),
    )
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    vectors = json.loads(response["Body"].read())["embeddings"]
    assert cosines(vectors, reference.encode(SENTENCES, normalize_embeddings=True)).min() >= 0.9999


def test_boto3_sees_a_refused_request_as_sagemakers_model_error(runtime):
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(
            EndpointName="embedding-endpoint-local",
            ContentType="application/json",
            Body=json.dumps({"inputs": []}),
        )
    response = raised.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 400
    assert "empty list" in response["OriginalMessage"]


def test_langchain_openai_embeddings_by_url(reference_endpoint, reference):
    langchain_openai = pytest.importorskip("langchain_openai")
    embeddings = langchain_openai.OpenAIEmbeddings(
        base_url=f"{reference_endpoint.url}/v1",
        api_key="unused",
        model="all-MiniLM-L6-v2",
        check_embedding_ctx_length=False,  # it would count tokens with tiktoken (a download)
    )
    vectors = embeddings.embed_documents(SENTENCES)
    assert cosines(vectors, reference.encode(SENTENCES, normalize_embeddings=True)).min() >= 0.9999
    query = embeddings.embed_query(SENTENCES[0])
    assert cosines([query], reference.encode(SENTENCES[:1])).min() >= 0.9999


def test_langchain_float_vectors_need_a_chunk_size_within_the_float_limit(reference_endpoint):
    """What the README says: LangChain's default chunk_size (1,000 texts) is over the float limit
    per request; the limit from the info request works."""
    langchain_openai = pytest.importorskip("langchain_openai")
    from openai import APIStatusError

    handler = reference_endpoint.state.handler
    info = json.loads(handler.invoke(b'{"info": true}', "application/json", None).body)
    limit = info["max_texts_per_request"]["float"]
    texts = [f"text number {i}" for i in range(limit + 1)]

    def langchain(**options):
        return langchain_openai.OpenAIEmbeddings(
            base_url=f"{reference_endpoint.url}/v1",
            api_key="unused",
            model="all-MiniLM-L6-v2",
            check_embedding_ctx_length=False,
            model_kwargs={"encoding_format": "float"},
            max_retries=0,
            **options,
        )

    with pytest.raises(APIStatusError, match=f"the limit for {DIMENSIONS} dimensions in float"):
        langchain().embed_documents(texts)
    vectors = langchain(chunk_size=limit).embed_documents(texts)
    assert len(vectors) == len(texts) and len(vectors[0]) == DIMENSIONS


def test_langchain_sagemaker_endpoint_embeddings_by_url(runtime, reference):
    community = pytest.importorskip("langchain_community.embeddings")
    from langchain_community.embeddings.sagemaker_endpoint import EmbeddingsContentHandler

    class ContentHandler(EmbeddingsContentHandler):
        content_type = "application/json"
        accepts = "application/json"

        def transform_input(self, inputs, model_kwargs):
            return json.dumps({"inputs": inputs, **model_kwargs}).encode("utf-8")

        def transform_output(self, output):
            return json.loads(output.read().decode("utf-8"))["embeddings"]

    embeddings = community.SagemakerEndpointEmbeddings(
        endpoint_name="embedding-endpoint-local",
        client=runtime,
        content_handler=ContentHandler(),
        model_kwargs={"parameters": {"prompt": "query: "}},
    )
    vectors = embeddings.embed_documents(SENTENCES)
    theirs = reference.encode(SENTENCES, prompt="query: ", normalize_embeddings=True)
    assert cosines(vectors, theirs).min() >= 0.9999
