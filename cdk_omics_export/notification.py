"""An export's notification topic: EventBridge's right to publish to it, written by the export
itself (beside the key grant), so that the export's resource can wait for both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import IConstruct

if TYPE_CHECKING:
    from aws_cdk import aws_sns as sns

EVENTS_PRINCIPAL = "events.amazonaws.com"


def allow_eventbridge(topic: sns.ITopic) -> IConstruct | None:
    """Let EventBridge publish to ``topic`` (and use its key); the topic's policy, if the
    topic has one in this app, for the export to depend on."""
    # As CDK's SnsTopic target grants it, and without a condition: "You can't use
    # Condition blocks in Amazon SNS topic policies for EventBridge" (EventBridge User
    # Guide, "Amazon SNS permissions"). A topic imported by ARN keeps its own policy,
    # which must allow this statement.
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(EVENTS_PRINCIPAL)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
        )
    )
    if topic.master_key is not None:
        # As CDK's target grants it: SNS encrypts with the publisher's use of the key.
        topic.master_key.grant(
            iam.ServicePrincipal(EVENTS_PRINCIPAL),
            "kms:Decrypt",
            "kms:GenerateDataKey*",
        )
    return topic.node.try_find_child("Policy")


@jsii.implements(events.IRuleTarget)
class TopicTarget:
    """An SNS topic as a rule's target, without the grant CDK's ``SnsTopic`` target would
    add: ``allow_eventbridge`` writes it."""

    def __init__(self, topic: sns.ITopic) -> None:
        self._topic = topic

    def bind(self, rule: Any, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, target_resource=self._topic)
