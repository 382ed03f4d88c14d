"""The commands of README.md and docs/*.md: found in their fenced shell blocks, shortened, and run.

`extract_commands()` reads every ```bash block (and the `$ ` lines of plain blocks): it joins `\\` continuations,
drops `# comments`, skips here-documents, splits `;` / `&&` lists, and keeps `VAR=value` prefixes, `echo ... |` stdin
and `> file` redirects. Each documented `python scripts/...`, `accelerate launch ...` or `torchrun ...` becomes one
`DocCommand` per instance of its placeholders (`--config ...`, `[a | b]`, `[--flag value]`, `[changes]`, `TYPE`);
every other program is returned as an `OtherCommand` for the test's list of programs it does not run.

`shorten()` keeps each command's script and flags and appends a step cap and tiny sizes (the last value of a flag
wins, and a size is only ever lowered). `WarmInterpreter` runs `python scripts/X.py ...` commands in a child forked
from one interpreter that has already imported the package, so that a command costs its own work, not the imports.
"""

import atexit
import itertools
import json
import os
import re
import runpy
import shlex
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
PYTHONS = ("python", "python3", ".venv/bin/python")
LAUNCHERS = ("accelerate", "torchrun")
# A placeholder the docs leave to the reader, instantiated here: doc line -> {variant name: {text: replacement}}.
# The variants are the ones a later command reads back (results.md's `--checkpoints NAME=outputs/...`).
PLACEHOLDERS = {
    "docs/results.md:344": {name: {"TYPE": name} for name in ("none", "bahdanau", "scaled_dot")},
    "docs/results.md:381": {
        f"{stack}{suffix}": {
            "[configs/hybrid.yaml | configs/transformer.yaml]": f"configs/{stack}.yaml",
            "TYPE": f"{stack}{suffix}",
            "[--attention_type scaled_dot]": option,
        }
        for stack in ("hybrid", "transformer")
        for suffix, option in (("", ""), ("_scaled_dot", "--attention_type scaled_dot"))
    },
}
# `--config ...` in the docs: the preset every other one applies over.
ELLIPSIS_CONFIG = "configs/base.yaml"


@dataclass
class DocCommand:
    doc: str  # "README.md", "docs/results.md"
    line: int  # where the command starts
    variant: str  # "" or the placeholder instance
    env: dict[str, str]
    argv: list[str]  # from the program on, as written: ["python", "scripts/train.py", "--config", ...]
    stdin: str | None = None  # what `echo ... |` feeds it
    stdout: str | None = None  # the file of `> file`

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}" + (f"[{self.variant}]" if self.variant else "")

    @property
    def launcher(self) -> str:
        return self.argv[0] if self.argv[0] in LAUNCHERS else "python"

    @property
    def script(self) -> str:
        return next(token for token in self.argv if token.startswith("scripts/"))

    @property
    def script_args(self) -> list[str]:
        return self.argv[self.argv.index(self.script) + 1 :]

    @property
    def launcher_args(self) -> list[str]:
        return self.argv[1 : self.argv.index(self.script)] if self.launcher != "python" else []

    def value(self, flag: str) -> str | None:
        """The last value of `--flag` among the script's arguments, else the value the `--config` presets give."""
        arguments = self.script_args
        given = [arguments[i + 1] for i, token in enumerate(arguments[:-1]) if token == flag]
        if given:
            return given[-1]
        setting = None
        for preset in self.presets():
            setting = preset.get(flag.removeprefix("--"), setting)
        return None if setting is None else str(setting)

    def presets(self) -> list[dict]:
        arguments = self.script_args
        if "--config" not in arguments:
            return []
        files = list(itertools.takewhile(lambda token: not token.startswith("--"),
                                         arguments[arguments.index("--config") + 1 :]))  # fmt: skip
        return [yaml.safe_load((REPO_ROOT / name).read_text()) or {} for name in files]


@dataclass
class OtherCommand:
    doc: str
    line: int
    program: str  # "bash", "hf", "python -m pytest", ...
    text: str


