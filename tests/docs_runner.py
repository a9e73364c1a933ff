"""Run the shell and Python snippets of a Markdown document, in order, as a reader would.

A document is read as one terminal session: every fenced ``bash`` block runs in ``bash`` and
every ``python`` block in the suite's interpreter, one after the other, in a temporary directory
of the document's own, with the real ``sfjwt`` entry point first on ``PATH``. Environment
variables a shell block exports carry over to the blocks after it. A Python block that defines
``test_*`` functions is a pytest module and runs under pytest (the emulator fixture included).

A comment right before a fence adjusts how it runs::

    <!-- doc-test: cwd=repo -->      run in the repository (the Quick start's make targets)
    <!-- doc-test: serve -->         each line starts a server: wait for its connection, Ctrl-C
    <!-- doc-test: real-org -->      needs a real Salesforce org: not run (the text says so)

Fences without a language, or ``text``, are output shown to the reader and are not run.

Stand-ins for tools that would leave this machine (``aws``; ``pip install``, which would also
change the environment the suite runs in and fetches Airflow's constraints from GitHub) and for
``make test``, which would run this suite inside itself, live in a ``bin`` directory ahead of
``PATH``; they are written here, as small scripts, so the document's own commands stay exactly
as printed. The stand-in ``pip`` checks the command instead of running it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN_LANGUAGES = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}
OUTPUT_LANGUAGES = {"", "text", "console", "output"}
TESTED_ELSEWHERE = {
    "sql": "each ```sql block starts with '-- <name>'; tests/replication_support.py runs it"
}
"""Languages this runner cannot run, with the test that runs their blocks instead."""
DIRECTIVE = re.compile(r"<!--\s*doc-test:\s*(?P<words>[^>]*?)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
STRICT = "set -euo pipefail"
INTERACTIVE_CTRL_C = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)
"""Runs a command with SIGINT at its default, as in the terminal the document speaks to. A suite
started in the background (``nohup make test &``) has SIGINT ignored, which every process it
starts inherits: a server told "Press Ctrl-C to stop" would then never stop."""


@dataclass(frozen=True)
class Snippet:
    """One fenced block of a document."""

    doc: str
    line: int
    lang: str
    code: str
    directives: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.lang in RUN_LANGUAGES and "real-org" not in self.directives


def snippets(path: Path) -> list[Snippet]:
    """Every fenced block of ``path``, with the ``doc-test`` words of the comment before it."""
    found: list[Snippet] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = str(path.relative_to(REPO))
    index = 0
    while index < len(lines):
        start = FENCE.match(lines[index])
        if not start:
            index += 1
            continue
        before = next((t for t in reversed(lines[:index]) if t.strip()), "")
        directive = DIRECTIVE.search(before)
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        found.append(
            Snippet(
                doc=doc,
                line=index + 1,
                lang=start.group("lang").lower(),
                code="\n".join(lines[index + 1 : end]) + "\n",
                directives=tuple(directive.group("words").split()) if directive else (),
            )
        )
        index = end + 1
    return found


# --- stand-ins --------------------------------------------------------------------------------

_AWS = '''
"""aws secretsmanager create-secret --name NAME --secret-string VALUE|file://PATH, kept as files
under $DOC_TEST_SECRETS/NAME. Refuses an empty secret, as nothing should ever store one."""
import os, sys
args = sys.argv[1:]
if args[:2] != ["secretsmanager", "create-secret"]:
    sys.exit(f"aws stand-in: only 'secretsmanager create-secret' is emulated, not {args[:2]}")
opts = dict(zip(args[2::2], args[3::2]))
value = opts["--secret-string"]
if value.startswith("file://"):
    value = open(value[len("file://"):], encoding="utf-8").read()
if not value.strip():
    sys.exit("aws stand-in: refusing to store an empty secret")
path = os.path.join(os.environ["DOC_TEST_SECRETS"], opts["--name"])
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w", encoding="utf-8") as out:
    out.write(value)
print('{"Name": "%s"}' % opts["--name"])
'''

_MAKE = '''
"""make: the real one, except 'make test', which is the suite running this document: a dry run
(-n) shows the target exists and what it would run, without running the suite inside itself."""
import os, subprocess, sys
args = sys.argv[1:]
real = os.environ["DOC_TEST_REAL_MAKE"]
if "test" in args:
    args = ["-n", *args]
sys.exit(subprocess.call([real, *args]))
'''

_PIP = '''
"""pip install, checked instead of run: every pin is an exact version, and a --constraint URL is
Airflow's constraints file for the pinned apache-airflow and this interpreter's Python."""
import re, sys
args = sys.argv[1:]
if args[:1] != ["install"]:
    sys.exit(f"pip stand-in: only 'pip install' is checked, not {args[:1]}")
pins = dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\\d[\\w.]*)", a).groups() for a in args if "==" in a)
python = f"{sys.version_info.major}.{sys.version_info.minor}"
for flag, url in zip(args, args[1:]):
    if flag in ("-c", "--constraint"):
        airflow = pins.get("apache-airflow")
        expected = ("https://raw.githubusercontent.com/apache/airflow/"
                    f"constraints-{airflow}/constraints-{python}.txt")
        if url != expected:
            sys.exit(f"pip stand-in: constraint {url} is not {expected}")
print(f"pip stand-in: checked {' '.join(args)}")
'''

_JQ = '''
"""jq stand-in for machines without jq: '[-e] [-r] .a.b' filters on JSON read from stdin."""
import json, sys
args = [a for a in sys.argv[1:] if not a.startswith("-")]
flags = "".join(a[1:] for a in sys.argv[1:] if a.startswith("-"))
value = json.load(sys.stdin)
for part in [p for p in args[0].split(".") if p]:
    value = value.get(part) if isinstance(value, dict) else None
if "r" in flags and isinstance(value, str):
    print(value)
else:
    print(json.dumps(value, indent=2))
sys.exit(1 if "e" in flags and value in (None, False) else 0)
'''


def _write_tool(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{body.lstrip()}", encoding="utf-8")
    path.chmod(0o755)


# --- a document's session -----------------------------------------------------------------------


@dataclass
class DocSession:
    """The temporary directory, environment and stand-ins one document runs with."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path) -> DocSession:
        work, tools, secrets = root / "work", root / "bin", root / "secrets"
        for directory in (work, tools, secrets):
            directory.mkdir(parents=True, exist_ok=True)
        _write_tool(tools, "aws", _AWS)
        real_make = shutil.which("make")
        assert real_make, "make is needed for the Quick start"
        _write_tool(tools, "make", _MAKE)
        _write_tool(tools, "pip", _PIP)
        _write_tool(tools, "pip3", _PIP)
        if shutil.which("jq") is None:
            _write_tool(tools, "jq", _JQ)
        env = dict(os.environ)
        env.update(
            PATH=os.pathsep.join([str(tools), str(Path(sys.executable).parent), env["PATH"]]),
            DOC_TEST_SECRETS=str(secrets),
            DOC_TEST_REAL_MAKE=real_make,
            HOME=str(root / "home"),  # ~/.cache/sfjwt and the like stay in the temp directory
        )
        for name in [n for n in env if n.startswith("PYTEST_")]:
            env.pop(name)  # a reader's shell has none of the suite's own pytest settings
        return cls(root=root, env=env)

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    def run(self, snippet: Snippet, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run one snippet; the result's ``returncode`` is 0 when it worked."""
        cwd = REPO if "cwd=repo" in snippet.directives else self.work
        if "serve" in snippet.directives:
            result = self._serve(snippet, cwd, timeout)
        elif RUN_LANGUAGES[snippet.lang] == "bash":
            result = self._bash(snippet, cwd, timeout)
        else:
            result = self._python(snippet, cwd, timeout)
        self.ran.append(snippet.name)
        return result

    def _bash(
        self, snippet: Snippet, cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        state = self.root / "env.json"
        # After the snippet: its environment, so the next block sees what this one exported.
        dump = f'"{sys.executable}" -c "import json, os; print(json.dumps(dict(os.environ)))"'
        # The document's own first line sets this too (a test holds it to that); set here as well
        # so a block that lost it still fails at its first error instead of passing.
        script = f"{STRICT}\n{snippet.code}\n{dump} > '{state}'\n"
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", script],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode == 0:
            self.env = json.loads(state.read_text(encoding="utf-8"))
        return result

    def _python(
        self, snippet: Snippet, cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        if re.search(r"^def test_\w+\(", snippet.code, re.MULTILINE):
            module = self.work / f"test_snippet_{snippet.line}.py"
            module.write_text(snippet.code, encoding="utf-8")
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
            command += ["--rootdir", str(self.work), str(module)]
        else:
            module = self.work / f"snippet_{snippet.line}.py"
            module.write_text(snippet.code, encoding="utf-8")
            command = [sys.executable, str(module)]
        return subprocess.run(
            command, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def _serve(
        self, snippet: Snippet, cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Each line starts a server that prints the connection to export, then stops on Ctrl-C
        (SIGINT), as the document says. The printed connection must work."""
        outputs: list[str] = []
        for line in snippet.code.splitlines():
            command = line.split("#", 1)[0].strip()
            if not command or command == STRICT:
                continue
            proc = subprocess.Popen(
                [sys.executable, "-c", INTERACTIVE_CTRL_C]
                + ["bash", "--noprofile", "--norc", "-c", f"exec {command}"],
                cwd=cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert proc.stdout is not None
            seen: list[str] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                text = proc.stdout.readline()
                if not text:
                    break
                seen.append(text)
                if text.startswith("Press Ctrl-C"):
                    break
            exported = [t for t in seen if t.startswith("export AIRFLOW_CONN_")]
            ca = [t.rsplit(": ", 1)[1].strip() for t in seen if t.startswith("CA certificate")]
            check = self._check_connection(exported[0], ca) if exported else "no connection"
            proc.send_signal(signal.SIGINT)
            try:
                rest, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rest, _ = proc.communicate()
            outputs.append(f"$ {command}\n{''.join(seen)}{rest}{check}\n")
            if check or proc.returncode != 0:
                return subprocess.CompletedProcess(command, proc.returncode or 1, "".join(outputs))
        return subprocess.CompletedProcess(snippet.code, 0, "".join(outputs), "")

    def _check_connection(self, export_line: str, ca_bundle: list[str]) -> str:
        """'' when ``sfjwt doctor`` passes with the connection (and CA) the server printed."""
        name, _, value = export_line.removeprefix("export ").partition("=")
        env = dict(self.env)
        if ca_bundle:
            env["REQUESTS_CA_BUNDLE"] = ca_bundle[0]
        env[name] = subprocess.run(
            ["bash", "-c", f"printf %s {value.strip()}"], capture_output=True, text=True
        ).stdout
        doctor = subprocess.run(
            ["sfjwt", "doctor"], env=env, capture_output=True, text=True, timeout=120
        )
        return "" if doctor.returncode == 0 else f"sfjwt doctor failed:\n{doctor.stdout}"
