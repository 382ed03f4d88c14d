"""Every command of README.md and docs/*.md runs as written, in a shortened form.

Each `python scripts/...`, `accelerate launch ...` and `torchrun ...` line of the docs' shell blocks (one test per
doc line and placeholder instance) runs from a folder of its own that holds `configs/`, `scripts/` and the
`outputs/...` folders it reads, made by the documented commands that write them: `outputs/demo` is README's main job
(`python scripts/train.py --config configs/base.yaml`), trained once. The shortening appends a step cap and tiny
sizes to the documented flags (tests/documented_commands.py); commands identical after it run once. GPU launches run
as gloo processes on the CPU, Hub uploads go to the recording fake of tests/test_hub.py, and the explorer is started,
asked for its page and stopped. A command that is not run is in `NOT_RUN` with the reason, so that no new command
in the docs goes unrun unnoticed.
"""

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from documented_commands import (
    REPO_ROOT,
    DocCommand,
    Plan,
    WarmInterpreter,
    extract_commands,
    inputs_of,
    leftover_placeholders,
    plan,
)
from launching import OFFLINE, free_port

COMMANDS, OTHERS = extract_commands()
BY_ID = {command.id: command for command in COMMANDS}

# Documented commands this test does not run, and why.
NOT_RUN = {
    "README.md:122": "a launch over two machines (configs/accelerate/multi_node.yaml: num_machines 2, a rank-0 "
    "address); the same launch within one machine runs as README.md:120",
    "docs/benchmark.md:49": "its MarianMT peer's positions are sized by the grid's lengths, which must then reach the "
    "checkpoint's 64-token sources: a grid that long compiles the fused kernels for minutes; its grid runs as "
    "docs/benchmark.md:216 and its translation rows as docs/benchmark.md:249",
    "docs/explorer.md:8": "loads a Hub id: the local mirror of tests/test_hub.py answers the tokenizer's folder "
    "listing with 401 where the Hub answers 404, so only the real Hub serves it; the page on a folder runs as "
    "docs/explorer.md:7",
}

# Programs of the docs' shell blocks other than the scripts, and why they are not run here.
OTHER_PROGRAMS = {
    "bash": "scripts/main.sh, test.sh and setup.sh: the whole job, the whole suite (this test included) and the "
    "set-up of the environment the tests run in",
    "source": "the set-up line before the commands: each command here gets that environment",
    "export": "the set-up line before the commands: each command here gets that environment",
    "hf": "the Hub's own command line (login, repository, upload) needs the real Hub",
    "mkdir": "copies files into the Space folder (docs/explorer.md) that only the real Hub takes",
    "cp": "copies files into the Space folder (docs/explorer.md) that only the real Hub takes",
    "cat": "writes the Space's README (docs/explorer.md) that only the real Hub takes",
    "git": "clones this repository",
    "cd": "enters the clone",
    ".venv/bin/python -m pytest": "the upstream conformance tests, which the suite runs itself",
}

# The commands each file holds today: fewer means the extractor lost some.
MINIMUM_COMMANDS = {"README.md": 24, "docs/benchmark.md": 5, "docs/explorer.md": 2, "docs/results.md": 19}


@dataclass
class Result:
    returncode: int
    work: Path
    stdout: str
    stderr: str
    output_dir: Path | None
    hub_calls: list[dict] = field(default_factory=list)
    answered: bool = False


