"""Which Hugging Face PyTorch inference container (DLC) the endpoint runs, and where it lives.

Pure: the registry account per region, the known CPU tags, tag validation and the image URI. A
tag is known only when both the SageMaker SDK's `huggingface.json` and the DLC project's data name
it (extracts: tests/data/dlc_cpu_inference_tags.json); a well-formed unknown tag deploys with a
warning (docs/configuration.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from facts.partitions import dns_suffix, partition

REPOSITORY = "huggingface-pytorch-inference"

# The account that publishes the DLCs in most commercial regions.
_DEFAULT_ACCOUNT = "763104351884"
_DEFAULT_ACCOUNT_REGIONS = tuple(
    "us-east-1 us-east-2 us-west-1 us-west-2 ca-central-1 sa-east-1 eu-west-1 eu-west-2 "
    "eu-west-3 eu-central-1 eu-north-1 ap-south-1 ap-northeast-1 ap-northeast-2 "
    "ap-southeast-1 ap-southeast-2".split()
)
# Regions where the DLCs are published from a region-specific account.
_REGIONAL_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ca-west-1": "204538143572",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-south-1": "217643126080",
    "me-central-1": "914824155844",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}
REGISTRY_ACCOUNTS: dict[str, str] = {
    **dict.fromkeys(_DEFAULT_ACCOUNT_REGIONS, _DEFAULT_ACCOUNT),
    **_REGIONAL_ACCOUNTS,
}


@dataclass(frozen=True)
class DlcImage:
    """What we know about one CPU inference tag."""

    pytorch: str
    transformers: str
    python: str
    ubuntu: str
    # Compressed size in GB as pulled from ECR; None where no checked figure exists.
    compressed_gb: float | None
    # transformers < 4.30 does not depend on `safetensors`, and these images do not ship it: they
    # cannot load `model.safetensors`, the only weights file of many current Hub models.
    loads_safetensors: bool

    @property
    def tag(self) -> str:
        return (
            f"{self.pytorch}-transformers{self.transformers}-cpu-"
            f"py{self.python}-ubuntu{self.ubuntu}"
        )


# Each line: where the DLC project records the CPU image (full citations in
# tests/data/dlc_cpu_inference_tags.json). 2.6.0/4.51.3 is not here: the DLC image listings show
# it for GPU only, so it deploys with the unknown-tag warning.
_KNOWN_IMAGES = (
    # release_images_inference.yml @ 1e3d06f; available_images.md (2024)
    DlcImage("1.13.1", "4.26.0", "39", "20.04", 1.45, loads_safetensors=False),
    # release_images_inference.yml @ 1e3d06f; available_images.md (2024)
    DlcImage("2.0.0", "4.28.1", "310", "20.04", 6.1, loads_safetensors=False),
    # docs/src/data/huggingface-pytorch-inference/2.1-cpu-sagemaker.yml
    DlcImage("2.1.0", "4.37.0", "310", "22.04", None, loads_safetensors=True),
    # release_images_inference.yml @ 1e3d06f; release tag v2.2-hf-4.48.0-pt-2.3.0-inf-py311
    DlcImage("2.3.0", "4.48.0", "311", "22.04", None, loads_safetensors=True),
    # docs/src/data/huggingface-pytorch-inference/2.6-cpu-sagemaker.yml @ e69f112
    DlcImage("2.6.0", "4.49.0", "312", "22.04", None, loads_safetensors=True),
    # docs/src/data/huggingface-pytorch-inference/2.6-cpu-sagemaker.yml @ 9602de4 (current)
    DlcImage("2.6.0", "5.5.3", "312", "22.04", None, loads_safetensors=True),
)
KNOWN_CPU_INFERENCE_TAGS: dict[str, DlcImage] = {image.tag: image for image in _KNOWN_IMAGES}

# The oldest (and so, among the images that can read safetensors, the leanest) stack that ships
# `safetensors`; 1.13.1 is smaller but cannot load most current models. See docs/architecture.md.
DEFAULT_IMAGE_TAG = "2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04"

SERVERLESS_IMAGE_LIMIT_GB = 10.0

TAG_FORM = "{pytorch}-transformers{transformers}-cpu-py{NN}-ubuntu{X.Y}"
_TAG = re.compile(
    r"^(?P<pytorch>\d+\.\d+\.\d+)-transformers(?P<transformers>\d+\.\d+\.\d+)"
    r"-cpu-py(?P<python>\d{2,3})-ubuntu(?P<ubuntu>\d+\.\d+)$"
)
_GPU_MARKERS = re.compile(r"(^|-)(gpu|cu\d+)(-|$)")


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not a CPU inference DLC tag serverless can run, or None when it is."""
    allowed = f"expected a CPU inference tag of the form {TAG_FORM}, e.g. {DEFAULT_IMAGE_TAG}"
    if ":" in tag or "/" in tag:
        return f"give only the tag, not an image URI; {allowed}"
    if "training" in tag:
        return f"training images cannot serve an endpoint; {allowed}"
    if _GPU_MARKERS.search(tag):
        return f"serverless endpoints have no GPU, so GPU tags cannot run; {allowed}"
    if not _TAG.match(tag):
        return allowed
    return None


def tag_warnings(tag: str) -> list[str]:
    """Deploy-time cautions about a valid tag (unknown tag, no safetensors, oversize image)."""
    image = KNOWN_CPU_INFERENCE_TAGS.get(tag)
    if image is None:
        return [
            f"imageTag {tag!r} is not in the table of known CPU inference tags; check that it "
            f"exists in the {REPOSITORY} repository of your region"
        ]
    found: list[str] = []
    if not image.loads_safetensors:
        found.append(
            f"imageTag {tag!r} ships transformers {image.transformers} without the safetensors "
            "package: models whose only weights are model.safetensors will fail to load"
        )
    if image.compressed_gb is not None and image.compressed_gb > SERVERLESS_IMAGE_LIMIT_GB:
        found.append(f"imageTag {tag!r} exceeds the {SERVERLESS_IMAGE_LIMIT_GB} GB serverless cap")
    return found


def python_version(tag: str) -> str | None:
    """The image's Python as "3.10" (from the tag's `py310`), or None for a malformed tag."""
    match = _TAG.match(tag)
    if match is None:
        return None
    digits = match["python"]
    return f"{digits[0]}.{digits[1:]}"


def region_problem(region: str) -> str | None:
    """Why no DLC registry is known for `region`, or None when one is."""
    if region in REGISTRY_ACCOUNTS:
        return None
    return "no Hugging Face DLC registry is known there; expected one of " + ", ".join(
        sorted(REGISTRY_ACCOUNTS)
    )


def registry_account(region: str) -> str:
    """The AWS account that publishes the DLCs in `region` (KeyError names the region)."""
    try:
        return REGISTRY_ACCOUNTS[region]
    except KeyError:
        raise KeyError(f"region {region!r}: {region_problem(region)}") from None


def image_uri(region: str, tag: str) -> str:
    """The full ECR URI of the DLC `tag` in `region` (ValueError for a tag serverless can't run)."""
    problem = tag_problem(tag)
    if problem:
        raise ValueError(f"imageTag {tag!r}: {problem}")
    account = registry_account(region)
    return f"{account}.dkr.ecr.{region}.{dns_suffix(region)}/{REPOSITORY}:{tag}"


def repository_arn(region: str) -> str:
    """The ARN of the DLC repository in `region`: what the endpoint role may pull from."""
    account = registry_account(region)
    return f"arn:{partition(region)}:ecr:{region}:{account}:repository/{REPOSITORY}"
