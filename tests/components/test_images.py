"""The DLC table: registry accounts per region, CPU inference tags, image URIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import images

# Extracts of the SDK's huggingface.json and of aws/deep-learning-containers, with their commits.
SOURCES = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "dlc_cpu_inference_tags.json").read_text()
)


# Spot checks of the table against the SageMaker Python SDK's image_uri_config/huggingface.json
# (REFERENCE.md): the shared account, and regions with an account of their own per partition.
@pytest.mark.parametrize(
    ("region", "account"),
    [
        ("us-east-1", "763104351884"),
        ("eu-central-1", "763104351884"),
        ("af-south-1", "626614931356"),
        ("cn-north-1", "727897471807"),
        ("us-gov-west-1", "442386744353"),
    ],
)
def test_registry_account_matches_the_sdk_table(region: str, account: str) -> None:
    assert images.registry_account(region) == account


def test_image_uri_names_account_region_repository_and_tag() -> None:
    uri = images.image_uri("eu-south-1", images.DEFAULT_IMAGE_TAG)
    assert uri == (
        "692866216735.dkr.ecr.eu-south-1.amazonaws.com/huggingface-pytorch-inference:"
        + images.DEFAULT_IMAGE_TAG
    )


def test_china_regions_use_the_amazonaws_com_cn_domain() -> None:
    uri = images.image_uri("cn-north-1", images.DEFAULT_IMAGE_TAG)
    assert uri.startswith("727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/")


@pytest.mark.parametrize(
    ("region", "prefix"),
    [
        ("us-east-1", "arn:aws:ecr:us-east-1:763104351884:"),
        ("cn-northwest-1", "arn:aws-cn:ecr:cn-northwest-1:727897471807:"),
        ("us-gov-west-1", "arn:aws-us-gov:ecr:us-gov-west-1:442386744353:"),
    ],
)
def test_repository_arn_carries_partition_region_and_registry_account(
    region: str, prefix: str
) -> None:
    assert images.repository_arn(region) == f"{prefix}repository/huggingface-pytorch-inference"


def test_unknown_region_is_refused_with_the_region_and_the_known_ones() -> None:
    with pytest.raises(KeyError, match="mars-north-1.*us-east-1"):
        images.registry_account("mars-north-1")
    assert "eu-west-1" in (images.region_problem("mars-north-1") or "")


@pytest.mark.parametrize("tag", sorted(images.KNOWN_CPU_INFERENCE_TAGS))
def test_every_known_tag_is_a_valid_cpu_inference_tag(tag: str) -> None:
    assert images.tag_problem(tag) is None


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("2.1.0-transformers4.37.0-gpu-py310-cu118-ubuntu20.04", "GPU"),
        ("2.1.0-transformers4.37.0-cpu-py310-cu118-ubuntu20.04", "GPU"),
        ("2.0.0-transformers4.28.1-training-cpu-py310-ubuntu20.04", "training"),
        (
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
            "2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04",
            "URI",
        ),
        ("latest", "form"),
        ("2.1.0-cpu-py310-ubuntu22.04", "form"),
        ("2.1-transformers4.37.0-cpu-py310-ubuntu22.04", "form"),
    ],
)
def test_tags_serverless_cannot_run_are_refused_with_the_allowed_form(
    tag: str, reason: str
) -> None:
    problem = images.tag_problem(tag)
    assert problem is not None
    assert reason in problem
    assert images.TAG_FORM in problem


def test_image_uri_refuses_a_gpu_tag() -> None:
    with pytest.raises(ValueError, match="imageTag"):
        images.image_uri("us-east-1", "2.1.0-transformers4.37.0-gpu-py310-cu118-ubuntu20.04")


def test_default_tag_is_known_and_loads_safetensors() -> None:
    image = images.KNOWN_CPU_INFERENCE_TAGS[images.DEFAULT_IMAGE_TAG]
    assert image.loads_safetensors
    assert images.tag_warnings(images.DEFAULT_IMAGE_TAG) == []


def test_default_is_the_oldest_stack_that_loads_safetensors() -> None:
    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))

    capable = [i for i in images.KNOWN_CPU_INFERENCE_TAGS.values() if i.loads_safetensors]
    oldest = min(capable, key=lambda image: version(image.transformers))
    assert oldest.tag == images.DEFAULT_IMAGE_TAG


def test_transformers_older_than_4_30_is_marked_as_unable_to_load_safetensors() -> None:
    for image in images.KNOWN_CPU_INFERENCE_TAGS.values():
        major, minor, _ = (int(part) for part in image.transformers.split("."))
        assert image.loads_safetensors == ((major, minor) >= (4, 30)), image.tag


def test_a_tag_without_safetensors_gets_a_warning() -> None:
    (warning,) = images.tag_warnings("1.13.1-transformers4.26.0-cpu-py39-ubuntu20.04")
    assert "safetensors" in warning


def test_an_unknown_but_well_formed_tag_gets_a_warning() -> None:
    (warning,) = images.tag_warnings("9.9.9-transformers9.9.9-cpu-py313-ubuntu24.04")
    assert "not in the table" in warning


def test_known_sizes_fit_the_serverless_image_cap() -> None:
    for image in images.KNOWN_CPU_INFERENCE_TAGS.values():
        if image.compressed_gb is not None:
            assert image.compressed_gb <= images.SERVERLESS_IMAGE_LIMIT_GB, image.tag


def test_the_known_tags_are_exactly_the_cpu_images_the_dlc_data_records() -> None:
    released = {entry["tag"] for entry in SOURCES["dlc_released_cpu_tags"]}
    assert set(images.KNOWN_CPU_INFERENCE_TAGS) == released


@pytest.mark.parametrize("tag", sorted(images.KNOWN_CPU_INFERENCE_TAGS))
def test_every_known_tag_is_the_one_the_sagemaker_sdk_builds(tag: str) -> None:
    built = {
        f"{row['pytorch']}-transformers{row['transformers']}-cpu-{row['python']}-"
        f"{row['cpu_container']}"
        for row in SOURCES["sdk_cpu_inference"]
    }
    assert tag in built


def test_a_tag_the_dlc_listings_show_only_for_gpu_is_unknown_and_only_warned_about() -> None:
    (excluded,) = SOURCES["not_listed"]
    tag = excluded["tag"]
    assert tag not in images.KNOWN_CPU_INFERENCE_TAGS
    assert images.tag_problem(tag) is None  # well-formed: accepted
    (warning,) = images.tag_warnings(tag)
    assert "not in the table" in warning
