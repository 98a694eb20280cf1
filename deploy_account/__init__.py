"""The AWS account and region a stack deploys to, shared by the program and the user's client."""
