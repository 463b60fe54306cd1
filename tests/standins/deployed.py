"""A synthesized template "deployed" into a simulated account (test code, never shipped).

Gives every resource a deterministic physical name shaped like the one CloudFormation would
generate, and resolves intrinsic functions the way CloudFormation does, so policies can be
evaluated against the ARNs the requests will really carry. What it cannot know (a custom
resource's attributes, another stack's outputs, a customer managed policy outside the template)
it refuses to invent: those raise `Unresolvable` unless the test supplies them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

JSON = Any
_NO_VALUE = object()  # AWS::NoValue: removes the key or list item that holds it
_NAMESPACE = uuid.UUID("6a1b0f3e-0c1d-4c1e-9a8b-5f2d3c4b5a69")

# The AWS managed policies CDK attaches, as AWS publishes them (actions on "*").
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
_ENI = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]
AWS_MANAGED_POLICIES: dict[str, dict[str, JSON]] = {
    "service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    },
    "service-role/AWSLambdaVPCAccessExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": _LOGS + _ENI, "Resource": "*"}],
    },
}


class Unresolvable(LookupError):
    """A value CloudFormation would know at deploy time but this simulation does not."""


class DeployedStack:
    """A template's resources with physical names, and its intrinsics resolved."""

    def __init__(
        self,
        template: Mapping[str, JSON],
        *,
        stack_name: str = "Rehearsal",
        account: str = "111122223333",
        region: str = "us-east-1",
        partition: str = "aws",
        parameters: Mapping[str, JSON] | None = None,
        imports: Mapping[str, JSON] | None = None,
        external_policies: Mapping[str, Mapping[str, JSON]] | None = None,
    ) -> None:
        """`imports`: Fn::ImportValue export names, and "StackName.OutputName" for
        Fn::GetStackOutput. `external_policies`: documents of customer managed policies the
        template attaches by ARN but does not define."""
        self.template: dict[str, JSON] = copy.deepcopy(dict(template))
        self.stack_name = stack_name
        self.account = account
        self.region = region
        self.partition = partition
        self.url_suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
        self.stack_id = (
            f"arn:{partition}:cloudformation:{region}:{account}:stack/{stack_name}/"
            f"{uuid.uuid5(_NAMESPACE, f'{account}/{region}/{stack_name}')}"
        )
        self._parameters = dict(parameters or {})
        self._imports = dict(imports or {})
        self._external = {k: dict(v) for k, v in (external_policies or {}).items()}
        self._attributes: dict[str, dict[str, JSON]] = {}
        self._conditions: dict[str, bool] = {}
        self._custom: dict[str, dict[str, JSON]] = {}

    # Looking things up

    def resources(self, type: str | None = None) -> dict[str, dict[str, JSON]]:
        """Resources that exist once deployed (their Condition, if any, holds), by logical id."""
        return {
            logical: resource
            for logical, resource in self.template.get("Resources", {}).items()
            if (type is None or resource["Type"] == type) and self._exists(logical)
        }

    def physical_name(self, logical_id: str) -> str:
        """The resource's physical id: its `Ref` for most types, the name for ARN-Ref types."""
        attributes = self._attrs(logical_id)
        name = attributes.get("PhysicalName", attributes["Ref"])
        return str(name)

    def ref(self, logical_id: str) -> JSON:
        if logical_id.startswith("AWS::"):
            return self._pseudo(logical_id)
        if logical_id in self.template.get("Parameters", {}):
            return self._parameter(logical_id)
        return self._attrs(logical_id)["Ref"]

    def get_att(self, logical_id: str, attribute: str) -> JSON:
        attributes = self._attrs(logical_id)
        if attribute in attributes and attribute not in {"Ref", "PhysicalName"}:
            return attributes[attribute]
        type_ = self._resource(logical_id)["Type"]
        if _is_custom(type_):
            raise Unresolvable(
                f"{logical_id}.{attribute}: a custom resource's attributes come from its "
                f"handler; give them with set_attributes({logical_id!r}, {{...}})"
            )
        raise Unresolvable(f"Fn::GetAtt {logical_id}.{attribute} is not modelled for {type_}")

    def set_attributes(
        self, logical_id: str, data: Mapping[str, JSON], *, physical_id: str | None = None
    ) -> None:
        """What a custom resource's handler returned: its Data and, optionally, physical id."""
        if not _is_custom(self._resource(logical_id)["Type"]):
            raise ValueError(f"{logical_id} is not a custom resource")
        custom = self._custom.setdefault(logical_id, {})
        custom.update(data)
        if physical_id is not None:
            custom["Ref"] = physical_id
        self._attributes.pop(logical_id, None)

    # IAM

    def role_arn(self, logical_id: str) -> str:
        self._expect(logical_id, "AWS::IAM::Role")
        return str(self.get_att(logical_id, "Arn"))

    def role_by_arn(self, arn: str) -> str:
        for logical in self.resources("AWS::IAM::Role"):
            if self.role_arn(logical) == arn:
                return logical
        raise KeyError(f"no role of this stack has the ARN {arn}")

    def trust_policy(self, role_logical_id: str) -> dict[str, JSON]:
        role = self._expect(role_logical_id, "AWS::IAM::Role")
        document: dict[str, JSON] = self.resolve(role["Properties"]["AssumeRolePolicyDocument"])
        return document

    def role_policies(self, role_logical_id: str) -> list[dict[str, JSON]]:
        """Every resolved policy document that applies to the role, as deployed."""
        role = self._expect(role_logical_id, "AWS::IAM::Role")
        properties = role.get("Properties", {})
        role_name = self.ref(role_logical_id)
        documents = [
            self.policy_document(arn)
            for arn in self.resolve(properties.get("ManagedPolicyArns", []))
        ]
        for logical, resource in self.resources("AWS::IAM::ManagedPolicy").items():
            if role_name in self.resolve(resource["Properties"].get("Roles", [])):
                documents.append(self._document_of(logical))
        for logical, resource in self.resources("AWS::IAM::Policy").items():
            if role_name in self.resolve(resource["Properties"].get("Roles", [])):
                documents.append(self._document_of(logical))
        for resource in self.resources("AWS::IAM::RolePolicy").values():
            if self.resolve(resource["Properties"]["RoleName"]) == role_name:
                documents.append(self.resolve(resource["Properties"]["PolicyDocument"]))
        documents.extend(self.resolve(p["PolicyDocument"]) for p in properties.get("Policies", []))
        return documents

    def permissions_boundary(self, role_logical_id: str) -> dict[str, JSON] | None:
        role = self._expect(role_logical_id, "AWS::IAM::Role")
        boundary = role.get("Properties", {}).get("PermissionsBoundary")
        return None if boundary is None else self.policy_document(self.resolve(boundary))

    def policy_document(self, arn: str) -> dict[str, JSON]:
        """A managed policy's document, by ARN: this template's, AWS's, or an external one."""
        for logical in self.resources("AWS::IAM::ManagedPolicy"):
            if self.ref(logical) == arn:
                return self._document_of(logical)
        aws_prefix = f"arn:{self.partition}:iam::aws:policy/"
        if arn.startswith(aws_prefix):
            name = arn.removeprefix(aws_prefix)
            if name not in AWS_MANAGED_POLICIES:
                raise Unresolvable(f"AWS managed policy {name} is not in AWS_MANAGED_POLICIES")
            return copy.deepcopy(AWS_MANAGED_POLICIES[name])
        if arn in self._external:
            return copy.deepcopy(self._external[arn])
        raise Unresolvable(f"managed policy {arn} is neither in the template nor external_policies")

    # S3

    def bucket_by_name(self, name: str) -> str:
        for logical in self.resources("AWS::S3::Bucket"):
            if self.ref(logical) == name:
                return logical
        raise KeyError(f"no bucket of this stack is named {name}")

    def bucket_policy(self, bucket_logical_id: str) -> dict[str, JSON] | None:
        name = self.ref(bucket_logical_id)
        found = [
            self.resolve(resource["Properties"]["PolicyDocument"])
            for resource in self.resources("AWS::S3::BucketPolicy").values()
            if self.resolve(resource["Properties"]["Bucket"]) == name
        ]
        if len(found) > 1:
            raise ValueError(f"bucket {name} has {len(found)} bucket policies; S3 keeps one")
        return found[0] if found else None

    def bucket_key_arn(self, bucket_logical_id: str) -> str | None:
        """The customer managed KMS key of the bucket's default encryption, if it has one.

        SSE-KMS without a key id means the aws/s3 key, which needs no permission of its own.
        """
        bucket = self._expect(bucket_logical_id, "AWS::S3::Bucket")
        encryption = self.resolve(bucket.get("Properties", {}).get("BucketEncryption"))
        if not encryption:
            return None
        for rule in encryption.get("ServerSideEncryptionConfiguration", []):
            default = rule.get("ServerSideEncryptionByDefault", {})
            if default.get("SSEAlgorithm") in {"aws:kms", "aws:kms:dsse"}:
                key = default.get("KMSMasterKeyID")
                return None if key is None else self.kms_key_arn(key)
        return None

    def kms_key_arn(self, key: str) -> str:
        """A key id, key ARN, alias name or alias ARN, as the key's ARN."""
        if key.startswith("arn:") and ":key/" in key:
            return key
        alias = key.split(":", 5)[-1] if key.startswith("arn:") else key
        if alias.startswith("alias/"):
            for resource in self.resources("AWS::KMS::Alias").values():
                if self.resolve(resource["Properties"]["AliasName"]) == alias:
                    return self.kms_key_arn(self.resolve(resource["Properties"]["TargetKeyId"]))
            raise Unresolvable(f"KMS alias {alias} is not defined in this template")
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{key}"

    # Other resource policies

    def key_policy(self, key_logical_id: str) -> dict[str, JSON]:
        key = self._expect(key_logical_id, "AWS::KMS::Key")
        document: dict[str, JSON] = self.resolve(key["Properties"]["KeyPolicy"])
        return document

    def topic_policy(self, topic_logical_id: str) -> dict[str, JSON] | None:
        """The statements of every TopicPolicy naming the topic (SNS keeps the last one set;
        CDK writes one per topic)."""
        arn = self.ref(topic_logical_id)
        found = [
            self.resolve(resource["Properties"]["PolicyDocument"])
            for resource in self.resources("AWS::SNS::TopicPolicy").values()
            if arn in self.resolve(resource["Properties"]["Topics"])
        ]
        if len(found) > 1:
            raise ValueError(f"topic {arn} has {len(found)} topic policies")
        return found[0] if found else None

    def bus_policy(self, bus_logical_id: str) -> dict[str, JSON] | None:
        """The bus's resource policy: its Policy property and each EventBusPolicy statement."""
        bus = self._expect(bus_logical_id, "AWS::Events::EventBus")
        name = self.ref(bus_logical_id)
        statements: list[JSON] = []
        own = bus.get("Properties", {}).get("Policy")
        if own is not None:
            statements.extend(_as_list(self.resolve(own).get("Statement", [])))
        for resource in self.resources("AWS::Events::EventBusPolicy").values():
            properties = self.resolve(resource["Properties"])
            if properties.get("EventBusName", "default") != name:
                continue
            if "Statement" not in properties:
                raise Unresolvable("an EventBusPolicy without Statement is not modelled")
            statements.append(properties["Statement"])
        return {"Version": "2012-10-17", "Statement": statements} if statements else None

    def function_policy(self, function_logical_id: str) -> dict[str, JSON] | None:
        """The function's resource policy as Lambda writes it from each AWS::Lambda::Permission
        (GetPolicy's form: SourceArn as ArnLike on AWS:SourceArn, SourceAccount as
        StringEquals on AWS:SourceAccount)."""
        arn = self.get_att(function_logical_id, "Arn")
        name = self.ref(function_logical_id)
        statements: list[JSON] = []
        for logical, resource in self.resources("AWS::Lambda::Permission").items():
            properties = self.resolve(resource["Properties"])
            if properties["FunctionName"] not in {arn, name}:
                continue
            principal = str(properties["Principal"])
            condition: dict[str, JSON] = {}
            if "SourceArn" in properties:
                condition["ArnLike"] = {"AWS:SourceArn": properties["SourceArn"]}
            if "SourceAccount" in properties:
                condition["StringEquals"] = {"AWS:SourceAccount": properties["SourceAccount"]}
            unmodelled = set(properties) - {
                "Action",
                "FunctionName",
                "Principal",
                "SourceArn",
                "SourceAccount",
            }
            if unmodelled:
                raise Unresolvable(f"Lambda permission properties {sorted(unmodelled)}")
            statement: dict[str, JSON] = {
                "Sid": logical,
                "Effect": "Allow",
                "Principal": (
                    {"Service": principal}
                    if principal.endswith(".amazonaws.com")
                    else {"AWS": principal}
                ),
                "Action": properties["Action"],
                "Resource": arn,
            }
            if condition:
                statement["Condition"] = condition
            statements.append(statement)
        return {"Version": "2012-10-17", "Statement": statements} if statements else None

    # Resolution

    def resolve(self, value: JSON) -> JSON:
        """A template value with every intrinsic function resolved."""
        resolved = self._resolve(value)
        if resolved is _NO_VALUE:
            raise ValueError("AWS::NoValue at the top level")
        return resolved

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._condition_value(self.template["Conditions"][name])
        return self._conditions[name]

    def _resolve(self, value: JSON) -> JSON:
        if isinstance(value, list):
            items = [self._resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return _NO_VALUE if argument == "AWS::NoValue" else self.ref(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        out = {k: self._resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _NO_VALUE}

    def _function(self, name: str, argument: JSON) -> JSON:
        functions: dict[str, Callable[[JSON], JSON]] = {
            "Fn::GetAtt": self._fn_get_att,
            "Fn::Join": self._fn_join,
            "Fn::Sub": self._fn_sub,
            "Fn::Select": self._fn_select,
            "Fn::Split": self._fn_split,
            "Fn::If": self._fn_if,
            "Fn::ImportValue": self._fn_import_value,
            "Fn::GetStackOutput": self._fn_get_stack_output,
            "Fn::GetAZs": self._fn_get_azs,
            "Fn::Base64": lambda a: base64.b64encode(self._string(a).encode()).decode(),
            "Fn::FindInMap": self._fn_find_in_map,
            "Fn::ToJsonString": lambda a: json.dumps(self.resolve(a), separators=(",", ":")),
            "Fn::Length": lambda a: len(self.resolve(a)),
            "Fn::Cidr": self._fn_cidr,
        }
        if name in {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"}:
            return self._condition_value({name: argument})
        if name not in functions:
            raise Unresolvable(f"{name} is not modelled")
        return functions[name](argument)

    def _fn_get_att(self, argument: JSON) -> JSON:
        if isinstance(argument, str):
            logical, _, attribute = argument.partition(".")
        else:
            logical, attribute = argument[0], self._string(argument[1])
        return self.get_att(logical, attribute)

    def _fn_join(self, argument: JSON) -> str:
        delimiter, items = argument
        return str(delimiter).join(self._string(v) for v in self.resolve(items))

    def _fn_sub(self, argument: JSON) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {k: self.resolve(v) for k, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return self._string(values[name])
            if "." in name and not name.startswith("AWS::"):
                logical, _, attribute = name.partition(".")
                return self._string(self.get_att(logical, attribute))
            return self._string(self.ref(name))

        return re.sub(r"\$\{([^}]*)\}", substitute, text)

    def _fn_select(self, argument: JSON) -> JSON:
        index, items = argument
        resolved = self.resolve(items)
        position = int(self.resolve(index))
        if not 0 <= position < len(resolved):
            raise IndexError(f"Fn::Select index {position} of a list of {len(resolved)}")
        return resolved[position]

    def _fn_split(self, argument: JSON) -> list[str]:
        delimiter, text = argument
        return self._string(text).split(delimiter)

    def _fn_if(self, argument: JSON) -> JSON:
        name, if_true, if_false = argument
        return self._resolve(if_true if self.condition(name) else if_false)

    def _fn_import_value(self, argument: JSON) -> JSON:
        name = self._string(argument)
        if name not in self._imports:
            raise Unresolvable(f"Fn::ImportValue {name}: give it in imports")
        return self._imports[name]

    def _fn_get_stack_output(self, argument: JSON) -> JSON:
        resolved = self.resolve(argument)
        key = f"{resolved['StackName']}.{resolved['OutputName']}"
        if key not in self._imports:
            raise Unresolvable(f"Fn::GetStackOutput {key}: give it in imports as {key!r}")
        return self._imports[key]

    def _fn_get_azs(self, argument: JSON) -> list[str]:
        region = self._string(argument) or self.region
        return [f"{region}{zone}" for zone in "abc"]

    def _fn_find_in_map(self, argument: JSON) -> JSON:
        name, top, second, *rest = argument
        mapping = self.template.get("Mappings", {}).get(self._string(name), {})
        found = mapping.get(self._string(top), {}).get(self._string(second), _NO_VALUE)
        if found is _NO_VALUE:
            if rest and isinstance(rest[0], dict) and "DefaultValue" in rest[0]:
                return self.resolve(rest[0]["DefaultValue"])
            raise KeyError(f"Fn::FindInMap {argument!r}")
        return found

    def _fn_cidr(self, argument: JSON) -> list[str]:
        block, count, bits = self.resolve(argument)
        network = ipaddress.ip_network(block)
        subnets = network.subnets(new_prefix=network.max_prefixlen - int(bits))
        return [str(s) for _, s in zip(range(int(count)), subnets, strict=False)]

    def _condition_value(self, expression: JSON) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, argument),) = expression.items()
            if key == "Condition":
                return self.condition(argument)
            if key == "Fn::Equals":
                left, right = (_scalar(self.resolve(a)) for a in argument)
                return bool(left == right)
            if key == "Fn::Not":
                return not self._condition_value(argument[0])
            if key == "Fn::And":
                return all(self._condition_value(a) for a in argument)
            if key == "Fn::Or":
                return any(self._condition_value(a) for a in argument)
        resolved = self.resolve(expression)
        if isinstance(resolved, bool):
            return resolved
        raise Unresolvable(f"not a condition: {expression!r}")

    def _string(self, value: JSON) -> str:
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, int | float | str):
            return str(resolved)
        raise TypeError(f"expected a string, got {resolved!r}")

    # Parameters and pseudo parameters

    def _pseudo(self, name: str) -> JSON:
        values: dict[str, JSON] = {
            "AWS::Partition": self.partition,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::NotificationARNs": [],
        }
        if name not in values:
            raise Unresolvable(f"pseudo parameter {name}")
        return values[name]

    def _parameter(self, name: str) -> JSON:
        spec = self.template["Parameters"][name]
        if name in self._parameters:
            value = self._parameters[name]
        elif spec.get("Type", "").startswith("AWS::SSM::Parameter::Value"):
            # CDK's BootstrapVersion reads the bootstrap stack's version from SSM.
            if name != "BootstrapVersion":
                raise Unresolvable(f"SSM-typed parameter {name}: give it in parameters")
            value = "6"
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise Unresolvable(f"parameter {name} has no Default: give it in parameters")
        type_ = spec.get("Type", "String")
        if (type_ == "CommaDelimitedList" or type_.startswith("List<")) and isinstance(value, str):
            return value.split(",")
        return value if isinstance(value, list) else str(value)

    # Physical names and attributes

    def _exists(self, logical: str) -> bool:
        condition = self.template["Resources"][logical].get("Condition")
        return condition is None or self.condition(condition)

    def _resource(self, logical: str) -> dict[str, JSON]:
        resources = self.template.get("Resources", {})
        if logical not in resources:
            raise KeyError(f"no resource or parameter {logical} in the template")
        if not self._exists(logical):
            raise Unresolvable(f"{logical} is not created: its Condition is false")
        resource: dict[str, JSON] = resources[logical]
        return resource

    def _expect(self, logical: str, type_: str) -> dict[str, JSON]:
        resource = self._resource(logical)
        if resource["Type"] != type_:
            raise TypeError(f"{logical} is a {resource['Type']}, not a {type_}")
        return resource

    def _document_of(self, logical: str) -> dict[str, JSON]:
        document: dict[str, JSON] = self.resolve(
            self._resource(logical)["Properties"]["PolicyDocument"]
        )
        return document

    def _attrs(self, logical: str) -> dict[str, JSON]:
        if logical not in self._attributes:
            resource = self._resource(logical)
            build = _KINDS.get(resource["Type"])
            if build is not None:
                attributes = build(self, logical, resource.get("Properties", {}))
            elif _is_custom(resource["Type"]):
                attributes = {"Ref": f"{logical}-{self._suffix(logical)}"}
                attributes.update(self._custom.get(logical, {}))
            else:
                attributes = {"Ref": self._name(logical, 64)}
            self._attributes[logical] = attributes
        return self._attributes[logical]

    def _suffix(self, logical: str, length: int = 12) -> str:
        digest = hashlib.sha256(f"{self.stack_id}/{logical}".encode()).hexdigest()
        return digest[:length].upper()

    def _name(self, logical: str, limit: int, *, lower: bool = False) -> str:
        """CloudFormation's generated names: stack, logical id and a random suffix, truncated."""
        suffix = self._suffix(logical)
        base = f"{self.stack_name}-{logical}"[: limit - len(suffix) - 1]
        name = f"{base}-{suffix}"
        if lower:
            name = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")
        return name

    def _given(self, properties: Mapping[str, JSON], key: str) -> str | None:
        value = properties.get(key)
        return None if value is None else self._string(value)

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = f"{self.region}:{self.account}" if region else f":{self.account}"
        return f"arn:{self.partition}:{service}:{where}:{resource}"


def _scalar(value: JSON) -> JSON:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def _is_custom(type_: str) -> bool:
    return type_.startswith("Custom::") or type_ == "AWS::CloudFormation::CustomResource"


Attributes = dict[str, JSON]


def _bucket(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "BucketName") or stack._name(logical, 63, lower=True)
    suffix = stack.url_suffix
    return {
        "Ref": name,
        "Arn": f"arn:{stack.partition}:s3:::{name}",
        "DomainName": f"{name}.s3.{suffix}",
        "RegionalDomainName": f"{name}.s3.{stack.region}.{suffix}",
        "DualStackDomainName": f"{name}.s3.dualstack.{stack.region}.{suffix}",
        "WebsiteURL": f"http://{name}.s3-website-{stack.region}.{suffix}",
    }


def _role(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "RoleName") or stack._name(logical, 64)
    path = stack._given(props, "Path") or "/"
    return {
        "Ref": name,
        "Arn": stack._arn("iam", f"role{path}{name}", region=False),
        "RoleId": "AROA" + stack._suffix(logical, 17),
    }


def _managed_policy(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "ManagedPolicyName") or stack._name(logical, 128)
    path = stack._given(props, "Path") or "/"
    arn = stack._arn("iam", f"policy{path}{name}", region=False)
    return {"Ref": arn, "PhysicalName": name, "PolicyArn": arn, "PolicyId": "ANPA" + arn[-17:]}


def _instance_profile(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "InstanceProfileName") or stack._name(logical, 128)
    path = stack._given(props, "Path") or "/"
    return {"Ref": name, "Arn": stack._arn("iam", f"instance-profile{path}{name}", region=False)}


def _table(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "TableName") or stack._name(logical, 255)
    arn = stack._arn("dynamodb", f"table/{name}")
    return {"Ref": name, "Arn": arn, "StreamArn": f"{arn}/stream/2026-01-01T00:00:00.000"}


def _key(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    key_id = str(uuid.uuid5(_NAMESPACE, f"{stack.stack_id}/{logical}"))
    return {"Ref": key_id, "Arn": stack._arn("kms", f"key/{key_id}"), "KeyId": key_id}


def _alias(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    return {"Ref": stack._string(props["AliasName"])}


def _function(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "FunctionName") or stack._name(logical, 64)
    return {"Ref": name, "Arn": stack._arn("lambda", f"function:{name}")}


def _queue(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    fifo = stack.resolve(props.get("FifoQueue", False)) in {True, "true"}
    name = stack._given(props, "QueueName") or stack._name(logical, 75 if fifo else 80)
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    url = f"https://sqs.{stack.region}.{stack.url_suffix}/{stack.account}/{name}"
    return {
        "Ref": url,
        "PhysicalName": name,
        "Arn": stack._arn("sqs", name),
        "QueueName": name,
        "QueueUrl": url,
    }


def _topic(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "TopicName") or stack._name(logical, 256)
    arn = stack._arn("sns", name)
    return {"Ref": arn, "PhysicalName": name, "TopicArn": arn, "TopicName": name}


def _log_group(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "LogGroupName") or stack._name(logical, 512)
    return {"Ref": name, "Arn": stack._arn("logs", f"log-group:{name}:*")}


def _state_machine(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "StateMachineName") or f"{logical}-{stack._suffix(logical)}"
    arn = stack._arn("states", f"stateMachine:{name}")
    return {"Ref": arn, "PhysicalName": name, "Arn": arn, "Name": name}


def _rule(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "Name") or stack._name(logical, 64)
    bus = stack._given(props, "EventBusName")
    path = f"rule/{name}" if bus in {None, "default"} else f"rule/{bus}/{name}"
    return {"Ref": name, "Arn": stack._arn("events", path)}


def _event_bus(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "Name") or stack._name(logical, 256)
    arn = stack._arn("events", f"event-bus/{name}")
    return {"Ref": name, "Arn": arn, "Name": name}


def _resource_id(prefix: str) -> Callable[[DeployedStack, str, Mapping[str, JSON]], Attributes]:
    def build(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
        ident = f"{prefix}-{stack._suffix(logical, 17).lower()}"
        attributes: Attributes = {"Ref": ident}
        if prefix == "sg":
            attributes["GroupId"] = ident
            if "VpcId" in props:
                attributes["VpcId"] = stack.resolve(props["VpcId"])
        elif prefix == "vpc":
            attributes.update(VpcId=ident, CidrBlock=stack.resolve(props.get("CidrBlock")))
        elif prefix == "subnet":
            attributes["SubnetId"] = ident
        return attributes

    return build


def _sequence_store(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    store_id = str(int(stack._suffix(logical), 16))[:10].rjust(10, "1")
    return {
        "Ref": store_id,
        "SequenceStoreId": store_id,
        "Arn": stack._arn("omics", f"sequenceStore/{store_id}"),
        "CreationTime": "2026-01-01T00:00:00Z",
        "Status": "ACTIVE",
    }


def _secret(stack: DeployedStack, logical: str, props: Mapping[str, JSON]) -> Attributes:
    name = stack._given(props, "Name") or f"{logical}-{stack._suffix(logical, 6)}"
    arn = stack._arn("secretsmanager", f"secret:{name}-{stack._suffix(logical, 6)}")
    return {"Ref": arn, "PhysicalName": name, "Id": arn}


_KINDS: dict[str, Callable[[DeployedStack, str, Mapping[str, JSON]], Attributes]] = {
    "AWS::S3::Bucket": _bucket,
    "AWS::IAM::Role": _role,
    "AWS::IAM::ManagedPolicy": _managed_policy,
    "AWS::IAM::InstanceProfile": _instance_profile,
    "AWS::DynamoDB::Table": _table,
    "AWS::KMS::Key": _key,
    "AWS::KMS::Alias": _alias,
    "AWS::Lambda::Function": _function,
    "AWS::SQS::Queue": _queue,
    "AWS::SNS::Topic": _topic,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::Events::Rule": _rule,
    "AWS::Events::EventBus": _event_bus,
    "AWS::EC2::SecurityGroup": _resource_id("sg"),
    "AWS::EC2::VPC": _resource_id("vpc"),
    "AWS::EC2::Subnet": _resource_id("subnet"),
    "AWS::Omics::SequenceStore": _sequence_store,
    "AWS::SecretsManager::Secret": _secret,
}


def _as_list(value: JSON) -> list[JSON]:
    return list(value) if isinstance(value, list) else [value]
