"""Which config.json makes a model its repository's own code (facts/model_code.py)."""

from __future__ import annotations

import pytest

from facts.model_code import custom_code, custom_code_problem, custom_tokenizer

NOMIC = {
    "AutoConfig": "nomic-ai/nomic-bert-2048--configuration_hf_nomic_bert.NomicBertConfig",
    "AutoModel": "nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertModel",
    "AutoModelForMaskedLM": "nomic-ai/nomic-bert-2048--modeling.NomicBertForPreTraining",
}


def test_the_classes_sentence_transformers_loads_are_the_ones_that_count():
    assert custom_code({"model_type": "nomic_bert", "auto_map": NOMIC}) == {
        "AutoConfig": NOMIC["AutoConfig"],
        "AutoModel": NOMIC["AutoModel"],
    }


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "bert"},
        {"auto_map": {"AutoModelForSequenceClassification": "org/code--m.Head"}},
        {"auto_map": "not a map"},
        ["not", "an", "object"],
        None,
    ],
    ids=["no-auto-map", "heads-only", "auto-map-not-a-map", "config-not-an-object", "no-config"],
)
def test_anything_else_is_transformers_own_model(config):
    assert custom_code(config) == {}


def test_the_problem_names_each_class_and_its_code():
    problem = custom_code_problem({"AutoModel": "org/code--modeling.Model"})
    assert "config.json maps AutoModel to 'org/code--modeling.Model'" in problem
    assert "wrong vectors" in problem


CODE_MAP = {"AutoTokenizer": ["tokenization_my.MyTokenizer", "tokenization_my.MyTokenizerFast"]}


@pytest.mark.parametrize(
    ("tokenizer_config", "target"),
    [
        ({"tokenizer_class": "MyTokenizer", "auto_map": CODE_MAP}, "tokenization_my.MyTokenizer"),
        (
            {"tokenizer_class": "MyTokenizerFast", "auto_map": CODE_MAP},
            "tokenization_my.MyTokenizer",
        ),
        (
            {
                "tokenizer_class": "MyTokenizer",
                "auto_map": {"AutoTokenizer": "org/c--t.MyTokenizer"},
            },
            "org/c--t.MyTokenizer",
        ),
        ({"tokenizer_class": "BertTokenizer", "auto_map": CODE_MAP}, None),
        ({"tokenizer_class": "MyTokenizer"}, None),
        ({"auto_map": CODE_MAP}, None),
        (None, None),
    ],
    ids=["slow", "fast", "other-repo", "library-class", "no-map", "no-class", "no-file"],
)
def test_a_tokenizer_class_its_auto_map_sends_to_code_is_found(tokenizer_config, target):
    assert custom_tokenizer(tokenizer_config) == target
