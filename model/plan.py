"""What one run will do (``RunPlan``) and the named profiles that produce plans, as plain frozen data.

A plan is complete: ``python -m runners.train --plan plan.json`` needs nothing
else, the sweep writes one per run, and every record embeds its plan verbatim.
A profile is a grid plus the per-run settings of every plan in it, so
``runners.train --profile quick`` trains exactly one cell of ``make compare
PROFILE=quick``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from model.implementations import FOUR_WAY, Implementation, get, resolve_variant
from model.records import PLAN_VERSION, write_json_atomic
from model.spec import CELLS, ModelSpec, SpecError, TrainSpec, from_dict

# How the C library's malloc treats freed memory (runners.harness.policy.set_allocator): glibc, its defaults, under
# which a large freed buffer goes back to the operating system and the next step's pages fault in again; retain,
# freed memory kept for reuse (no page returned while the run lives). Retain is every run's default: under glibc's
# defaults native torch faults its step's buffers in again every step, which makes its step slower and its processes
# unlike each other (docs/findings.md, finding 7; the A/A calibration); TensorFlow pools its own memory either way.
# jemalloc and tcmalloc: replacements of glibc's malloc preloaded (LD_PRELOAD), as PyTorch's CPU performance guide
# recommends; where their libraries are installed (runners.harness.policy.PRELOADED).
ALLOCATORS = ("glibc", "retain", "jemalloc", "tcmalloc")
DEFAULT_ALLOCATOR = "retain"
# How a sweep's runs share the machine (runners.harness.executor): interleaved (each block's columns alive at once,
# taking turns step by step) or sequential (one run after another, each alone, as a user trains).
RUN_SCHEDULES = ("interleaved", "sequential")
DEFAULT_SCHEDULE = "interleaved"


TWIN_LABEL = "b"  # the label of an A/A calibration's twin column: torch beside torch[label=b]
LABEL = "label"  # a variant option that only names a column (RunPlan.label): the A/A calibration
# Variant options that set a field of the run plan, for any implementation, rather than an option of its own: the
# label, and the allocator (a column run with another allocator than the sweep's, as finding 7 does).
PLAN_OPTIONS = (LABEL, "allocator")
# The A/A twin every timed profile runs beside its columns: native torch again, the cheapest column (its steps are
# the shortest), as a second column. Its true ratio is 1, so what it reads is the design's own bias, the margin a
# verdict must clear (analysis.verdicts.comparisons).
TWIN = ("torch", ((LABEL, TWIN_LABEL),))


@dataclass(frozen=True)
class RunPlan:
    implementation: str  # a name in model.implementations.TABLE
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    variant: dict = field(default_factory=dict)  # concrete: every option of the implementation, resolved
    threads: int = 1
    flush_denormal: bool = True
    allocator: str = DEFAULT_ALLOCATOR  # ALLOCATORS
    warmup_steps: int = 3  # training steps always excluded from the steady state; records.warmup may add more
    data: str | None = None  # dataset archive or folder; None: $IMDB_DATA, then the usual places
    profile: str | None = None  # the profile it came from, for the reader
    save_model: bool = True  # the framework's own model file (sweeps skip it; canonical weights are always saved)
    # Tells apart two columns that run the same implementation and variant: the A/A calibration of the sweep's
    # resolution (``--variants torch:label=b`` beside torch). It changes nothing in the run.
    label: str | None = None
    # bf16 on a CPU without bf16 instructions, converted in software (refused otherwise): its timings measure the
    # conversion, and the record says so (bf16_emulated)
    emulate_bf16: bool = False

    def __post_init__(self):
        object.__setattr__(self, "variant", resolve_variant(self.implementation, self.variant, self.model))
        if self.threads < 1:
            raise SpecError(f"threads must be at least 1, got {self.threads}")
        if self.allocator not in ALLOCATORS:
            raise SpecError(f"unknown allocator {self.allocator!r}; choose one of {', '.join(ALLOCATORS)}")
        if self.warmup_steps < 0:
            raise SpecError(f"warmup_steps must be at least 0, got {self.warmup_steps}")

    @property
    def entry(self) -> Implementation:
        return get(self.implementation)

    def to_dict(self) -> dict:
        return dict(plan_version=PLAN_VERSION, **asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> "RunPlan":
        data = dict(data)
        version = data.pop("plan_version", None)
        if version != PLAN_VERSION:
            older = isinstance(version, int) and version < PLAN_VERSION
            raise SpecError(f"run plan version {version} is not supported (this code reads version {PLAN_VERSION})"
                            + ("; `python -m runners.migrate FOLDER` rewrites a results folder's plans" if older
                               else ""))
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise SpecError(f"unknown run plan field(s): {', '.join(sorted(unknown))}")
        model, train = from_dict(ModelSpec, data.pop("model", {})), from_dict(TrainSpec, data.pop("train", {}))
        return cls(model=model, train=train, **data)

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "RunPlan":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise SpecError(f"cannot read run plan {path}: {error}") from None
        return cls.from_dict(data)


GRID_FIELDS = ("implementations", "cells", "layers", "bidirectional", "seeds", "timeout_s", "target_accuracy",
               "variants", "threads", "allocator", "target_reach", "first_seeds", "emulate_bf16")
# The reach (a 95% interval's distance from its point, as a share) a speed verdict should resolve: a 5% difference.
TARGET_REACH = 0.05


@dataclass(frozen=True)
class Profile:
    """A named grid and the settings every run of it shares (overrides of ModelSpec and TrainSpec)."""

    name: str
    description: str
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    implementations: tuple[str, ...] = FOUR_WAY
    cells: tuple[str, ...] = CELLS
    layers: tuple[int, ...] = (1,)
    bidirectional: tuple[bool, ...] = (False,)
    seeds: tuple[int, ...] = (0,)
    timeout_s: int = 600  # per run
    target_accuracy: float | None = None  # validation accuracy whose first crossing is the time to target
    # Extra columns: (implementation, ((option, value), ...)) run beside the defaults, e.g. native TF eagerly.
    variants: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    threads: tuple[int, ...] = ()  # thread counts as an axis; empty: --threads, else the usable cores
    # every run's (ALLOCATORS); a variant column may set its own (``allocator=glibc``)
    allocator: str = DEFAULT_ALLOCATOR
    # Seeds where they are needed (runners.harness.sweep.adaptive_sweep): with a target, a sweep runs
    # ``first_seeds`` of every configuration, then adds seeds (up to ``seeds``) only where a ratio to native torch
    # still reaches further than the target. None: every seed (a reference set). At least 5 first: looked at after
    # 3, the rule stopped early where the spread happened to read small, and its final intervals covered 91% of the
    # time at an sd of 5% a seed; after 5, 94-95% (tests/test_statistics.py). quick's 6 are a whole Latin square
    # of start orders for its six columns (five and the twin).
    target_reach: float | None = None
    first_seeds: int = 5
    emulate_bf16: bool = False  # every run's RunPlan.emulate_bf16

    def specs(self, **overrides) -> tuple[ModelSpec, TrainSpec]:
        """The specs of one run of this profile; ``None`` overrides are ignored."""
        return build_specs(self.model, self.train, overrides)

    def narrowed(self, **changes) -> "Profile":
        """The same profile with grid axes or timeout (names of ``GRID_FIELDS``) or per-run settings
        (names of ModelSpec/TrainSpec fields) replaced; ``None`` keeps a value."""
        changes = {k: v for k, v in changes.items() if v is not None}
        axes = {k: changes.pop(k) for k in list(changes) if k in GRID_FIELDS}
        if "implementations" in axes and "variants" not in axes:  # a subset of implementations holds for variants
            axes["variants"] = tuple(v for v in self.variants if v[0] in axes["implementations"])
        model_changes, train_changes = split_settings(changes)
        model, train = {**self.model, **model_changes}, {**self.train, **train_changes}
        build_specs(model, train, {})  # refuse bad settings now, not in the first run
        if axes.get("allocator", self.allocator) not in ALLOCATORS:
            raise SpecError(f"unknown allocator {axes['allocator']!r}; choose one of {', '.join(ALLOCATORS)}")
        return replace(self, model=model, train=train, **axes)

    def to_dict(self) -> dict:
        return asdict(self)


def split_settings(settings: dict) -> tuple[dict, dict]:
    """Settings by the spec they belong to (ModelSpec, TrainSpec); any other name is refused."""
    model_names, train_names = set(ModelSpec.__dataclass_fields__), set(TrainSpec.__dataclass_fields__)
    unknown = set(settings) - model_names - train_names
    if unknown:
        raise SpecError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return ({k: v for k, v in settings.items() if k in model_names},
            {k: v for k, v in settings.items() if k in train_names})


def build_specs(model_settings: dict, train_settings: dict, overrides: dict) -> tuple[ModelSpec, TrainSpec]:
    model_overrides, train_overrides = split_settings({k: v for k, v in overrides.items() if v is not None})
    return (ModelSpec(**{**model_settings, **model_overrides}), TrainSpec(**{**train_settings, **train_overrides}))


COMPETITIVE_MODEL = dict(vocab_size=30_000, tokenizer="punct", maxlen=800, head_tokens=200, segment_len=100,
                         units=96, bidirectional=True, embedding_dim=128, embedding_dropout=0.4, dropout=0.5)
COMPETITIVE_TRAIN = dict(batch_size=32, epochs=3, learning_rate=2e-3, schedule="warmup_cosine", warmup_fraction=0.1,
                         bucket_pool=50, patience=2, validations_per_epoch=4)
COMPETITIVE_NGRAMS_MODEL = dict(COMPETITIVE_MODEL, embedding_init="ppmi-svd", ngram_buckets=262_144, ngram_order=2)
PROFILES = {profile.name: profile for profile in (
    # The shape of the speed and memory results in minutes: the same network, batch and maxlen as the others, so
    # its step times predict their cost; its accuracies are not converged. Up to 10 seeds: interleaved, a column's
    # ratio to native torch varies from one seed's processes to the next by an sd of 2-9% of the log (Keras on
    # torch's LSTM the most); on the Zen 5, 5 blocks left 5 of its 12 intervals against native torch wider than
    # +-5%, 10 put all 12 within it (docs/methodology.md, the A/A calibration). make compare starts with 6 and adds
    # seeds only to the cells whose ratios still reach further (target_reach); a reference set runs all 10. One
    # depth only; keras-jax is left out (add it with --implementations). The A/A twin sets the margin.
    Profile("quick", "stratified 2,560 train / 1,000 test reviews, 1 epoch a run; "
            "the four, keras-torch-fused and native torch's A/A twin x 3 cells x 1 layer x 6-10 seeds (10 in a "
            "reference set)",
            train=dict(train_size=2560, test_size=1000, epochs=1), implementations=FOUR_WAY + ("keras-torch-fused",),
            variants=(TWIN,), seeds=tuple(range(10)), target_reach=TARGET_REACH, first_seeds=6),
    # Converged accuracy, time to target and equivalence: all the data, early stopping, 3 seeds, the
    # one-layer cells, validation 4 times an epoch.
    Profile("standard", "all 22,500 / 2,500 / 25,000 reviews, up to 3 epochs with early stopping, validation "
            "4x per epoch; 4 implementations x 3 cells x 1 layer x 3 seeds; time to 85% validation accuracy",
            train=dict(validations_per_epoch=4), seeds=(0, 1, 2), timeout_s=2 * 3600, target_accuracy=0.85),
    # What standard leaves out: depth and direction.
    Profile("full", "all the data, up to 3 epochs, early stopping; x 1-3 layers x uni/bidirectional x 3 seeds",
            train=dict(validations_per_epoch=4), layers=(1, 2, 3), bidirectional=(False, True), seeds=(0, 1, 2),
            timeout_s=4 * 3600, target_accuracy=0.85),
    # Imperative against declarative: each implementation's default beside its eager, graph, XLA or
    # torch.compile variant, with quick's data; the report sets compile time against the steady-state gain.
    Profile("programming", "stratified 2,560 train / 1,000 test reviews, 1 epoch a run; the 1-layer LSTM; native TF "
            "eager and with XLA, native torch with torch.compile, Keras with jit_compile flipped on each backend; "
            "3 seeds", train=dict(train_size=2560, test_size=1000, epochs=1), cells=("lstm",), seeds=(0, 1, 2),
            implementations=("torch", "tensorflow", "keras-torch", "keras-tensorflow", "keras-jax"),
            variants=(("tensorflow", (("graph", False),)), ("tensorflow", (("jit_compile", True),)),
                      ("torch", (("compile", True),)), ("keras-torch", (("jit_compile", True),)),
                      ("keras-tensorflow", (("jit_compile", True),)), ("keras-jax", (("jit_compile", False),)), TWIN),
            timeout_s=1200),
    # Why Keras on torch is slow on the CPU, step by step: Keras' default (use_cudnn="auto", its per-timestep
    # _fallback_* loop), the generic loop, the fused patch, native torch; quick's data.
    Profile("decomposition", "stratified 2,560 train / 1,000 test reviews, 1 epoch a run; keras-torch with Keras' "
            "default RNN path, with the generic loop, with the fused patch, and native torch; 3 cells x 3 seeds",
            train=dict(train_size=2560, test_size=1000, epochs=1), seeds=(0, 1, 2),
            implementations=("keras-torch", "keras-torch-fused", "torch"),
            variants=(("keras-torch", (("rnn_path", "auto"),)), TWIN)),
    # A recipe worth training (docs/competitive-recipe.md: the search on validation and its ablations): reviews
    # up to 800 tokens (the first 200 and the last 600), a 30k vocabulary with "!", "?" and ratings kept, cut
    # into 100-token segments run as rows through one bidirectional layer, max over every timestep, dropout on
    # embeddings and on top, warm-up + cosine learning rate, length-bucketed batches of 32 reviews.
    Profile("competitive", "all the data; 30k vocabulary (punct tokenizer), 800 tokens (200 head + 600 tail) in "
            "100-token segments, bidirectional 96 units, embedding 128 (dropout 0.4), warm-up + cosine peak 2e-3, "
            "batch 32 length-bucketed, 3 epochs; the four and keras-torch-fused x LSTM x 3 seeds; time to 89% "
            "validation accuracy", model=COMPETITIVE_MODEL, train=COMPETITIVE_TRAIN, cells=("lstm",),
            bidirectional=(True,), implementations=FOUR_WAY + ("keras-torch-fused",), seeds=(0, 1, 2),
            timeout_s=4 * 3600, target_accuracy=0.89),
    # The ensemble of 3 exactly as it was chosen on validation: the movie-grouped split with one split seed, so
    # the three members share their validation reviews and vocabulary and differ in weights, batches and dropout.
    Profile("competitive-validated", "the competitive recipe with the movie-grouped validation split and split seed "
            "0 for every seed (one vocabulary); native TF x 3 seeds: the ensemble of 3 as validated",
            model=COMPETITIVE_MODEL, train=dict(COMPETITIVE_TRAIN, val_split="movies", split_seed=0),
            cells=("lstm",), bidirectional=(True,), implementations=("tensorflow",), seeds=(0, 1, 2),
            timeout_s=4 * 3600, target_accuracy=0.89),
    # Beyond the bigram linear model (docs/competitive-recipe.md, the fourth search, on movie-grouped validation):
    # the competitive recipe with word vectors pretrained on the training rows themselves (PPMI + SVD, labels
    # unread) and a learned vector per hashed bigram added to each token's embedding (Johnson & Zhang's region
    # idea, fastText's hashing), validated and stopped on held-out movies. Run one after another, alone, as a
    # user trains: its minutes are the budget's. Keras on torch is left out: 4.7 s a step with the cores shared
    # (2.8 s with the fused patch), so a run would take well over 30 minutes even alone.
    Profile("competitive-ngrams", "the competitive recipe + embeddings pretrained on the training rows (PPMI-SVD) "
            "+ hashed bigram vectors (262,144 rows), movie-grouped validation; native torch, native TF and Keras on "
            "TensorFlow x LSTM x 5 seeds, one run at a time", model=COMPETITIVE_NGRAMS_MODEL,
            train=dict(COMPETITIVE_TRAIN, val_split="movies"), cells=("lstm",), bidirectional=(True,),
            implementations=("torch", "tensorflow", "keras-tensorflow"), seeds=tuple(range(5)),
            timeout_s=2 * 3600, target_accuracy=0.89),
    # What the recurrent layer adds (issue 41's ablation, docs/competitive-recipe.md): competitive-ngrams without it,
    # the word and bigram vectors pooled (max and mean over the review's tokens) straight into the logit. Chosen on
    # movie-grouped validation beside the recipe (a2 against s3 and s8); native torch, the implementations compute
    # the same network (parity case none-seg-ngrams-max-mean).
    Profile("ngram-bag", "competitive-ngrams without its recurrent layer: word and hashed bigram vectors pooled (max "
            "and mean) into the logit; native torch x 5 seeds, one run at a time",
            model=dict(COMPETITIVE_NGRAMS_MODEL, bidirectional=False, pooling="max-mean"),
            train=dict(COMPETITIVE_TRAIN, val_split="movies"), cells=("lstm",), layers=(0,), bidirectional=(False,),
            implementations=("torch",), seeds=tuple(range(5)), timeout_s=2 * 3600, target_accuracy=0.89),
    # The study the project was started for (issue 40): converged accuracy for every cell, depth and direction,
    # on the competitive recipe's data, schedule and width, validated and stopped on held-out movies. The
    # implementations compute the same network (the parity proof), so the accuracy half runs on native torch
    # alone; a sweep of it resumes where it was stopped, so it runs in sittings.
    Profile("study", "the competitive recipe's data, width and schedule, movie-grouped validation; native torch x "
            "rnn/gru/lstm x 1-3 layers x uni/bidirectional x 5 seeds (90 runs), one run at a time",
            model=COMPETITIVE_MODEL, train=dict(COMPETITIVE_TRAIN, val_split="movies"), implementations=("torch",),
            layers=(1, 2, 3), bidirectional=(False, True), seeds=tuple(range(5)), timeout_s=2 * 3600,
            target_accuracy=0.88),
    # The CPU's own axes: bf16 beside fp32 for each of the four, at 1 and 2 threads, quick's data; at the default
    # width and at 256 units, where bf16's GEMMs are large enough to gain (issue measurements: torch LSTM 1.67x
    # at 256 units, none at 64, on a Zen 4). bf16 needs a CPU with bf16 instructions (or --emulate-bf16).
    *(Profile(name, f"stratified 2,560 train / 1,000 test reviews, 1 epoch a run; {units} units; the four in fp32 "
              "and bf16 x 3 cells x 1 and 2 threads x 3 seeds", model=dict(units=units),
              train=dict(train_size=2560, test_size=1000, epochs=1), seeds=(0, 1, 2), threads=(1, 2),
              variants=tuple((impl, (("precision", "bf16"),)) for impl in FOUR_WAY) + (TWIN,))
      for name, units in (("cpu-axes", 64), ("cpu-axes-wide", 256))),
    # The published settings that matter most for accuracy: longer reviews, more epochs, patience 2.
    Profile("published", "maxlen 400, up to 8 epochs, patience 2; the default LSTM on all four",
            model=dict(maxlen=400), train=dict(epochs=8, patience=2), cells=("lstm",), timeout_s=4 * 3600),
)}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise SpecError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
