# Sourced by up.sh and down.sh: the local stack's per-process settings, so your global
# `pulumi login` and AWS profile stay untouched and nothing reaches a real AWS account.
export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
export PULUMI_CONFIG_PASSPHRASE="${LOCAL_PULUMI_CONFIG_PASSPHRASE:-local-stack-only}"
unset PULUMI_CONFIG_PASSPHRASE_FILE AWS_PROFILE AWS_SESSION_TOKEN
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
