"""Speed and memory of every attention type against a transformers peer (MarianMT), in one process and one run.

`run_benchmark` measures, for each model, with random token ids (speed does not depend on what the ids mean):
- training: target tokens per second of forward + backward + AdamW step, at source = target length 16, 64, 256,
  a fixed batch, after warm-up steps, the median of several timed steps;
- generation: new tokens per second (over the batch) of greedy and beam search, with and without the cache, with the
  output length forced by `min_new_tokens`;
- peak memory of a training step: on CUDA `torch.cuda.max_memory_allocated`; on the CPU the rise of the resident set
  (VmHWM - VmRSS, Linux) during one step, in a fresh spawned process so that memory freed by earlier measurements
  cannot hide it.
With `translation_model`, `time_test_translation` also times translating a trained model's test sentences (float and
int8) beside a MarianMT of its size on the same batches.
The peer is a `MarianMTModel` whose feed-forward width is chosen so that its parameter count is within 10% of ours.
"""

import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import transformers
from transformers import MarianConfig, MarianMTModel

from .checkpoint_loading import load_checkpoint
from .configuration_seq2seq_attention import ATTENTION_TYPES, Seq2SeqAttentionConfig
from .evaluation import corpus_scores
from .modeling_seq2seq_attention import Seq2SeqAttentionForConditionalGeneration
from .tokenization import BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS
from .translation import batched, quantize_int8, translate

# The model name of `bahdanau` with `compile_additive_attention=False` (always eager), measured beside the attention
# types (whose `bahdanau` is the default: fused kernels where they gain).
EAGER_BAHDANAU = "bahdanau_eager"
# The ids the package's tokenizer gives its special tokens; random ids start after them so no sequence ends early.
PAD, BOS, EOS = (SPECIAL_TOKENS.index(token) for token in (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN))
FIRST_ORDINARY_ID = len(SPECIAL_TOKENS)


@dataclass
class BenchmarkArguments:
    """What to measure; `--quick` shrinks the grid."""

    output_dir: str = field(default="outputs/benchmark", metadata={"help": "benchmark.json and benchmark.md go here"})
    quick: bool = field(default=False, metadata={"help": "lengths 16/64, 32 new tokens, fewer repeats"})
    device: str = field(default="cpu", metadata={"help": "cpu or cuda"})
    dtype: str = field(default="bfloat16", metadata={"help": "float32, or bfloat16 / float16 autocast"})
    attention_types: list[str] = field(default_factory=lambda: list(ATTENTION_TYPES))
    include_marian: bool = field(default=True, metadata={"help": "the MarianMT peer"})
    vocab_size: int = 4000
    hidden_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    attn_implementation: str = field(default="sdpa", metadata={"help": "sdpa or eager (before/after comparisons)"})
    attention_chunk_size: int = field(default=2**24, metadata={"help": "bahdanau's chunk bound (before/after)"})
    eager_bahdanau: bool = field(
        default=True, metadata={"help": "also measure bahdanau with compile_additive_attention=False (eager)"}
    )
    train_batch_size: int = 32
    train_lengths: list[int] = field(default_factory=lambda: [16, 64, 256])
    generation_batch_size: int = 8
    generation_source_length: int = 32
    new_tokens: list[int] = field(default_factory=lambda: [32, 256])
    num_beams: list[int] = field(default_factory=lambda: [1, 5])
    warmup: int = 2
    repeats: int = 5
    train_rounds: int = field(
        default=1,
        metadata={"help": "time the training grid this many times, every model at every length in each round, and "
                  "report the median per cell: on a machine whose speed drifts, models are then compared over the "
                  "same stretches of time"},
    )  # fmt: skip
    memory: bool = field(default=True, metadata={"help": "measure peak training memory"})
    first_step: bool = field(
        default=True, metadata={"help": "first-step latency of the default bahdanau, kernel cache cold and warm"}
    )
    translation_model: str | None = field(
        default=None,
        metadata={"help": "a trained model folder with test_translations.jsonl (the main job's outputs/demo): time "
                  "translating its test sources, float and int8, and a matched MarianMT on the same batches"},
    )  # fmt: skip
    translation_batch_sizes: list[int] = field(default_factory=lambda: [32, 100])
    translation_only: bool = field(default=False, metadata={"help": "only the rows of --translation_model"})
    threads: int | None = field(default=None, metadata={"help": "torch threads; default: torch's choice"})
    profile_operators: int = field(
        default=0,
        metadata={"help": "with N > 0, profile each model's training steps (torch.profiler) and report the N "
                  "operators that take the most time, at each training length"},
    )  # fmt: skip
    seed: int = 0

    def __post_init__(self):
        if self.quick:
            self.train_lengths, self.new_tokens, self.repeats = [16, 64], [32], 3
        unknown = sorted(set(self.attention_types) - set(ATTENTION_TYPES))
        if unknown:
            raise ValueError(f"--attention_types: unknown {unknown}; allowed: {list(ATTENTION_TYPES)}")
        if self.train_rounds < 1:
            raise ValueError(f"--train_rounds {self.train_rounds}: allowed a whole number of at least 1")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"--dtype {self.dtype!r}: allowed float32, bfloat16, float16")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"--device {self.device!r}: allowed cpu, cuda")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
        if self.translation_only and self.translation_model is None:
            raise ValueError("--translation_only true needs --translation_model (a trained model folder)")
        if self.translation_model is not None:
            translations = Path(self.translation_model) / "test_translations.jsonl"
            if not translations.is_file():
                raise FileNotFoundError(f"--translation_model {self.translation_model}: no {translations.name} there "
                                        "(the folder of a finished training run has one)")  # fmt: skip