def strip_comment(line: str) -> str:
    """`line` without its trailing `# comment` (a `#` outside quotes, at the start or after a blank)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def logical_lines(path: Path):
    """(line number, text) of each shell command line of the fenced blocks in `path`, continuations joined."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fence, heredoc, pending, start = None, None, "", 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if heredoc is not None:
            heredoc = None if stripped == heredoc else heredoc
            continue
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip()
            continue
        if fence not in ("bash", "sh", "shell", "console", ""):
            continue
        if fence in ("console", "") and not pending:
            if not stripped.startswith("$ "):
                continue
            raw = stripped[2:]
        if not pending:
            start = number
        text = strip_comment(raw)
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        command, pending = (pending + text).strip(), ""
        if command:
            marker = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", command)
            heredoc = marker.group(1) if marker else None
            yield start, command


def instances(command_id: str, text: str) -> list[tuple[str, str]]:
    """(variant name, text) for each instance of the placeholders in `text`: a table entry where the docs name the
    instances elsewhere, else `[a | b]` gives one variant per alternative, `[--flag value]` is taken, `[changes]`
    (a word, no flag) is dropped, and `--config ...` is the base preset."""
    if command_id in PLACEHOLDERS:
        named = []
        for name, replacements in PLACEHOLDERS[command_id].items():
            instance = text
            for placeholder, replacement in replacements.items():
                assert placeholder in instance, f"{command_id}: no {placeholder!r} in {text!r} any more"
                instance = instance.replace(placeholder, replacement)
            named += [(name, instance) for _, instance in instances("", instance)]
        return named
    text = re.sub(r"--config \.\.\.(?=\s|$)", f"--config {ELLIPSIS_CONFIG}", text)
    brackets = list(re.finditer(r"\[([^\[\]]*)\]", text))
    choices = []
    for bracket in brackets:
        inside = bracket.group(1).strip()
        if "|" in inside:
            choices.append([option.strip() for option in inside.split("|")])
        elif inside.startswith("--"):
            choices.append([inside])
        else:
            choices.append([""])
    results = []
    for picked in itertools.product(*choices):
        instance, offset = text, 0
        for bracket, option in zip(brackets, picked, strict=True):
            begin, end = bracket.start() + offset, bracket.end() + offset
            instance = instance[:begin] + option + instance[end:]
            offset += len(option) - (bracket.end() - bracket.start())
        several = len([options for options in choices if len(options) > 1]) > 0
        name = " ".join(option.lstrip("-").replace(" ", "=") for option, options in zip(picked, choices, strict=True)
                        if len(options) > 1) if several else ""  # fmt: skip
        results.append((name, " ".join(instance.split())))
    return results


