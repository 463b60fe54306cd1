"""Stand-ins that hold deploy rehearsals to what the synthesized template grants in AWS.

`deployed.DeployedStack` resolves a template as CloudFormation would in one account,
`iam` evaluates IAM policies, and `gateway.Gateway` puts S3 and DynamoDB (moto) and HealthOmics
(`tests/omics_endpoint.py`) behind one endpoint that authorizes every request.
"""
