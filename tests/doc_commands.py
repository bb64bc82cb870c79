"""Turn a guide in docs/ into one bash script that runs every documented command.

The rules (the guides rely on them; docs/README.md states them for writers):

* a ```bash block: every line is a command (a line ending in `\\` continues on
  the next); blank lines and lines starting with `#` are skipped;
* a ```console block: every line starting with `$ ` is a command; the other
  lines are shown output and are not run;
* a trailing `# exits N` comment on a command is its expected exit status
  (default 0);
* a ```python block is run as a script (`python FILE`), unless its first line
  is `# module: NAME` (an API stub of docs/api.md, checked against the code by
  tests/run/test_docs_commands.py instead);
* `<!-- write: PATH -->` on the line before a block writes the block's text to
  PATH (relative to the working folder) at that point instead of running it;
* `<!-- not run: REASON -->` on the line before a block skips it;
* install commands are never run: a command starting with `pip install`,
  `python3 -m venv` or `.venv/bin/pip` (the README's first command has its own
  test, tests/run/test_readme_command.py).

All blocks of a guide run in order in one folder, with `dpsynth` meaning
`python -m dpsynth` from this checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

INSTALL_PREFIXES = ("pip install", "python3 -m venv", ".venv/bin/pip")
_BLOCK = re.compile(r"(?:<!--\s*(write|not run):\s*(.*?)\s*-->\n)?```(\w*)\n(.*?)```", re.S)
_EXITS = re.compile(r"\s+# exits (\d+)\s*$")


@dataclass(frozen=True)
class Step:
    kind: str        # "command", "write" or "python"
    text: str        # the command, the file's text, or the Python source
    expected: int = 0
    path: str = ""   # for "write"


def _commands(lines: list[str]) -> list[Step]:
    steps, pending = [], ""
    for line in lines:
        if pending:
            line, pending = pending + line, ""
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        if not line.strip() or line.lstrip().startswith("#") or line.startswith(INSTALL_PREFIXES):
            continue
        m = _EXITS.search(line)
        steps.append(Step("command", line[: m.start()] if m else line, int(m.group(1)) if m else 0))
    return steps


def doc_steps(doc: Path) -> list[Step]:
    """The runnable steps of one guide, in document order."""
    steps: list[Step] = []
    for m in _BLOCK.finditer(doc.read_text(encoding="utf-8")):
        marker, argument, lang, body = m.groups()
        if marker == "not run":
            assert argument, f"{doc.name}: a <!-- not run: REASON --> needs a reason"
            continue
        if marker == "write":
            steps.append(Step("write", body, path=argument))
        elif lang == "bash":
            steps += _commands(body.splitlines())
        elif lang == "console":
            steps += _commands([line[2:] for line in body.splitlines() if line.startswith("$ ")])
        elif lang == "python" and not body.startswith("# module:"):
            steps.append(Step("python", body))
    return steps


def bash_script(steps: list[Step], folder: Path) -> str:
    """One bash script that runs `steps` in order and stops at the first unexpected exit."""
    lines = [f"dpsynth() {{ {shlex.quote(sys.executable)} -m dpsynth \"$@\"; }}"]
    for i, step in enumerate(steps):
        if step.kind == "write":
            lines.append(f"mkdir -p \"$(dirname {shlex.quote(step.path)})\"")
            lines.append(f"cat > {shlex.quote(step.path)} <<'DPSYNTH_DOC_EOF'\n{step.text}DPSYNTH_DOC_EOF")
            continue
        if step.kind == "python":
            script = folder / f"_doc_block_{i}.py"
            script.write_text(step.text, encoding="utf-8")
            cmd, shown = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", f"python block {i}"
        else:
            cmd, shown = step.text, step.text
        lines.append(f"{cmd}\nrc=$?\nif [ $rc -ne {step.expected} ]; then echo {shlex.quote(f'STEP {i} FAILED: {shown}')}"
                     f" \"(exit $rc, expected {step.expected})\" >&2; exit 99; fi")
    return "\n".join(lines)


def run_steps(steps: list[Step], folder: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the steps in `folder` with this checkout first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = ["bash", "-c", bash_script(steps, folder)]
    # Its own process group, killed whatever happens: a guide that starts a service in the
    # background (`dpsynth serve ... &`) must not leave it listening for the next test.
    proc = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(args, timeout, output=out, stderr=err) from None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(args, proc.returncode, out, err)
