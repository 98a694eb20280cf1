"""The sentence-transformers files the container reads, and the module kinds it can run.

The loader refuses, at packaging time, a model listing anything else; the inference script refuses
it at load. Both read this one list (the container gets a copy of this file in `code/facts/`).
"""

MODULES_FILE = "modules.json"
SUPPORTED_MODULES = ("Transformer", "Pooling", "Dense", "Normalize")
# The only type prefix read as a kind; any other type is custom code, refused by its full name.
MODULE_TYPE_PREFIX = "sentence_transformers."
# A Dense module's weights, in order of preference.
DENSE_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def module_kind(module_type: str) -> str:
    """`sentence_transformers.models.Dense` (or a newer module path) → `Dense`.

    A type outside the sentence_transformers package is custom code: its full name is its kind,
    so it is never mistaken for a built-in module that happens to share a class name.
    """
    if not module_type.startswith(MODULE_TYPE_PREFIX):
        return module_type
    return module_type.rsplit(".", 1)[-1]


# Named prompts (name → prefix) and the model's own default prompt name.
PROMPTS_FILE = "config_sentence_transformers.json"