def split_segments(text: str) -> list[list[list[str]]]:
    """Shell words of `text` as a list of `;` / `&&` / `||` segments, each a list of `|` pipeline parts."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments, parts, words = [], [], []
    for token in lexer:
        if token in (";", "&&", "||", "&"):
            segments.append([*parts, words])
            parts, words = [], []
        elif token == "|":
            parts.append(words)
            words = []
        else:
            words.append(token)
    segments.append([*parts, words])
    return [[part for part in segment if part] for segment in segments if any(segment)]


def program_of(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """The `VAR=value` prefixes of a command and its words from the program on (a leading `time` dropped)."""
    env = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, _, value = words[0].partition("=")
        env[name] = value
        words = words[1:]
    if words[:1] == ["time"]:
        words = words[1:]
    return env, words


def is_documented_command(words: list[str]) -> bool:
    if words[0] in LAUNCHERS:
        return words[0] == "torchrun" or words[1:2] == ["launch"]
    return words[0] in PYTHONS and len(words) > 1 and words[1].startswith("scripts/")


def extract_commands(doc_files=DOC_FILES) -> tuple[list[DocCommand], list[OtherCommand]]:
    commands, others = [], []
    for path in doc_files:
        doc = path.relative_to(REPO_ROOT).as_posix()
        for line, text in logical_lines(path):
            for variant, instance in instances(f"{doc}:{line}", text):
                for segment in split_segments(instance):
                    env, words = program_of(segment[-1])
                    if not is_documented_command(words):
                        program = " ".join(words[:3]) if words[1:3] == ["-m", "pytest"] else words[0]
                        others.append(OtherCommand(doc, line, program, text))
                        continue
                    stdin = None
                    for producer in segment[:-1]:
                        assert producer[0] == "echo", f"{doc}:{line}: only `echo ... |` feeds a command here"
                        stdin = " ".join(producer[1:]) + "\n"
                    stdout = None
                    if ">" in words:
                        at = words.index(">")
                        stdout, words = words[at + 1], words[:at] + words[at + 2 :]
                    commands.append(DocCommand(doc, line, variant, env, words, stdin, stdout))
    return commands, others


def leftover_placeholders(command: DocCommand) -> list[str]:
    """Words of `command` that still look like a placeholder: brackets, `...`, or a capitalised name in a flag or
    path (`TYPE`, `RUN_DIR`)."""
    return [word for word in command.argv if re.search(r"[\[\]]|\.\.\.|(^|[/_=])[A-Z]{3,}(?=$|[/_.])", word)]


# ---------------------------------------------------------------------------------------------------------------
# Shortening: the documented flags, then these; for a size the smaller of the two.

TRAINING = {
    "--max_steps": 2, "--max_train_samples": 64, "--validation_size": 16, "--test_size": 16,
    "--synthetic_size": 64, "--ding_lexicon_size": 64, "--hidden_size": 64, "--vocab_size": 200,
    "--intermediate_size": 32, "--eval_steps": 1, "--save_steps": 1, "--logging_steps": 1, "--plot_examples": 0,
    "--generation_num_beams": 2, "--generation_max_length": 8,
}  # fmt: skip
TRAINING_SETTINGS = {
    # Compiling the fused kernels costs more than two steps of a tiny model; the eager path computes the same.
    "--compile_additive_attention": "false",
    "--report_to": "none",
    "--disable_tqdm": "true",
}
# Sizes only lowered where the command or its presets set them: unset, they are off (0) or follow another size.
LOWER_ONLY = {"--intermediate_size", "--ding_lexicon_size", "--train_rounds", "--profile_operators"}
# A time budget, where the command or its presets have one: small, yet far above two steps.
BUDGET_MINUTES = 5
BUDGETED = ("scripts/train.py", "scripts/train_accelerate.py", "scripts/reproduce.py")
SCRIPT_SIZES = {
    "scripts/train.py": TRAINING,
    "scripts/train_accelerate.py": TRAINING,
    "scripts/reproduce.py": {**TRAINING, "--min_bucket_size": 1, "--heatmap_count": 1},
    "scripts/tune_decoding.py": {"--validation_size": 16, "--test_size": 16, "--max_train_samples": 64},
    "scripts/benchmark.py": {
        "--hidden_size": 16,
        "--vocab_size": 200,
        "--train_batch_size": 4,
        "--train_lengths": 8,
        "--new_tokens": 4,
        "--repeats": 1,
        "--warmup": 1,
        "--train_rounds": 2,
        "--generation_batch_size": 2,
        "--generation_source_length": 8,
        "--translation_batch_sizes": 8,
        "--profile_operators": 2,
    },  # fmt: skip
}
SCRIPT_SETTINGS = {
    "scripts/train.py": TRAINING_SETTINGS,
    "scripts/train_accelerate.py": TRAINING_SETTINGS,
    # One length bucket: a 16-sentence test split leaves some of the documented ones empty.
    "scripts/reproduce.py": {**TRAINING_SETTINGS, "--bucket_edges": "1"},
    # The first-step row times inductor compiling the fused kernels from a cold cache, and the memory row runs each
    # model again in a process of its own: these cost more than the rest of a tiny grid.
    "scripts/benchmark.py": {"--first_step": "false", "--memory": "false"},
}


def shortened_arguments(command: DocCommand) -> list[str]:
    """The script's documented arguments, each shortening flag replacing its documented value(s)."""
    replaced = {}
    for flag, small in SCRIPT_SIZES.get(command.script, {}).items():
        documented = command.value(flag)
        if documented is None and flag in LOWER_ONLY:
            continue
        if flag in ("--train_lengths", "--new_tokens") and command.value("--translation_model"):
            continue  # they also size the MarianMT peer's positions, which must hold the checkpoint's sources
        if documented is not None:
            small = min(small, max(int(value) for value in re.findall(r"-?\d+", documented)))
        replaced[flag] = str(small)
    replaced.update(SCRIPT_SETTINGS.get(command.script, {}))
    if command.script in BUDGETED and command.value("--max_train_minutes") is not None:
        replaced["--max_train_minutes"] = str(BUDGET_MINUTES)
    arguments, dropping = [], False
    for token in command.script_args:
        if token.startswith("--"):
            dropping = token in replaced
        if not dropping:
            arguments.append(token)
    for flag, value in replaced.items():
        arguments += [flag, value]
    return arguments


