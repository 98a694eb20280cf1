"""The embedding pipeline behind code/inference.py: model files and environment in, vectors out.

Shipped beside inference.py in `code/` (the toolkit puts that folder first on sys.path):
`model_files` and `environment` read what the model and the deployment say, `engines` picks
`torch_engine` or `onnx_engine` for the transformer, and `encoder` runs prompts, tokenizer,
`batches`, `pooling`, `dense` and normalization. Python 3.9-compatible, like everything shipped.
"""
