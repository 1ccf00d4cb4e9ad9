"""Check the whole of params.yaml before any work: every stage and `vemo` call this first.

A mistake (a misspelled key, a wrong type or range, an unknown builder, extractor, head or option) is
found in the first second, in one line per mistake naming the key, the value and what is allowed, and
the stage exits 2 having written nothing. Without it, `decode.segments: "ten"` reached the decode cache's
header before failing in every worker, and `dask.workers: 0` waited for a worker forever.

The schema is pydantic (strict: a quoted number is not a number, `true` is not an integer; unknown keys
are errors). The names and options given to the registries are checked by `params_names`, which imports
every head and extractor: the manifest stage, the first of a run, calls it too.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PositiveInt = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Device = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")]

# Allowed values of the library's enumerations; tests/test_params_check.py checks each against the
# constant it mirrors (kept here so that checking needs neither torch nor scikit-learn).
DECODE_OUTPUTS = Literal["snippets", "frames", "keyframes", "audio"]
FACE_POLICIES = Literal["largest", "confident"]
ALLOCATORS = Literal["jemalloc", "system"]
PROTOCOLS = Literal["fixed", "ve8_runs", "caer"]
SELECTIONS = Literal["val-best", "test-best", "last"]
OPTIMIZERS = Literal["adam", "adamw", "sgd"]
SCHEDULES = Literal["none", "step", "cosine"]
FEATURE_SCALES = Literal["rms", "standard", "none"]
DEMO_CUES = Literal["complementary", "redundant"]
PRECISIONS = Literal["fp32", "bf16", "fp16"]


class Section(BaseModel):
    # allow_inf_nan: YAML's .inf and .nan are floats, and no setting means them (decode.fps: .inf passed)
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Dataset(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    builder: str
    root: Annotated[str, Field(min_length=1)]
    lists: str | None = None
    options: dict[str, Any] | None = None


class Demo(Section):
    videos: str
    lists: str
    classes: Annotated[list[str], Field(min_length=2)]
    clips_per_class: PositiveInt
    min_seconds: PositiveFloat
    max_seconds: PositiveFloat
    width: Annotated[int, Field(ge=32)]
    height: Annotated[int, Field(ge=32)]
    no_audio_every: Count
    no_face_every: Count
    cues: DEMO_CUES

    @model_validator(mode="after")
    def _ordered(self) -> Demo:
        if self.max_seconds < self.min_seconds:
            raise ValueError(f"max_seconds ({self.max_seconds:g}) is below min_seconds "
                             f"({self.min_seconds:g})")
        return self


class Dask(Section):
    scheduler: str | None = None
    scheduler_file: str | None = None
    workers: PositiveInt = 2
    threads_per_worker: PositiveInt = 1
    memory_limit: str | PositiveInt = "auto"
    retries: Count = 1
    allocator: ALLOCATORS = "jemalloc"
    no_worker_timeout: PositiveFloat = 300.0
    connect_timeout: PositiveFloat = 30.0
    dashboard: bool = True
    shared_filesystem: bool = True
    keep_alive: Annotated[float, Field(ge=0)] = 0.0

    @field_validator("memory_limit")
    @classmethod
    def _a_size(cls, value: str | int) -> str | int:
        # Dask parses it only as the LocalCluster starts, after the manifest: "4 gigs" was a traceback there
        if isinstance(value, str) and value != "auto":
            from dask.utils import parse_bytes

            try:
                parse_bytes(value)
            except ValueError:
                raise ValueError("not a size: give auto, a number of bytes or e.g. 4GiB, 500MB") from None
        return value

    @model_validator(mode="after")
    def _one_scheduler(self) -> Dask:
        if self.scheduler and self.scheduler_file:
            raise ValueError("give the scheduler's address or its scheduler_file, not both")
        return self


class Decode(Section):
    fps: PositiveFloat | None = None
    segments: PositiveInt
    frames_per_segment: PositiveInt
    train_views: Count
    short_side: PositiveInt
    crop_size: PositiveInt
    work_max_side: Annotated[int, Field(ge=16)]
    face_rate: PositiveFloat
    face_max_frames: PositiveInt
    keyframe_size: PositiveInt
    audio_rates: Annotated[list[Annotated[int, Field(ge=1000)]], Field(min_length=1)]
    audio_stream: Count | None = None
    outputs: Annotated[list[DECODE_OUTPUTS], Field(min_length=1)]
    compression: Literal["gzip", "lzf"] | None = "gzip"
    compression_level: Annotated[int, Field(ge=0, le=9)] = 1
    max_seconds: PositiveFloat | None = None

    @model_validator(mode="after")
    def _crop_fits(self) -> Decode:
        if self.crop_size > self.short_side:
            raise ValueError(f"crop_size ({self.crop_size}) is larger than short_side ({self.short_side})")
        return self


class Faces(Section):
    min_prob: Annotated[float, Field(ge=0, le=1)]
    min_size: PositiveInt
    select: FACE_POLICIES
    margin: Annotated[float, Field(ge=0)]
    crop_size: PositiveInt
    batch_size: PositiveInt


class Feature(Section):
    weights: Annotated[str, Field(min_length=1)]
    batch_size: PositiveInt
    videos_per_task: PositiveInt = 8
    device: Device = "auto"
    options: dict[str, Any] | None = None


class TrainOverrides(Section):
    protocol: PROTOCOLS | None = None
    runs: PositiveInt | None = None
    selection: SELECTIONS | None = None
    val_fraction: Annotated[float, Field(gt=0, lt=1)] | None = None
    target: str | None = None
    polarity: dict[str, Literal[-1, 0, 1]] | None = None
    detection_ground_truth: str | None = None
    preload: bool | None = None
    feature_scale: FEATURE_SCALES | None = None
    epochs: PositiveInt | None = None
    batch_size: PositiveInt | None = None
    optimizer: OPTIMIZERS | None = None
    lr: PositiveFloat | None = None
    weight_decay: Annotated[float, Field(ge=0)] | None = None
    schedule: SCHEDULES | None = None
    step_size: PositiveInt | None = None
    gamma: PositiveFloat | None = None
    early_stopping: Count | None = None
    device: Device | None = None
    checkpoint_seconds: Annotated[float, Field(ge=0)] | None = None


class Train(TrainOverrides):
    @model_validator(mode="after")
    def _complete(self) -> Train:
        optional = ("detection_ground_truth", "target", "polarity")
        unset = [n for n in type(self).model_fields if getattr(self, n) is None and n not in optional]
        if unset:
            raise ValueError(f"missing {', '.join(unset)}")
        return self


class Head(Section):
    head: str
    options: dict[str, Any] | None = None
    train: TrainOverrides | None = None


class Report(Section):
    examples: Count = 10


class Params(Section):
    seed: Count
    dataset: Dataset
    demo: Demo | None = None
    dask: Dask = Dask()
    decode: Decode
    faces: Faces
    features: dict[str, Feature]
    precision: PRECISIONS = "fp32"
    train: Train
    report: Report = Report()
    heads: dict[str, Head]


class ExtractSettings(Section):
    """The sections extraction reads (`pipeline.defaults.SECTIONS`), checked as params.yaml's."""

    seed: Count
    dask: Dask = Dask()
    decode: Decode
    faces: Faces
    features: dict[str, Feature]
    precision: PRECISIONS = "fp32"


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping. PyYAML keeps the last one without a
    word, so a second `seed:` or a second `decode:` section pasted at the end of params.yaml would silently
    replace the first (DVC's own YAML reader refuses such a file, so it must be refused here too)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":      # `<<: *anchor` may repeat keys on purpose
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:                                   # an unhashable key: PyYAML refuses it below
                continue
            if first is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first at line {first.line + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_yaml(stream: Any) -> Any:
    """YAML text or an open file, parsed safely, with a repeated key an error (`UniqueKeyLoader`)."""
    return yaml.load(stream, Loader=UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)


RETIRED = {
    ("demo", "", "face_every"): ("use demo.no_face_every (every k-th clip shows NO face, 0 = every clip "
                                 "shows one) and demo.cues"),
    ("heads", "*", "caches"): "each head declares the caches it reads; remove it (and run `vemo graph`)",
    ("features", "*", "upstream"): "the caches an extractor reads follow from its input kind; remove it",
}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model that `loc` (a pydantic error location) points into."""
    model: Any = Params
    keyed = False            # the last field was a mapping: the next part is one of its keys
    for part in loc:
        if keyed:
            keyed = False
            continue
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        if field is None:
            return None
        annotation = field.annotation
        if getattr(annotation, "__origin__", None) is dict:
            annotation, keyed = annotation.__args__[1], True
        models = [a for a in (annotation, *getattr(annotation, "__args__", ()))
                  if isinstance(a, type) and issubclass(a, BaseModel)]
        if not models:
            return None
        model = models[0]
    return model


SCIENTIFIC = re.compile(r"[-+]?\d+[eE][-+]?\d+")
"""A number in e-notation without a dot, which PyYAML (YAML 1.1) reads as a string."""


def _line(error: dict[str, Any]) -> str:
    loc = tuple(p for p in error["loc"] if p not in ("function-after",) and not str(p).startswith("literal["))
    key = ".".join(map(str, loc))
    if error["type"] == "extra_forbidden":
        for (section, _, name), why in RETIRED.items():
            if loc[0] == section and loc[-1] == name:
                return f"{key} is no longer read: {why}"
        parent = _model_at(loc[:-1])
        known = list(parent.model_fields) if parent else []
        near = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = (f"did you mean {'.'.join(map(str, loc[:-1] + (near[0],)))}?" if near
                else f"known: {', '.join(known)}")
        return f"unknown key {key} ({hint})"
    if error["type"] == "missing":
        return f"{key} is missing"
    message = error["msg"].removeprefix("Value error, ")
    scalar = not isinstance(error.get("input"), dict) and error["type"] not in ("model_type", "dict_type")
    if "input" in error and scalar:
        value = error["input"]
        if error["type"] == "float_type" and isinstance(value, str) and SCIENTIFIC.fullmatch(value.strip()):
            # PyYAML follows YAML 1.1, where a float needs a dot: 1e-4 is text, 1.0e-4 a number (DVC's own
            # reader, YAML 1.2, reads both as numbers, so `dvc params diff` shows a number here)
            mantissa, exponent = value.strip().lower().split("e")
            message += f" (YAML reads {value} as text: write {mantissa}.0e{exponent})"
        return f"{key} = {value!r}: {message}"
    return f"{key}: {message}"


def check_params(params: Any) -> list[str]:
    """Every mistake in parsed params.yaml's structure, types and ranges, one line each ([] when valid)."""
    if not isinstance(params, dict):
        return [f"the file holds {type(params).__name__}, not a mapping of sections"]
    try:
        Params.model_validate(params)
    except ValidationError as exc:
        return [_line(e) for e in exc.errors()]
    return []


def check_settings(settings: Any) -> list[str]:
    """Every mistake in extraction settings (`ExtractSettings`: seed, dask, decode, faces, features), one
    line each, worded as for params.yaml (the sections have the same names there)."""
    try:
        ExtractSettings.model_validate(settings)
    except ValidationError as exc:
        return [_line(e) for e in exc.errors()]
    return []


def exit_on(problems: list[str], source: str | Path) -> None:
    """Exit 2 printing one line per problem, each naming `source`; nothing when there is none."""
    for problem in problems:
        print(f"{source}: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(2)


LOCAL_PARAMS = "params.local.yaml"
"""Per-machine settings beside params.yaml, never committed (like DVC's `.dvc/config.local`): where this
machine keeps the videos and which Dask cluster it uses. Only keys that never change a result may be set
there, so a team shares one params.yaml and one dvc.lock (docs/team.md)."""
LOCAL_KEYS = {"dataset": {"root"}, "dask": set(Dask.model_fields)}


def _read_yaml(path: Path) -> Any:
    """The parsed file, or exit 2 with one line (unreadable, not UTF-8, not valid YAML, a key twice)."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a file saved by an editor in Latin-1 or Windows-1252 (an accent in a comment is enough)
        line = data.count(b"\n", 0, exc.start) + 1
        print(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}): save it as UTF-8",
              file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(f"{path}: cannot be read ({exc.strerror or exc})", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        print(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}", file=sys.stderr)
        raise SystemExit(2) from None


def local_problems(local: Any) -> list[str]:
    """Keys of a params.local.yaml that may not be set per machine, one line each."""
    if local is None:
        return []
    if not isinstance(local, dict) or not all(isinstance(v, dict) for v in local.values()):
        return ["must hold sections of keys (dataset: {root: ...}, dask: {...})"]
    allowed = ", ".join(f"{section}.{key}" for section, keys in LOCAL_KEYS.items() for key in sorted(keys))
    problems = []
    for section, values in local.items():
        for key in values:
            if key in LOCAL_KEYS.get(section, set()):
                continue
            near = difflib.get_close_matches(str(key), sorted(LOCAL_KEYS.get(section, ())), n=1)
            if near and not (_model_at((section,)) and key in _model_at((section,)).model_fields):
                # a misspelt allowed key (dask.wrokers) is a typo, not a key that changes results
                problems.append(f"unknown key {section}.{key} (did you mean {section}.{near[0]}?)")
            else:
                problems.append(f"{section}.{key} cannot be set per machine: it changes results, so it "
                                f"belongs in params.yaml (allowed here: {allowed})")
    return problems


def with_local(params: Any, local: dict[str, Any] | None) -> Any:
    """`params` with the per-machine keys of `local` laid over their sections."""
    if not local or not isinstance(params, dict):
        return params
    merged = dict(params)
    for section, values in local.items():
        merged[section] = {**(merged.get(section) or {}), **values}
    return merged


def load_valid_params(path: str | Path) -> dict[str, Any]:
    """params.yaml, with the per-machine keys of the params.local.yaml beside it (`LOCAL_PARAMS`), parsed
    and checked, or exit 2 with one line per problem (an unreadable file, a YAML syntax error, a mistake
    in a value, a key params.local.yaml may not set)."""
    path = Path(path)
    params = _read_yaml(path)
    local_path = path.parent / LOCAL_PARAMS
    if local_path.is_file():
        local = _read_yaml(local_path)
        exit_on(local_problems(local), local_path)
        merged = with_local(params, local)
        # a mistake only the merged sections have is params.local.yaml's: name that file, not params.yaml
        own = set(check_params(params))
        problems = check_params(merged)
        for problem in problems:
            print(f"{path if problem in own else local_path}: {problem}", file=sys.stderr)
        if problems:
            raise SystemExit(2)
        return merged
    exit_on(check_params(params), path)
    return params