CPU_PROCESSES = 2  # a multi-GPU launch runs as this many gloo processes on the CPU (NOTES: ACCELERATE_USE_CPU=1)
DEFAULT_OUTPUT_DIRS = {"scripts/benchmark.py": "outputs/benchmark"}


@dataclass
class Plan:
    """How the test runs a documented command: `kind` is "script" (in the warm interpreter), "launch" (a launcher
    starting several processes) or "server" (started, asked for its page, stopped)."""

    kind: str
    argv: list[str]  # "script": [script, *arguments]; "launch": the launcher's command line, without a port
    env: dict[str, str]
    stdin: str | None
    stdout: str | None
    output_dir: str | None  # relative to the command's folder
    fake_hub: bool = False  # the Hub's write calls are recorded, not made

    @property
    def key(self) -> tuple:
        """Commands with the same key are one run: everything but the output folder's name."""
        argv = list(self.argv)
        if "--output_dir" in argv:
            del argv[argv.index("--output_dir") : argv.index("--output_dir") + 2]
        return (self.kind, tuple(argv), tuple(sorted(self.env.items())), self.stdin, self.stdout, self.fake_hub)


def cpu_launch(command: DocCommand) -> tuple[list[str], dict[str, str]]:
    """The launcher's arguments of `command` on this machine's CPUs: GPU launches become gloo processes, at most
    `CPU_PROCESSES` of them."""
    arguments, env = list(command.launcher_args), {}
    if command.launcher == "accelerate":
        config = arguments[arguments.index("--config_file") + 1] if "--config_file" in arguments else None
        if "--multi_gpu" in arguments or (config and yaml.safe_load((REPO_ROOT / config).read_text()).get(
                "distributed_type") == "MULTI_GPU"):  # fmt: skip
            env["ACCELERATE_USE_CPU"] = "1"
        processes = "--num_processes"
    else:
        processes = "--nproc_per_node"
    if processes in arguments:
        at = arguments.index(processes) + 1
        arguments[at] = str(min(int(arguments[at]), CPU_PROCESSES))
    return arguments, env


def plan(command: DocCommand) -> Plan:
    arguments = shortened_arguments(command)
    env = dict(command.env)
    if command.launcher != "python":
        launcher_arguments, cpu_env = cpu_launch(command)
        env.update(cpu_env)
        if "--use_cpu" in arguments:  # a GPU run's flag: its processes train on the CPU here
            arguments[arguments.index("--use_cpu") + 1] = "true"
        # The launcher's own command, installed beside this interpreter.
        argv = [str(Path(sys.executable).parent / command.launcher), *launcher_arguments, command.script, *arguments]
        kind = "launch"
    else:
        argv, kind = [command.script, *arguments], "server" if command.script == "scripts/explore.py" else "script"
    fake_hub = command.value("--push_to_hub") == "true" or (
        command.script == "scripts/push_to_hub.py" and "--dry-run" not in arguments
    )
    if fake_hub:
        env.setdefault("HF_TOKEN", "hf_not_a_real_token")  # the README's `export HF_TOKEN=hf_...`
    # An absolute path outside the checkout (`--dry-run /tmp/up`) goes into the command's own folder.
    argv = [token[1:] if token.startswith("/tmp/") else token for token in argv]
    output_dir = command.value("--output_dir") or DEFAULT_OUTPUT_DIRS.get(command.script)
    output_dir = output_dir if command.script in WRITERS else None
    return Plan(kind, argv, env, command.stdin, command.stdout, output_dir, fake_hub)


# The scripts that write into their --output_dir (tune_decoding.py parses one from the presets, unused).
WRITERS = ("scripts/train.py", "scripts/train_accelerate.py", "scripts/reproduce.py", "scripts/average_checkpoints.py",
           "scripts/benchmark.py")  # fmt: skip


def inputs_of(command: DocCommand) -> list[str]:
    """The `outputs/...` folders a command reads: the paths it names besides its own output folder, and that folder
    when it resumes from it."""
    own = command.value("--output_dir") if command.script in WRITERS else None
    named = [re.sub(r"^[\w-]+=", "", token) for token in command.script_args]
    folders = [token for token in named if token.startswith("outputs/") and token != own]
    if command.value("--resume_from_checkpoint") == "true":
        folders.append(own)
    return list(dict.fromkeys(folders))


