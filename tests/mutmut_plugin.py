"""A pytest plugin for ``make mutate`` only: ``[tool.mutmut] pytest_add_cli_args`` loads it
into every pytest run of mutmut's (docs/development.md, "Mutation testing").

- mutmut 3.8.0 maps each test to the functions it calls by reading ``item._nodeid``, which
  pytest 9.2 no longer has (the node id is ``item.nodeid``): every item gets it back.
- A mutant's tests run with ``-x``, in no particular order: the handler's tests, which set up
  moto for each test, run after the focused unit tests, so a mutant that those kill stops in
  milliseconds rather than after seconds of the handler's.
"""

from __future__ import annotations

import pytest

# Test files that run last: each of their tests costs a second of moto setup.
SLOW_FILES = frozenset({"test_handler.py"})


def pytest_itemcollected(item: pytest.Item) -> None:
    if not hasattr(item, "_nodeid"):
        item._nodeid = item.nodeid  # type: ignore[attr-defined]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name in SLOW_FILES)
