"""Which config.json makes a model its repository's own code (facts/model_code.py)."""

from __future__ import annotations

import pytest

from facts.model_code import custom_code, custom_code_problem

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