# ---------------------------------------------------------------------------------------------------------------
# The warm interpreter: `python tests/documented_commands.py --serve` reads one JSON request a line and answers with
# the exit status of a child forked to run it.

PRELOAD = (
    "torch", "transformers", "datasets", "evaluate", "accelerate", "sacrebleu", "matplotlib.pyplot",
    "hf_attention", "hf_attention.training_trainer", "hf_attention.training_accelerate", "hf_attention.comparison",
    "hf_attention.benchmarking", "hf_attention.hub", "hf_attention.checkpoints", "hf_attention.evaluation",
    "hf_attention.translation", "hf_attention.checkpoint_loading", "hf_attention.data",
)  # fmt: skip


def fake_hub(record: str) -> None:
    """Record the Hub client's writes in the file `record` instead of making them, as tests/test_hub.py does: no
    server here serves the upload API."""
    from concurrent.futures import Future

    from huggingface_hub import CommitInfo, HfApi, RepoUrl

    def log(call: str, **kwargs) -> None:
        with open(record, "a", encoding="utf-8") as calls:
            calls.write(json.dumps({"call": call, **kwargs}, default=str) + "\n")

    def create_repo(self, repo_id, **kwargs):
        log("create_repo", repo_id=repo_id)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_branch(self, repo_id, **kwargs):
        log("create_branch", repo_id=repo_id, branch=kwargs.get("branch"))

    def upload_folder(self, *, repo_id, folder_path, run_as_future=False, **kwargs):
        folder = Path(folder_path)
        files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
        log("upload_folder", repo_id=repo_id, files=files)
        info = CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/{'0' * 40}", commit_message="",
                          commit_description="", oid="0" * 40)  # fmt: skip
        if not run_as_future:
            return info
        future = Future()
        future.set_result(info)
        return future

    HfApi.create_repo, HfApi.create_branch, HfApi.upload_folder = create_repo, create_branch, upload_folder


def _child(request: dict) -> None:
    """Run one script as `python SCRIPT ARGS` would, in this forked process; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        for fd, (path, flags) in enumerate(
            [
                (request["stdin"], os.O_RDONLY),
                *[(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC) for name in ("stdout", "stderr")],
            ]  # fmt: skip
        ):
            opened = os.open(path, flags, 0o644)
            os.dup2(opened, fd)
            os.close(opened)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115  (the parent's reader has its own buffer)
        if "OMP_NUM_THREADS" in request["env"]:
            import torch

            # OpenMP read the variable when torch loaded, in the parent: apply it as the fresh process would.
            torch.set_num_threads(int(request["env"]["OMP_NUM_THREADS"]))
        if request.get("hub_record"):
            fake_hub(request["hub_record"])
        script = request["argv"][0]
        sys.argv = list(request["argv"])
        sys.path[0] = str(Path(script).parent)
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001  (whatever the script raised is its failure, reported as Python would)
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def parse_corpus_once() -> None:
    """Parse the default corpus file here, once: each forked command gets its own copy of the parsed pairs."""
    data = sys.modules.get("hf_attention.data")
    read = getattr(data, "read_ding_corpus", None)
    if read is None or not Path(getattr(data, "DING_PATH", "")).is_file():
        return
    pairs = read()

    def read_ding_corpus(path=data.DING_PATH, *args, **kwargs):
        return (
            list(pairs)
            if Path(path) == Path(data.DING_PATH) and not args and not kwargs
            else read(path, *args, **kwargs)
        )

    data.read_ding_corpus = read_ding_corpus


def serve() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # a module another change renamed: its command then imports what it needs
            pass
    parse_corpus_once()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    while line := sys.stdin.readline():
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


class WarmInterpreter:
    """A client of `serve()` in a subprocess: `run(...)` returns the exit status of one script run."""

    def __init__(self, env: dict[str, str]):
        import subprocess

        self.process = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)  # fmt: skip
        ready = self.process.stdout.readline()
        assert ready.startswith('{"ready"'), f"the warm interpreter did not start: {ready!r}"

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], stdin: Path, stdout: Path, stderr: Path,
            hub_record: Path | None = None) -> int:  # fmt: skip
        request = {"argv": argv, "cwd": str(cwd), "env": env, "stdin": str(stdin), "stdout": str(stdout),
                   "stderr": str(stderr), "hub_record": str(hub_record) if hub_record else None}  # fmt: skip
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, "the warm interpreter died"
        return json.loads(answer)["returncode"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
