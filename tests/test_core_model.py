"""What an export is asked and what it is called (core/model.py): the request as its record
keeps it, the names and tokens derived from it (a change would replace every deployed export,
or start a second job on a retried start), and the shape of its messages."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import cast

import pytest

from cdk_omics_export.handler import rules
from cdk_omics_export.handler.core import model
from cdk_omics_export.handler.core import records as st

from .core_builders import (
    CONSTRUCT_PATH,
    DESTINATION,
    EXPORT_ID,
    MANIFEST_URI,
    STACK_ID,
    STATE_MACHINE_ARN,
    T0,
    record,
    request,
    rss,
    run,
    unchanged,
)

# Names


def test_the_export_id_is_the_same_for_the_same_four_inputs_only() -> None:
    assert EXPORT_ID == "rse-41725de325e174ccd8298295f809"
    assert model.export_id_of(STACK_ID, CONSTRUCT_PATH, DESTINATION, 0) == EXPORT_ID
    assert model.export_id_of(STACK_ID, CONSTRUCT_PATH, DESTINATION, 1) == (
        "rse-703d330df8ddec5690eb45568d99"
    )
    others = {
        model.export_id_of(STACK_ID + "2", CONSTRUCT_PATH, DESTINATION, 0),
        model.export_id_of(STACK_ID, CONSTRUCT_PATH + "2", DESTINATION, 0),
        model.export_id_of(STACK_ID, CONSTRUCT_PATH, DESTINATION + "x/", 0),
        # The fields are separated: moving text from one to the next changes the id.
        model.export_id_of(STACK_ID + "G", CONSTRUCT_PATH[1:], DESTINATION, 0),
    }
    assert EXPORT_ID not in others and len(others) == 4
    assert request(generation=1).export_id == "rse-703d330df8ddec5690eb45568d99"


@pytest.mark.parametrize(
    ("destination", "bucket", "key"),
    [
        (
            "s3://export-bucket/cohort-7/",
            "export-bucket",
            f"cohort-7/cdk-omics-export/{EXPORT_ID}.json",
        ),
        ("s3://export-bucket/a/b/", "export-bucket", f"a/b/cdk-omics-export/{EXPORT_ID}.json"),
        ("s3://export-bucket/", "export-bucket", f"cdk-omics-export/{EXPORT_ID}.json"),
        ("s3://export-bucket", "export-bucket", f"cdk-omics-export/{EXPORT_ID}.json"),
    ],
)
def test_the_manifest_lies_in_the_destination_under_cdk_omics_export(
    destination: str, bucket: str, key: str
) -> None:
    assert model.manifest_location(destination, EXPORT_ID) == (bucket, key)
    assert model.manifest_uri(destination, EXPORT_ID) == f"s3://{bucket}/{key}"


def test_the_manifest_uri_of_the_default_destination() -> None:
    assert model.manifest_uri(DESTINATION, EXPORT_ID) == MANIFEST_URI


def test_the_runner_is_named_after_the_export_its_run_and_segment() -> None:
    assert model.runner_name(EXPORT_ID, 2, 5) == f"{EXPORT_ID}-2-5"
    assert model.execution_arn(STATE_MACHINE_ARN, "rse-1-0") == (
        "arn:aws:states:us-east-1:111122223333:execution:Runner:rse-1-0"
    )


def test_a_start_always_sends_the_same_client_token_for_the_same_job() -> None:
    export = model.batch_client_token(EXPORT_ID, 2, 7)
    assert export == "03ff358bbaa5408d991766100c6d117761a378c6226824286a0260c96b55b8b6"
    activate = model.activation_client_token(EXPORT_ID, 2, 7)
    assert activate == "b541c995439588f95ea9727d89ab595c861c20b675a626d92f69b5b689b54d11"
    assert len(export) <= rules.CLIENT_TOKEN_MAX_LENGTH
    tokens = {
        export,
        model.batch_client_token(EXPORT_ID, 2, 8),
        model.batch_client_token(EXPORT_ID, 3, 7),
        model.batch_client_token("rse-other", 2, 7),
        activate,
        model.activation_client_token(EXPORT_ID, 2, 8),
        model.activation_client_token(EXPORT_ID, 3, 7),
    }
    assert len(tokens) == 7


# The request as the record keeps it


def test_the_runner_reads_the_request_back_from_the_record() -> None:
    kept = record(
        run(deadline=T0 + 1200, wait=False, allowPartialFailure=True, archivedReadSets="ACTIVATE"),
        encryption={"mode": "aws:kms", "keyArn": "arn:aws:kms:us-east-1:1:key/k"},
        generation=4,
    )
    with unchanged(kept):
        asked = model.ExportRequest.of_record(kept, 45)
    assert asked == model.ExportRequest(
        stack_id=STACK_ID,
        construct_path=CONSTRUCT_PATH,
        destination=DESTINATION,
        generation=4,
        sequence_store_id="1234567890",
        role_arn="arn:aws:iam::111122223333:role/ExportRole",
        selection={"readSetIds": rss(2), "allowEmpty": False},
        encryption={"mode": "aws:kms", "keyArn": "arn:aws:kms:us-east-1:1:key/k"},
        wait=False,
        allow_partial_failure=True,
        timeout_seconds=1200,
        poll_interval_seconds=45,
        archived_read_sets="ACTIVATE",
    )


def test_a_record_without_a_deadline_or_activation_reads_as_the_defaults() -> None:
    old = run()
    del old["deadline"]
    del old["archivedReadSets"]
    asked = model.ExportRequest.of_record(record(old), 30)
    assert asked.timeout_seconds == rules.DEFAULT_TIMEOUT_SECONDS == 3000
    # A run recorded before activation existed failed on archived read sets.
    assert asked.archived_read_sets == "FAIL"
    assert (asked.wait, asked.allow_partial_failure) == (True, False)


def test_a_request_defaults_to_waiting_activating_and_failing_on_a_partial_failure() -> None:
    plain = model.ExportRequest(
        stack_id=STACK_ID,
        construct_path=CONSTRUCT_PATH,
        destination=DESTINATION,
        generation=0,
        sequence_store_id="1234567890",
        role_arn="r",
        selection={"allowEmpty": False},
        encryption={"mode": ""},
    )
    assert (plain.wait, plain.allow_partial_failure) == (True, False)
    assert (plain.timeout_seconds, plain.poll_interval_seconds) == (3000, 30)
    assert plain.archived_read_sets == model.ACTIVATE == "ACTIVATE"


# Words


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (T0, "2027-01-15T08:00:00Z"),
        (T0 + 59.9, "2027-01-15T08:00:59Z"),
        (int(T0), "2027-01-15T08:00:00Z"),
        (datetime(2027, 1, 15, 8, 0, tzinfo=UTC), "2027-01-15T08:00:00+00:00"),
        (
            datetime(2027, 1, 15, 9, 30, 5, tzinfo=timezone(timedelta(hours=1))),
            "2027-01-15T09:30:05+01:00",
        ),
        ("2027-01-15T08:00:00Z", "2027-01-15T08:00:00Z"),
    ],
)
def test_times_read_as_iso_8601(value: object, text: str) -> None:
    assert model.iso_time(value) == text


def test_epoch_seconds_read_as_utc_whatever_the_machines_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert model.iso_time(T0) == "2027-01-15T08:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_message_is_one_line() -> None:
    assert model.one_line("Access\n denied:\t the  role\r\n") == "Access denied: the role"
    assert model.one_line("") == ""


def test_a_message_is_clipped_to_1000_characters() -> None:
    assert model.MAX_MESSAGE_LENGTH == 1000
    fits = "a" * 1000
    assert model.clip(fits) == fits
    clipped = model.clip("b" * 999 + "cd")
    assert clipped == "b" * 997 + "..."
    assert len(clipped) == 1000


def test_the_filters_identifying_values_are_redacted_and_its_status_is_not() -> None:
    selecting = record(
        run(
            selection={
                "filter": {"sampleId": "S-10", "name": "S-1", "status": "ACTIVE"},
                "allowEmpty": False,
            }
        )
    )
    said = "No ACTIVE read set of sample S-10 named S-1"
    with unchanged(selecting):
        assert (
            model.redact(said, selecting) == "No ACTIVE read set of sample <sampleId> named <name>"
        )
    assert model.redact(said, None) == said
    assert model.redact(said, record()) == said
    # A record read without its run (an item cut short) redacts nothing rather than fail.
    assert model.redact(said, cast(st.ExportRecord, {"exportId": EXPORT_ID})) == said
