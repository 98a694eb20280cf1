"""The Bedrock embedding models this project can call: how each is called, where, at what price.

The one table of models. Pure data and checks (standard library only): the stack config rejects a
wrong `bedrockModelId` before anything is declared, `facts.bedrock_formats` builds each model's
requests from it, and the proxy Lambda ships both modules.

Region lists are partial snapshots of where each model is offered in-region (on-demand), taken from
AWS's Bedrock documentation; they are not exhaustive and AWS adds regions over time. So a region
outside a list is a warning, never an error; an unknown model id is an error. Re-check against
"Model support by AWS Region" in the Bedrock user guide when updating this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from facts.partitions import partition

DEFAULT_MODEL_ID = "amazon.titan-embed-text-v2:0"


@dataclass(frozen=True)
class BedrockEmbeddingModel:
    """One Bedrock foundation model that returns embeddings, and how it is called."""

    model_id: str
    name: str
    family: str  # the request and response shape (facts/bedrock_formats.py)
    dimensions: int  # the default output size
    allowed_dimensions: tuple[int, ...]
    max_texts_per_call: int  # Titan takes one text per InvokeModel call, Cohere up to 96
    max_chars_per_text: int
    # On-demand $ per 1,000 input tokens (an estimate: facts/pricing.py says where and when from).
    price_per_1k_tokens: float
    # Regions known to offer the model in-region; None: no list recorded.
    known_regions: frozenset[str] | None
    # Whether the model itself can L2-normalize; otherwise the caller normalizes locally.
    server_normalize: bool = False


def _regions(names: str) -> frozenset[str]:
    """Region codes, written as one space-separated list."""
    return frozenset(names.split())


# Cohere's English and multilingual v3 models are offered in the same regions.
_COHERE_V3_REGIONS = _regions(
    "us-east-1 us-west-2 ca-central-1 sa-east-1 eu-central-1 eu-west-1 eu-west-2 eu-west-3 "
    "ap-northeast-1 ap-south-1 ap-southeast-1 ap-southeast-2"
)

MODELS: dict[str, BedrockEmbeddingModel] = {
    model.model_id: model
    for model in (
        BedrockEmbeddingModel(
            model_id="amazon.titan-embed-text-v2:0",
            name="Amazon Titan Text Embeddings V2",
            family="titan-v2",
            dimensions=1024,
            allowed_dimensions=(256, 512, 1024),
            max_texts_per_call=1,
            max_chars_per_text=50_000,
            price_per_1k_tokens=0.00002,
            server_normalize=True,
            known_regions=_regions(
                "us-east-1 us-east-2 us-west-2 us-gov-west-1 ca-central-1 sa-east-1 eu-central-1 "
                "eu-central-2 eu-west-1 eu-west-2 eu-west-3 ap-northeast-1 ap-northeast-2 "
                "ap-south-1 ap-southeast-2"
            ),
        ),
        BedrockEmbeddingModel(
            model_id="amazon.titan-embed-text-v1",
            name="Amazon Titan Embeddings G1 - Text",
            family="titan-v1",
            dimensions=1536,
            allowed_dimensions=(1536,),
            max_texts_per_call=1,
            max_chars_per_text=50_000,
            price_per_1k_tokens=0.0001,
            known_regions=_regions("us-east-1 us-west-2 eu-central-1 ap-northeast-1"),
        ),
        BedrockEmbeddingModel(
            model_id="amazon.titan-embed-image-v1",
            name="Amazon Titan Multimodal Embeddings G1 (text input)",
            family="titan-multimodal",
            dimensions=1024,
            allowed_dimensions=(256, 384, 1024),
            max_texts_per_call=1,
            max_chars_per_text=50_000,
            price_per_1k_tokens=0.0008,
            known_regions=_regions(
                "us-east-1 us-west-2 ap-south-1 ap-southeast-2 eu-west-1 eu-west-3"
            ),
        ),
        BedrockEmbeddingModel(
            model_id="cohere.embed-english-v3",
            name="Cohere Embed English v3",
            family="cohere-v3",
            dimensions=1024,
            allowed_dimensions=(1024,),
            max_texts_per_call=96,
            max_chars_per_text=2048,
            price_per_1k_tokens=0.0001,
            known_regions=_COHERE_V3_REGIONS,
        ),
        BedrockEmbeddingModel(
            model_id="cohere.embed-multilingual-v3",
            name="Cohere Embed Multilingual v3",
            family="cohere-v3",
            dimensions=1024,
            allowed_dimensions=(1024,),
            max_texts_per_call=96,
            max_chars_per_text=2048,
            price_per_1k_tokens=0.0001,
            known_regions=_COHERE_V3_REGIONS,
        ),
        BedrockEmbeddingModel(
            model_id="cohere.embed-v4:0",
            name="Cohere Embed v4",
            family="cohere-v4",
            dimensions=1536,
            allowed_dimensions=(256, 512, 1024, 1536),
            max_texts_per_call=96,
            max_chars_per_text=500_000,
            price_per_1k_tokens=0.00012,
            # Offered in some regions only through cross-region inference profiles; no in-region
            # list recorded.
            known_regions=None,
        ),
    )
}

# Cross-region inference profile ids ("us.cohere.embed-v4:0") need a different ARN and IAM shape.
_INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")


def model_problem(model_id: str) -> str | None:
    """Why `model_id` cannot be used (an error message tail), or None when it is a known model.

    Region fit never fails validation (the region lists are snapshots): see `model_warning`.
    """
    if model_id in MODELS:
        return None
    allowed = ", ".join(MODELS)
    if model_id.startswith(_INFERENCE_PROFILE_PREFIXES):
        return (
            "cross-region inference profile ids are not supported (their IAM scope spans several "
            f"regions); use the in-region model id, one of {allowed}"
        )
    return f"expected one of the Bedrock embedding models {allowed}"


def model_warning(model_id: str, region: str) -> str | None:
    """A warning when `region` is not known to offer `model_id` (None when it is, or unknown id)."""
    model = MODELS.get(model_id)
    if model is None:
        return None
    if model.known_regions is None:
        return (
            f"bedrockModelId {model_id!r}: no region list is recorded for this model; check that "
            f"it is offered in-region in {region} (Bedrock console → Model access)"
        )
    if region in model.known_regions:
        return None
    return (
        f"bedrockModelId {model_id!r} is not known to be offered in {region} (known: "
        f"{', '.join(sorted(model.known_regions))}); AWS adds regions over time, so check the "
        "Bedrock console before relying on it"
    )


def foundation_model_arn(model_id: str, region: str) -> str:
    """The ARN IAM uses for invoking a foundation model (foundation models have no account id)."""
    return f"arn:{partition(region)}:bedrock:{region}::foundation-model/{model_id}"
