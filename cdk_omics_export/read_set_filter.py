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
    :param status: the read set status to select. Default: ``None``: ACTIVE read sets, and,
        with ``ArchivedReadSets.ACTIVATE`` (the export's default), ARCHIVED and ACTIVATING ones
        too, which are activated before they are exported. With another status, any read set
        the filter selects that cannot be exported fails the pre-flight (named in the error)
        and no job starts.

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
    status: str | None = None

    def __post_init__(self) -> None:
        # A dataclass checks no types; a wrong one would otherwise surface as a jsii error
        # deep in synthesis, or pass to the handler. Raised here, where the filter is made.
        wrong = [
            f"{name}: expected a string, got {type(value).__name__}"
            for name, value in self._text_fields().items()
            if value is not None and not isinstance(value, str)
        ]
        wrong += [
            f"{name}: expected a timezone-aware datetime or an ISO 8601 string, got "
            f"{type(value).__name__}"
            for name, value in (
                ("created_after", self.created_after),
                ("created_before", self.created_before),
            )
            if value is not None and not isinstance(value, datetime | str)
        ]
        if wrong:
            raise TypeError("ReadSetFilter: invalid fields:\n- " + "\n- ".join(wrong))

    def problems(self) -> list[str]:
        """What keeps the filter from being sent to ListReadSets, one message each (empty when
        nothing does). ``ReadSetExport`` reports them with its other problems."""
        return [
            f"read_set_filter.{name}: {value.isoformat()} has no time zone; give an aware "
            "datetime (e.g. datetime(2026, 1, 1, tzinfo=UTC))"
            for name, value in (
                ("created_after", self.created_after),
                ("created_before", self.created_before),
            )
            if isinstance(value, datetime) and value.tzinfo is None
        ]

    def to_api(self) -> dict[str, str]:
        """The filter as ListReadSets takes it (camelCase names, ISO 8601 times).

        Raises ValueError with every problem of ``problems()``.
        """
        problems = self.problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self._fields()

    def literal_fields(self) -> dict[str, str]:
        """The usable fields whose values are known at synth time (tokens are checked at
        deploy time, naive datetimes are reported by ``problems()``)."""
        return {k: v for k, v in self._fields().items() if not Token.is_unresolved(v)}

    def _text_fields(self) -> dict[str, object]:
        return {
            "name": self.name,
            "sample_id": self.sample_id,
            "subject_id": self.subject_id,
            "reference_arn": self.reference_arn,
            "generated_from": self.generated_from,
            "creation_type": self.creation_type,
            "status": self.status,
        }

    def _fields(self) -> dict[str, str]:
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


def _timestamp(value: datetime | str | None) -> str | None:
    """ISO 8601 in UTC; None for a naive datetime, which ``problems()`` reports."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
