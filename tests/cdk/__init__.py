"""Tests of the AWS CDK app (cdk/): config, templates, cdk-nag, cfn-lint, Lambda asset, custom resource."""