class Runner:
    """Runs the plans of documented commands, each once per key, making the folders they read first."""

    def __init__(self, root: Path):
        self.root, self.results, self.warm = root, {}, None
        # One thread a process: on tiny models a second one only waits at OpenMP barriers, for long on a busy machine.
        self.env = {**OFFLINE, "TOKENIZERS_PARALLELISM": "false", "GRADIO_ANALYTICS_ENABLED": "False",
                    "OMP_NUM_THREADS": "1"}  # fmt: skip

    def result(self, command: DocCommand) -> Result:
        key = plan(command).key
        if key not in self.results:
            self.results[key] = self.execute(command)
        return self.results[key]

    def producer(self, folder: str, consumer: DocCommand) -> DocCommand:
        root = "/".join(Path(folder).parts[:2])
        for command in COMMANDS:
            if command is not consumer and command.value("--output_dir") == root and command.id not in NOT_RUN:
                return command
        pytest.fail(f"{consumer.id} reads {folder}, which no documented command writes")

    def prepare(self, command: DocCommand) -> Path:
        work = self.root / command.id.replace("/", "_").replace(":", "_").replace("[", "_").replace("]", "")
        work.mkdir()
        for name in ("configs", "scripts"):
            (work / name).symlink_to(REPO_ROOT / name)
        if command.script == "scripts/translate.py" and "--file" in command.script_args:
            sentences = "Ich habe Hunger.\nWo ist der Bahnhof?\nDas ist gut.\n"
            (work / command.value("--file")).write_text(sentences, encoding="utf-8")
        for folder in inputs_of(command):
            producer = self.producer(folder, command)
            made = self.result(producer)
            assert made.returncode == 0, f"{command.id} reads {folder}, from {producer.id}, which failed"
            root = "/".join(Path(folder).parts[:2])
            if not (work / root).exists():
                shutil.copytree(made.output_dir, work / root, symlinks=True)
        self.name_checkpoints(command, work)
        return work

    @staticmethod
    def name_checkpoints(command: DocCommand, work: Path) -> None:
        """A shortened run saves `checkpoint-1` and `checkpoint-2`: give them the step numbers the docs name."""
        missing = {token for token in command.script_args if "/checkpoint-" in token and not (work / token).exists()}
        named = sorted(missing, key=lambda token: int(token.rsplit("-", 1)[1]))
        for run in sorted({Path(token).parent for token in named}):
            wanted = [token for token in named if Path(token).parent == run]
            saved = sorted((work / run).glob("checkpoint-*"), key=lambda path: int(path.name.rsplit("-", 1)[1]))
            assert len(saved) >= len(wanted), f"{command.id}: {run} holds {len(saved)} checkpoints, not {wanted}"
            for source, target in zip(saved[-len(wanted) :], wanted, strict=True):
                source.rename(work / target)

    def execute(self, command: DocCommand) -> Result:
        how = plan(command)
        work = self.prepare(command)
        (work / ".stdin").write_text(how.stdin or "", encoding="utf-8")
        stdout, stderr = work / (how.stdout or ".stdout"), work / ".stderr"
        env = {**self.env, **how.env}
        if how.kind == "script":
            if self.warm is None:
                self.warm = WarmInterpreter(self.env)
            hub_record = work / ".hub_calls.jsonl" if how.fake_hub else None
            returncode = self.warm.run(how.argv, work, how.env, work / ".stdin", stdout, stderr, hub_record)
            answered = False
        elif how.kind == "launch":
            returncode, answered = self.launch(how, work, env, stdout, stderr), False
        else:
            returncode, answered = 0, self.serve(how, work, env, stdout, stderr)
        hub_record = work / ".hub_calls.jsonl"
        hub_calls = [json.loads(line) for line in hub_record.read_text().splitlines()] if hub_record.exists() else []
        return Result(returncode, work, stdout.read_text(encoding="utf-8", errors="replace"),
                      stderr.read_text(encoding="utf-8", errors="replace"),
                      work / how.output_dir if how.output_dir else None, hub_calls, answered)  # fmt: skip

    @staticmethod
    def launch(how: Plan, work: Path, env: dict, stdout: Path, stderr: Path) -> int:
        argv = list(how.argv)
        if Path(argv[0]).name == "accelerate":
            argv[2:2] = ["--main_process_port", str(free_port())]
        else:
            argv[1:1] = ["--master_port", str(free_port())]
        with open(work / ".stdin") as stdin, open(stdout, "w") as out, open(stderr, "w") as err:
            return subprocess.run(argv, stdin=stdin, stdout=out, stderr=err, env=env, cwd=work).returncode

    @staticmethod
    def serve(how: Plan, work: Path, env: dict, stdout: Path, stderr: Path) -> bool:
        """Start the server, wait until its page answers, stop it: whether it answered."""
        port = free_port()
        argv = [sys.executable, *how.argv, "--server_port", str(port)]
        with open(stdout, "w") as out, open(stderr, "w") as err:
            server = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=work)
            try:
                deadline = time.monotonic() + 300
                while server.poll() is None and time.monotonic() < deadline:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                            return page.status == 200
                    except OSError:
                        time.sleep(0.5)
                return False
            finally:
                server.terminate()
                server.wait(timeout=30)

    def close(self) -> None:
        if self.warm is not None:
            self.warm.close()


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    runner = Runner(tmp_path_factory.mktemp("documented"))
    yield runner
    runner.close()