def build_benchmark_model(args: BenchmarkArguments, model_name: str):
    """`model_name` is an attention type (this package, default config), `"bahdanau_eager"` (with
    `compile_additive_attention=False`) or `"marian"` (sized like our `bahdanau`)."""
    if model_name == "marian":
        with torch.device("meta"):  # only its size is needed
            target_parameters = build_benchmark_model(args, "bahdanau").num_parameters()
        return build_marian(args, target_parameters)
    config = Seq2SeqAttentionConfig(
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
        attention_type="bahdanau" if model_name == EAGER_BAHDANAU else model_name,
        attention_chunk_size=args.attention_chunk_size,
        compile_additive_attention=False if model_name == EAGER_BAHDANAU else None,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        decoder_start_token_id=BOS,
    )
    config._attn_implementation = args.attn_implementation
    return Seq2SeqAttentionForConditionalGeneration(config)


def build_marian(args: BenchmarkArguments, target_parameters: int) -> MarianMTModel:
    """A MarianMT of our width, depth and heads whose feed-forward width brings its size closest to ours."""

    def config(ffn_dim: int) -> MarianConfig:
        return MarianConfig(
            vocab_size=args.vocab_size,
            decoder_vocab_size=args.vocab_size,
            d_model=args.hidden_size,
            encoder_layers=args.num_hidden_layers,
            decoder_layers=args.num_hidden_layers,
            encoder_attention_heads=args.num_attention_heads,
            decoder_attention_heads=args.num_attention_heads,
            encoder_ffn_dim=ffn_dim,
            decoder_ffn_dim=ffn_dim,
            max_position_embeddings=max(args.train_lengths + args.new_tokens) + 8,
            pad_token_id=PAD,
            eos_token_id=EOS,
            decoder_start_token_id=BOS,
            forced_eos_token_id=None,
            attn_implementation=args.attn_implementation,
        )

    def parameters(ffn_dim: int) -> int:
        with torch.device("meta"):
            return MarianMTModel(config(ffn_dim)).num_parameters()

    best = min(
        range(step := max(8, args.hidden_size // 4), 8 * args.hidden_size + 1, step),
        key=lambda ffn_dim: abs(parameters(ffn_dim) - target_parameters),
    )
    model = MarianMTModel(config(best))
    if abs(model.num_parameters() - target_parameters) > 0.1 * target_parameters:
        raise ValueError(f"no MarianMT within 10% of {target_parameters} parameters (closest: ffn_dim {best})")
    return model


def _autocast(args: BenchmarkArguments):
    if args.dtype == "float32":
        return nullcontext()
    return torch.autocast(args.device, dtype=getattr(torch, args.dtype))


def _batch(args: BenchmarkArguments, batch_size: int, length: int, generator: torch.Generator) -> dict:
    input_ids = torch.randint(FIRST_ORDINARY_ID, args.vocab_size, (batch_size, length), generator=generator)
    labels = torch.randint(FIRST_ORDINARY_ID, args.vocab_size, (batch_size, length), generator=generator)
    labels[:, -1] = EOS
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    return {name: tensor.to(args.device) for name, tensor in batch.items()}


def _synchronize(args: BenchmarkArguments) -> None:
    if args.device == "cuda":
        torch.cuda.synchronize()


def _training_step(model, optimizer, batch, args: BenchmarkArguments) -> None:
    with _autocast(args):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _warmed_up_training(model, args: BenchmarkArguments, length: int) -> tuple[torch.optim.Optimizer, dict]:
    """The optimizer and the batch (source = target length `length`) of timed training steps, after `args.warmup`
    untimed ones (compilation, allocator and caches settle there)."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = _batch(args, args.train_batch_size, length, torch.Generator().manual_seed(args.seed))
    for _ in range(args.warmup):
        _training_step(model, optimizer, batch, args)
    return optimizer, batch


def time_training(model, args: BenchmarkArguments, length: int) -> float:
    """Target tokens per second of a training step at source = target length `length` (median of repeats)."""
    optimizer, batch = _warmed_up_training(model, args, length)
    seconds = []
    # Long sequences: fewer timed steps (each is slow on a CPU, and their spread is small).
    for _ in range(args.repeats if length < 256 else min(args.repeats, 3)):
        _synchronize(args)
        start = time.perf_counter()
        _training_step(model, optimizer, batch, args)
        _synchronize(args)
        seconds.append(time.perf_counter() - start)
    return args.train_batch_size * length / statistics.median(seconds)


def time_training_rounds(models: dict, args: BenchmarkArguments) -> dict[tuple[str, int], list[float]]:
    """`time_training` of every model (name -> model) at every length, `args.train_rounds` times over, each round
    going through all models and lengths: (name, length) -> tokens/s of each round."""
    speeds = {}
    for _ in range(args.train_rounds):
        for length in args.train_lengths:
            for model_name, model in models.items():
                speeds.setdefault((model_name, length), []).append(time_training(model, args, length))
    return speeds


# Inductor's compiled graphs appear under names with a hash; in this package only the fused additive kernels compile.
COMPILED_GRAPH_PREFIX = "## Call CompiledFxGraph"
COMPILED_GRAPH_LABEL = "fused additive kernels (compiled)"


def profile_training(model, args: BenchmarkArguments, length: int) -> dict:
    """Where a training step's time goes: `torch.profiler` over `args.repeats` steps at source = target length
    `length` (after warm-up), the `args.profile_operators` operators with the most self time (CPU time on the CPU,
    device time on CUDA), each with its milliseconds per step and its share of the profiled time; every compiled graph
    counts as one operator, `COMPILED_GRAPH_LABEL`."""
    optimizer, batch = _warmed_up_training(model, args, length)
    on_cuda = args.device == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if on_cuda else [])
    with torch.profiler.profile(activities=activities) as profiler:
        for _ in range(args.repeats):
            _training_step(model, optimizer, batch, args)
        _synchronize(args)
    self_time = {}
    for event in profiler.key_averages():
        name = COMPILED_GRAPH_LABEL if event.key.startswith(COMPILED_GRAPH_PREFIX) else event.key
        microseconds = event.self_device_time_total if on_cuda else event.self_cpu_time_total
        self_time[name] = self_time.get(name, 0.0) + microseconds
    total = sum(self_time.values())
    ranked = sorted(self_time.items(), key=lambda item: item[1], reverse=True)[: args.profile_operators]
    return {
        "step_ms": round(total / 1000 / args.repeats, 1),
        "operators": [
            {"operator": name, "ms_per_step": round(time / 1000 / args.repeats, 1), "share": round(time / total, 3)}
            for name, time in ranked
        ],
    }


def time_generation(model, args: BenchmarkArguments, new_tokens: int, num_beams: int, use_cache: bool) -> float:
    """New tokens per second over the batch (sequences x new tokens / time), the length forced to `new_tokens`."""
    model.eval()
    batch = _batch(args, args.generation_batch_size, args.generation_source_length, torch.Generator().manual_seed(1))
    kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "num_beams": num_beams,
              "do_sample": False, "use_cache": use_cache, "max_new_tokens": new_tokens,
              "min_new_tokens": new_tokens}  # fmt: skip
    seconds = []
    repeats = 1 if new_tokens >= 128 and not use_cache else max(1, args.repeats // 2)
    with torch.no_grad(), _autocast(args):
        model.generate(**{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        for _ in range(repeats):
            _synchronize(args)
            start = time.perf_counter()
            output = model.generate(**kwargs)
            _synchronize(args)
            seconds.append(time.perf_counter() - start)
    generated = output.shape[1] - 1  # minus the decoder start token
    if generated != new_tokens:
        raise RuntimeError(f"generate made {generated} tokens, {new_tokens} forced")
    return args.generation_batch_size * new_tokens / statistics.median(seconds)


def _resident_kib(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field_name}")


def _cpu_peak_memory_worker(args_dict: dict, model_name: str, length: int, queue) -> None:
    """In a fresh process: build the model, warm up, then the resident-set rise of one training step, in MiB."""
    args = BenchmarkArguments(**{**args_dict, "quick": False})
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_benchmark_model(args, model_name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = _batch(args, args.train_batch_size, length, torch.Generator().manual_seed(args.seed))
    _training_step(model, optimizer, batch, args)  # optimizer states and allocator pools exist from here on
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current resident set
    before = _resident_kib("VmRSS")
    _training_step(model, optimizer, batch, args)
    queue.put((_resident_kib("VmHWM") - before) / 1024)


def peak_training_memory_mb(model, args: BenchmarkArguments, model_name: str, length: int) -> float:
    """The memory one training step at `length` needs on top of the model: CUDA's peak allocation, or on the CPU
    the rise of the resident set in a freshly spawned process."""
    if args.device == "cuda":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batch = _batch(args, args.train_batch_size, length, torch.Generator().manual_seed(args.seed))
        _training_step(model, optimizer, batch, args)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        _training_step(model, optimizer, batch, args)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    # glibc's default allocator: with GLIBC_TUNABLES keeping freed blocks (scripts/main.sh), the first step's heap
    # stays resident and the measured step would reuse it, showing almost no rise.
    with _environment_variable("GLIBC_TUNABLES", None):
        worker = context.Process(target=_cpu_peak_memory_worker, args=(asdict(args), model_name, length, queue))
        worker.start()
    peak = queue.get()
    worker.join()
    return peak


@contextmanager
def _environment_variable(name: str, value: str | None):
    """Set (or, with None, remove) an environment variable for the processes spawned inside the block."""
    previous = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _first_step_worker(args_dict: dict, length: int, queue) -> None:
    """In a fresh process: seconds of the default `bahdanau`'s first training step (compiling or loading kernels)."""
    args = BenchmarkArguments(**{**args_dict, "quick": False})
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_benchmark_model(args, "bahdanau").to(args.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = _batch(args, args.train_batch_size, length, torch.Generator().manual_seed(args.seed))
    start = time.perf_counter()
    _training_step(model, optimizer, batch, args)
    _synchronize(args)
    queue.put(time.perf_counter() - start)


def first_step_seconds(args: BenchmarkArguments, length: int) -> dict[str, float]:
    """The first training step of a new process, with inductor's kernel cache empty (`cold`: the kernels compile) and
    then filled by that run (`warm`: a later run on the same machine), each in a freshly spawned process."""
    context = multiprocessing.get_context("spawn")
    seconds = {}
    with tempfile.TemporaryDirectory() as cache_dir, _environment_variable("TORCHINDUCTOR_CACHE_DIR", cache_dir):
        for state in ("cold", "warm"):
            queue = context.Queue()
            worker = context.Process(target=_first_step_worker, args=(asdict(args), length, queue))
            worker.start()
            seconds[state] = queue.get()
            worker.join()
    return seconds


def synchronizations_per_token(model, args: BenchmarkArguments, new_tokens: int = 16) -> dict:
    """Host-device synchronisations per generated token on CUDA, counted by `torch.cuda.set_sync_debug_mode("warn")`.

    `model_steps`: of the model's own cached decoding steps (a greedy loop of forward calls after one encoder pass);
    `generate`: of a whole greedy `generate` call, which adds transformers' own checks (stopping criteria).
    `model_sites`: the source lines of the model's synchronising calls, if any.
    """
    if args.device != "cuda":
        raise ValueError(f"synchronisations are counted on cuda only, not on {args.device}")
    model.eval()
    batch = _batch(args, args.generation_batch_size, args.generation_source_length, torch.Generator().manual_seed(1))
    source = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def counted(run) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                run()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return [f"{Path(w.filename).name}:{w.lineno}" for w in caught if "synchronizing" in str(w.message)]

    def model_steps():
        next_tokens = torch.full((args.generation_batch_size, 1), BOS, device=args.device)
        cache = None
        for _ in range(new_tokens):
            output = model(encoder_outputs=encoder_outputs, attention_mask=source["attention_mask"],
                           decoder_input_ids=next_tokens, past_key_values=cache, use_cache=True)  # fmt: skip
            cache = output.past_key_values
            next_tokens = output.logits[:, -1:].argmax(-1)

    with torch.no_grad(), _autocast(args):
        encoder_outputs = model.get_encoder()(**source)
        model_steps()  # warm-up: kernels compile outside the count
        sites = counted(model_steps)
        whole = counted(lambda: model.generate(**source, max_new_tokens=new_tokens, min_new_tokens=new_tokens))
    return {"model_steps": len(sites) / new_tokens, "generate": len(whole) / new_tokens,
            "model_sites": sorted(set(sites))}  # fmt: skip


def time_test_translation(args: BenchmarkArguments) -> list[dict]:
    """Seconds and BLEU of translating the test sources of `args.translation_model` with its own generation config,
    as `translation.translate` does (batches of sorted lengths), per batch size: the float model, its int8 copy (CPU),
    and a MarianMT of the same size on the same batches, each batch's output length forced to the longest translation
    the float model gave in it (an untrained peer would stop anywhere)."""
    folder = Path(args.translation_model)
    rows = [json.loads(line) for line in (folder / "test_translations.jsonl").open(encoding="utf-8")]
    sources, references = [row["source"] for row in rows], [row["reference"] for row in rows]
    checkpoint = load_checkpoint(folder, device=args.device)
    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    variants = {"float": model, **({"int8": quantize_int8(model)} if args.device == "cpu" else {})}
    config = model.config
    peer_args = replace(
        args,
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
    )
    peer = build_marian(peer_args, model.num_parameters()).to(args.device).eval()
    num_beams = model.generation_config.num_beams or 1
    base = {"task": "translate", "translation_model": str(folder), "sentences": len(sources), "num_beams": num_beams,
            **environment(args)}  # fmt: skip
    records = []
    for batch_size in args.translation_batch_sizes:
        hypotheses = {}
        for variant, candidate in variants.items():
            # int8 is its own precision: its kernels take float32 activations, never autocast's bf16.
            with _autocast(args) if variant == "float" else nullcontext():
                translate(candidate, tokenizer, sources[:batch_size], batch_size=batch_size)  # warm-up
                start = time.perf_counter()
                hypotheses[variant] = translate(candidate, tokenizer, sources, batch_size=batch_size)
                seconds = time.perf_counter() - start
            scores = corpus_scores(hypotheses[variant], references)
            records.append({**base, "model": f"Seq2SeqAttention ({variant})", "params": model.num_parameters(),
                            "batch_size": batch_size, "seconds": round(seconds, 2),
                            "bleu": round(scores["bleu"], 2), "chrf": round(scores["chrf"], 2)})  # fmt: skip
            print(json.dumps(records[-1]), flush=True)
        lengths = [len(ids) for ids in tokenizer(hypotheses["float"])["input_ids"]]
        order = sorted(range(len(sources)), key=lambda index: len(sources[index]))
        start = time.perf_counter()
        with torch.no_grad(), _autocast(args):
            for indices in batched(order, batch_size):
                inputs = tokenizer([sources[index] for index in indices], return_tensors="pt", padding=True,
                                   truncation=True).to(args.device)  # fmt: skip
                new_tokens = max(lengths[index] for index in indices)
                peer.generate(**inputs, num_beams=num_beams, min_new_tokens=new_tokens, max_new_tokens=new_tokens)
        records.append({**base, "model": "MarianMTModel (same lengths)", "params": peer.num_parameters(),
                        "batch_size": batch_size, "seconds": round(time.perf_counter() - start, 2), "bleu": None,
                        "chrf": None})  # fmt: skip
        print(json.dumps(records[-1]), flush=True)
    return records


def environment(args: BenchmarkArguments) -> dict:
    """What the figures were measured on: machine, device, dtype, threads, versions, attention implementation."""
    if args.device == "cuda":
        machine = torch.cuda.get_device_name()
    else:
        machine = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"
    return {"machine": machine, "device": args.device, "dtype": args.dtype, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "attn_implementation": args.attn_implementation}  # fmt: skip


def run_benchmark(args: BenchmarkArguments) -> list[dict]:
    """Every measurement of the grid, as records; writes `benchmark.json` and `benchmark.md` to `args.output_dir`."""
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment(args)
    records = time_test_translation(args) if args.translation_model else []
    model_names = [] if args.translation_only else list(args.attention_types)
    if args.eager_bahdanau and "bahdanau" in model_names:
        model_names.insert(model_names.index("bahdanau") + 1, EAGER_BAHDANAU)
    model_names += ["marian"] if args.include_marian and not args.translation_only else []
    models = {}
    for model_name in model_names:
        torch.manual_seed(args.seed)
        models[model_name] = build_benchmark_model(args, model_name).to(args.device)
    train_speeds = time_training_rounds(models, args)
    for model_name, model in models.items():
        is_marian = model_name == "marian"
        base = {"model": "MarianMTModel" if is_marian else "Seq2SeqAttention",
                "attention_type": "transformer" if is_marian else model.config.attention_type,
                "compile_additive_attention": None if is_marian else model.config.compile_additive_attention,
                "params": model.num_parameters(), **env}  # fmt: skip
        for length in args.train_lengths:
            speeds = train_speeds[model_name, length]
            record = {**base, "task": "train", "src_len": length, "tgt_len": length,
                      "batch_size": args.train_batch_size, "num_beams": None, "use_cache": None,
                      "tokens_per_s": round(statistics.median(speeds), 1),
                      "tokens_per_s_rounds": [round(speed, 1) for speed in speeds],
                      "peak_mem_mb": None}  # fmt: skip
            if args.memory:
                record["peak_mem_mb"] = round(peak_training_memory_mb(model, args, model_name, length), 1)
            records.append(record)
            print(json.dumps(record), flush=True)
            if args.profile_operators:
                record = {**base, "task": "profile", "src_len": length, "tgt_len": length,
                          "batch_size": args.train_batch_size, **profile_training(model, args, length)}  # fmt: skip
                records.append(record)
                print(json.dumps(record), flush=True)
        for new_tokens in args.new_tokens:
            for num_beams in args.num_beams:
                for use_cache in (True, False):
                    speed = time_generation(model, args, new_tokens, num_beams, use_cache)
                    record = {**base, "task": "generate", "src_len": args.generation_source_length,
                              "tgt_len": new_tokens, "batch_size": args.generation_batch_size,
                              "num_beams": num_beams, "use_cache": use_cache, "tokens_per_s": round(speed, 1),
                              "peak_mem_mb": None}  # fmt: skip
                    records.append(record)
                    print(json.dumps(record), flush=True)
    del models
    if args.first_step and "bahdanau" in args.attention_types and not args.translation_only:
        length = args.train_lengths[0]
        for state, seconds in first_step_seconds(args, length).items():
            record = {"model": "Seq2SeqAttention", "attention_type": "bahdanau", "compile_additive_attention": None,
                      **env, "task": "first_step", "kernel_cache": state, "src_len": length, "tgt_len": length,
                      "batch_size": args.train_batch_size, "seconds": round(seconds, 2)}  # fmt: skip
            records.append(record)
            print(json.dumps(record), flush=True)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "benchmark.json").write_text(json.dumps(records, indent=1))
    (output_dir / "benchmark.md").write_text(markdown_report(records, args))
    return records


def _label(record: dict) -> str:
    """The row name: the attention type (`transformer` for MarianMT), with ` (eager)` for always-eager additive
    scores; a translation record's model name."""
    if "attention_type" not in record:
        return record["model"]
    return record["attention_type"] + (" (eager)" if record.get("compile_additive_attention") is False else "")


def _find(records: list[dict], **conditions) -> dict | None:
    """The first record matching every condition; `label` is matched against `_label(record)`."""
    for record in records:
        values = {**record, "label": _label(record)}
        if all(values.get(name) == value for name, value in conditions.items()):
            return record
    return None


def _model_tables(records: list[dict], args: BenchmarkArguments, names: list[str]) -> list[str]:
    """The training and generation tables, one row per model label in `names`."""
    rounds = f", the median of {args.train_rounds} interleaved rounds" if args.train_rounds > 1 else ""
    title = f"Training (batch {args.train_batch_size}, source = target length): target tokens/s{rounds}, peak MiB"
    lines = ["", title, "",
             "| model | params | " + " | ".join(f"{n} tok/s | {n} MiB" for n in args.train_lengths) + " |",
             "|---|---|" + "---|---|" * len(args.train_lengths)]  # fmt: skip
    for name in names:
        cells = []
        for length in args.train_lengths:
            record = _find(records, label=name, task="train", src_len=length) or {}
            cells += [str(record.get("tokens_per_s", "")), str(record.get("peak_mem_mb", ""))]
        params = (_find(records, label=name) or {}).get("params", 0)
        lines.append(f"| {name} | {params:,} | " + " | ".join(cells) + " |")
    columns = [(n, b, c) for n in args.new_tokens for b in args.num_beams for c in (True, False)]
    header = " | ".join(f"{n} new, beam {b}, cache {'on' if c else 'off'}" for n, b, c in columns)
    lines += ["", f"Generation (batch {args.generation_batch_size}, source {args.generation_source_length} tokens): "
              "new tokens/s", "", f"| model | {header} |", "|---|" + "---|" * len(columns)]  # fmt: skip
    for name in names:
        cells = []
        for new_tokens, num_beams, use_cache in columns:
            record = _find(records, label=name, task="generate", tgt_len=new_tokens, num_beams=num_beams,
                           use_cache=use_cache) or {}  # fmt: skip
            cells.append(str(record.get("tokens_per_s", "")))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown_report(records: list[dict], args: BenchmarkArguments) -> str:
    """Tables of the records: training speed and peak memory by length, generation speed by setting."""
    env = environment(args)
    names = list(dict.fromkeys(_label(record) for record in records if record["task"] in ("train", "generate")))
    lines = [f"Benchmark: {env['machine']}, {env['device']}, {env['dtype']}, {env['threads']} threads, "
             f"torch {env['torch']}, transformers {env['transformers']}, {env['attn_implementation']}."]  # fmt: skip
    if names:
        lines += _model_tables(records, args, names)
    profiles = [record for record in records if record["task"] == "profile"]
    if profiles:
        lines += ["", f"Where a training step's time goes (batch {args.train_batch_size}, torch.profiler, self time): "
                  "the operators that take the most, ms per step (share)", "",
                  "| model | length | profiled ms per step | operators |", "|---|---|---|---|"]  # fmt: skip
        for record in profiles:
            operators = ", ".join(
                f"`{op['operator']}` {op['ms_per_step']} ({100 * op['share']:.0f}%)" for op in record["operators"]
            )
            lines.append(f"| {_label(record)} | {record['src_len']} | {record['step_ms']} | {operators} |")
    first_steps = [record for record in records if record["task"] == "first_step"]
    if first_steps:
        lines += ["", f"First training step of a new process, default bahdanau (batch {args.train_batch_size}, length "
                  f"{first_steps[0]['src_len']}): seconds", "", "| kernel cache | seconds |", "|---|---|"]  # fmt: skip
        lines += [f"| {record['kernel_cache']} | {record['seconds']} |" for record in first_steps]
    translations = [record for record in records if record["task"] == "translate"]
    if translations:
        first = translations[0]
        lines += ["", f"Translating the {first['sentences']} test sentences of {first['translation_model']}, beam "
                  f"{first['num_beams']}: seconds, BLEU, chrF", "", "| model | batch | seconds | BLEU | chrF |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r['model']} | {r['batch_size']} | {r['seconds']} | {r['bleu'] if r['bleu'] is not None else ''}"
                  f" | {r['chrf'] if r['chrf'] is not None else ''} |" for r in translations]  # fmt: skip
    return "\n".join(lines) + "\n"


__all__ = [
    "EAGER_BAHDANAU",
    "BenchmarkArguments",
    "build_benchmark_model",
    "build_marian",
    "profile_training",
    "run_benchmark",
    "synchronizations_per_token",
    "time_test_translation",
]
