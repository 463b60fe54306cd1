"""Deploy-time selection of read sets, with ListReadSets' filter fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aws_cdk import Token


@dataclass(frozen=True, kw_only=True)
class ReadSetFilter:
    """Which read sets of the sequence store to export, resolved by the handler at deploy time.

    Fields are ListReadSets' filter fields; every field given must match. At least one field
    besides ``status`` is required.

    :param name: the read set's name.
    :param sample_id: the sample id.
    :param subject_id: the subject id.
    :param reference_arn: the ARN of the reference genome.
    :param generated_from: where the read set was generated from.
    :param creation_type: ``"IMPORT"`` or ``"UPLOAD"``.
    :param created_after: only read sets created after this time (timezone-aware datetime
        or ISO 8601 string).
    :param created_before: only read sets created before this time.
    :param status: the read set status to select. Default: ``"ACTIVE"``. Only ACTIVE read
        sets can be exported: with another status, any read set the filter selects fails the
        pre-flight (named in the error) and no job starts.

    The filter is evaluated when the export resource is created or updated, not afterwards:
    to pick up read sets added since, change ``selection_refresh`` on the ``ReadSetExport``
    (for example to the date), and the next deploy exports only the new ones.
    """

    name: str | None = None
    sample_id: str | None = None
    subject_id: str | None = None
    reference_arn: str | None = None
    generated_from: str | None = None
    creation_type: str | None = None
    created_after: datetime | str | None = None
    created_before: datetime | str | None = None
    status: str = "ACTIVE"

    def to_api(self) -> dict[str, str]:
        """The filter as ListReadSets takes it (camelCase names, ISO 8601 times)."""
        fields = {
            "name": self.name,
            "sampleId": self.sample_id,
            "subjectId": self.subject_id,
            "referenceArn": self.reference_arn,
            "generatedFrom": self.generated_from,
            "creationType": self.creation_type,
            "createdAfter": _timestamp(self.created_after),
            "createdBefore": _timestamp(self.created_before),
            "status": self.status,
        }
        return {key: value for key, value in fields.items() if value is not None}

    def literal_fields(self) -> dict[str, str]:
        """The fields whose values are known at synth time (tokens are checked at deploy)."""
        return {k: v for k, v in self.to_api().items() if not Token.is_unresolved(v)}


def _timestamp(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError(
            f"read_set_filter: {value.isoformat()} has no time zone; give an aware datetime "
            "(e.g. datetime(2026, 1, 1, tzinfo=UTC))"
        )
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
