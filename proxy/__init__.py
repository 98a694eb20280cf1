"""The HTTP API's proxy Lambda: `POST /embed` → SageMaker endpoint or Bedrock model.

Runs on the Lambda runtime of facts/lambda_runtime.py with only the standard library and the
runtime's boto3; never imports Pulumi. `proxy.handler.handler` is the entry point.
"""
