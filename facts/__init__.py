"""Facts every runtime shares: identifier rules, SageMaker Serverless limits, Bedrock models.

Standard library only, and Python 3.9-compatible at run time: the loader Lambda, the proxy Lambda,
the SageMaker container (which ships some of these modules in `code/`), the Pulumi program and the
client all import them, so each fact has exactly one home.
"""
