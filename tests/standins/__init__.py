"""Stand-ins that hold deploy rehearsals to what the synthesized template grants in AWS.

`deployed.DeployedStack` resolves a template as CloudFormation would in one account, and
`gateway.Gateway` (which asks `tests/iam_evaluator.py` for every IAM decision) puts S3 and
DynamoDB (moto), HealthOmics (`tests/omics_endpoint.py`), Step Functions (moto's interpreter,
run by `tests/moto_runner.py`, which runs the template's state machines as their definitions
say) and EventBridge (`eventbridge`, which matches the template's rules) behind one endpoint
that authorizes every request. `clock.SimulatedClock` is the time they share with the code
under rehearsal.
"""