def test_the_docs_hold_the_commands_they_held():
    found = {doc: len({command.line for command in COMMANDS if command.doc == doc}) for doc in MINIMUM_COMMANDS}
    assert all(found[doc] >= minimum for doc, minimum in MINIMUM_COMMANDS.items()), (found, MINIMUM_COMMANDS)


def test_every_command_is_run_or_listed_with_its_reason():
    for command in COMMANDS:
        assert not leftover_placeholders(command), f"{command.id}: instantiate {leftover_placeholders(command)}"
        assert (REPO_ROOT / command.script).is_file(), f"{command.id}: no {command.script}"
    names = {command.id for command in COMMANDS} | {f"{command.doc}:{command.line}" for command in COMMANDS}
    assert set(NOT_RUN) <= names, "an entry names a command the docs no longer hold"
    unknown = {(other.doc, other.line, other.program) for other in OTHERS if other.program not in OTHER_PROGRAMS}
    assert not unknown, f"commands of programs this test neither runs nor lists in OTHER_PROGRAMS: {unknown}"


def marks(command: DocCommand) -> list:
    """A command's skip (NOT_RUN), by its id or its doc line (all its variants)."""
    for name in (command.id, f"{command.doc}:{command.line}"):
        if name in NOT_RUN:
            return [pytest.mark.skip(reason=NOT_RUN[name])]
    return []


def sentences_of(command: DocCommand, work: Path) -> list[str]:
    """The sentences a translate.py command translates: from --file, its arguments, or stdin."""
    if "--file" in command.script_args:
        return (work / command.value("--file")).read_text(encoding="utf-8").splitlines()
    arguments, positional = command.script_args, []
    index = 0
    while index < len(arguments):
        if arguments[index].startswith("--"):
            index += 2
            continue
        positional.append(arguments[index])
        index += 1
    return positional or (command.stdin or "").splitlines()


def check_outputs(command: DocCommand, result: Result) -> None:
    """What each script leaves, where it is cheap to look."""
    script, output = command.script, result.output_dir
    if script in ("scripts/train.py", "scripts/train_accelerate.py"):
        for name in ("model.safetensors", "config.json", "test_results.json"):
            assert (output / name).is_file(), f"{command.id}: no {name} in {output}"
    elif script == "scripts/reproduce.py":
        assert (output / "length_comparison.json").is_file()
    elif script == "scripts/average_checkpoints.py":
        assert (output / "model.safetensors").is_file()
    elif script == "scripts/tune_decoding.py":
        assert "| beams | length penalty |" in result.stdout
    elif script == "scripts/benchmark.py":
        assert (output / "benchmark.json").is_file()
    elif script == "scripts/translate.py":
        translations = result.stdout.splitlines()
        assert len(translations) == len(sentences_of(command, result.work)), translations
        if command.value("--plot-attention"):
            assert (result.work / command.value("--plot-attention")).is_file()
    elif script == "scripts/explore.py":
        assert result.answered, f"{command.id}: the page never answered"
    if script == "scripts/push_to_hub.py" and "--dry-run" in command.script_args:
        assert (result.work / command.value("--dry-run").lstrip("/") / "README.md").is_file()
    elif plan(command).fake_hub:
        uploads = [call for call in result.hub_calls if call["call"] == "upload_folder"]
        repo_id = command.value("--repo-id") or command.value("--hub_model_id")
        assert uploads and {call["repo_id"] for call in uploads} == {repo_id}, result.hub_calls
        assert {"README.md", "model.safetensors", "config.json"} <= set(uploads[-1]["files"]), uploads[-1]


@pytest.mark.parametrize(
    "command", [pytest.param(command, id=command.id, marks=marks(command)) for command in COMMANDS]
)
def test_documented_command_runs(command, runner):
    result = runner.result(command)
    assert result.returncode == 0, (
        f"{command.id}: {' '.join(command.argv)} exited with {result.returncode}\n{result.stderr[-4000:]}"
    )
    check_outputs(command, result)
