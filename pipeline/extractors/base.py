"""The one small interface every feature extractor implements, and the registry that names them.

An extractor is a frozen network plus its preprocessing:

    uint8 arrays from the decode (or faces) cache ──preprocess──> float tensor ──forward──> features

    @register_extractor
    class AlexNetFc7(Extractor):
        name = "alexnet_fc7"
        input_kind = "keyframes"               # what it reads (pipeline/graph.py, INPUT_SOURCES)
        outputs = {"features": (4096,)}        # per input row; stored as float16
        def build(self) -> nn.Module: ...      # the architecture, random weights
        def load_state(self, module, state) -> None: ...   # official checkpoint -> module (strict)
        def preprocess(self, batch: np.ndarray) -> torch.Tensor: ...
        def forward(self, module, x: torch.Tensor) -> dict[str, torch.Tensor]: ...

`load_weights(weights)` takes "random" or a checkpoint path and returns what the cache records:
"random" or the file's sha256. `Cls.with_weights(weights, **options)` builds and loads in one step, and
skips the random draw a checkpoint would overwrite.

Every extractor takes `device` (keyword, default the CPU): the module is built on the CPU (so seeded random
weights are the same on every device), moved there once, each preprocessed batch follows it, and the
outputs come back as CPU numpy arrays. `precision` (the CNNs' option) is "fp32", "bf16" (autocast to
bfloat16, channels-last) or, on CUDA only, "fp16" (autocast to float16).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from pipeline.extractors.catalog import card_disagreement, recorded_weights
from pipeline.registry import Registry

PRECISIONS = ("fp32", "bf16", "fp16")
CPU_PRECISIONS = ("fp32", "bf16")           # CPU autocast has no useful float16 path
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
"""The keys of `pipeline.graph.INPUT_SOURCES` (tests/test_registry.py keeps them equal): graph is downstream
of extractors in the layer order (tests/test_layout.py), so this module cannot import it."""
_CHECKPOINT_FOLLOWS: ContextVar[bool] = ContextVar("checkpoint_follows", default=False)
EXTRACTORS: Registry[type[Extractor]] = Registry("extractor")
"""Built-in extractors are lazy entries (the end of this module): a stage's workers import only the
module of the one they run (torchvision alone takes a worker about 2 s to import, and the 3D ResNet and
MFCC do not need it)."""


CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})    # x86 AVX512-BF16 / AMX, Arm BF16


def native_cpu_bf16(cpuinfo: Path = CPUINFO) -> list[str] | None:
    """The CPU flags that give this machine native bfloat16 arithmetic; [] when it has none, None when
    the flags cannot be read (not Linux)."""
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return None
    return sorted(flags & NATIVE_BF16_FLAGS)


def check_precision(name: str, precision: str, device: torch.device) -> None:
    """Raise unless `precision` runs on `device` (fp16 needs CUDA); warn when bf16 would run on a CPU
    without native bfloat16, where autocast converts every operand and the 3D ResNet-101 runs about
    100x slower than in fp32 (bench/README.md, deliverable 3b): the features stay right, the time does not."""
    allowed = PRECISIONS if device.type == "cuda" else CPU_PRECISIONS
    if precision not in allowed:
        hint = " (fp16 runs on CUDA devices only)" if precision == "fp16" else ""
        raise ValueError(f"{name}: precision {precision!r} is not one of {allowed} on {device.type}{hint}")
    if precision == "bf16" and device.type == "cpu" and native_cpu_bf16(CPUINFO) == []:
        warnings.warn(f"{name}: precision 'bf16' on a CPU without native bfloat16 (none of "
                      f"{', '.join(sorted(NATIVE_BF16_FLAGS))} in {CPUINFO}) runs far slower than "
                      "fp32; use fp32 on this machine", RuntimeWarning, stacklevel=2)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Autocast of `device`'s type to the reduced `precision` ("bf16", "fp16"); disabled for "fp32"."""
    return torch.autocast(device_type=device.type, dtype=_AUTOCAST.get(precision, torch.bfloat16),
                          enabled=precision != "fp32")


class Extractor(ABC):
    name: ClassVar[str]
    input_kind: ClassVar[str]
    outputs: ClassVar[dict[str, tuple[int, ...]]]
    store_dtype: ClassVar[type] = np.float16       # cache precision; float32 where fp16 loses too much
    version: ClassVar[int] = 1
    """Bump when the values change for the same options and weights (preprocessing, network, output
    layout): it enters the cache's configuration hash, so older entries are recomputed, not mixed in;
    tests/test_golden.py fails when the values change and this did not."""

    def __init__(self, *, device: str | torch.device = "cpu", **options: Any) -> None:
        self.options = options
        self.device = torch.device(device)
        # drawn now, as torch's own modules are, unless `with_weights` is about to load a checkpoint
        self._module: nn.Module | None = None if _CHECKPOINT_FOLLOWS.get() else self._frozen(self.build())
        self.weights = "random"

    @classmethod
    def with_weights(cls, weights: str, **options: Any) -> Self:
        """`cls(**options)` with `weights` ("random" or a checkpoint path) loaded. Random weights are drawn
        at construction, from the caller's seed, as always; a checkpoint is loaded into uninitialised
        storage instead, skipping a draw it would overwrite (VGG16's takes 2 s, the 3D ResNet's 1.4 s)."""
        token = _CHECKPOINT_FOLLOWS.set(weights != "random")
        try:
            extractor = cls(**options)
        finally:
            _CHECKPOINT_FOLLOWS.reset(token)
        extractor.load_weights(weights)
        return extractor

    @classmethod
    def check_options(cls, **options: Any) -> None:
        """Raise what `cls(**options)` raises for a wrong option value, without drawing its weights (a
        check of params.yaml at the start of a run, not hours later in the feature stage)."""
        token = _CHECKPOINT_FOLLOWS.set(True)
        try:
            cls(**options)
        finally:
            _CHECKPOINT_FOLLOWS.reset(token)

    @classmethod
    def check_checkpoint(cls, path: Path, **options: Any) -> None:
        """Raise what loading the checkpoint at `path` into `cls(**options)` raises (a key or shape that
        does not fit, a file that is no checkpoint), without allocating the network: the file is read and
        loaded into the architecture on the meta device, through the class's own reading and conversion."""
        token = _CHECKPOINT_FOLLOWS.set(True)
        try:
            extractor = cls(**options)
        finally:
            _CHECKPOINT_FOLLOWS.reset(token)
        state = extractor.read_checkpoint(path)
        with warnings.catch_warnings():   # loading into meta tensors is the point, not a mistake
            warnings.filterwarnings("ignore", ".*to a meta parameter.*is a no-op", UserWarning)
            extractor.load_state(extractor.architecture(), state)

    @abstractmethod
    def build(self) -> nn.Module:
        """The architecture with random (seeded by the caller) weights."""

    @property
    def module(self) -> nn.Module:
        """The frozen network on `self.device`."""
        if self._module is None:  # constructed for a checkpoint that never came
            self._module = self._frozen(self.build())
        return self._module

    def _frozen(self, module: nn.Module) -> nn.Module:
        module = module.eval().to(self.device)
        for p in module.parameters():
            p.requires_grad_(False)
        return module

    def architecture(self) -> nn.Module:
        """The network's keys, shapes and dtypes without values (on the meta device, built in
        milliseconds): what a checkpoint is checked against before anything is allocated."""
        with torch.device("meta"):
            return self.build()

    def needs_random_init(self) -> bool:
        """Whether loading a checkpoint keeps some of the random weights (an option that leaves a layer
        random); then the network is drawn in full before the checkpoint is loaded over it."""
        return False

    def _unfilled(self) -> nn.Module | None:
        """The architecture with uninitialised storage, to load a checkpoint into without drawing the
        random weights first (VGG16's draw alone takes 2 s); None when some buffer is outside the state
        dict, so that a strict load would not overwrite every value."""
        module = self.architecture()
        tensors = {n for n, _ in module.named_parameters()} | {n for n, _ in module.named_buffers()}
        if self.needs_random_init() or tensors != set(module.state_dict()):
            return None
        return module.to_empty(device="cpu")

    def load_state(self, module: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Load an official checkpoint's state dict; strict, so a wrong format fails loudly."""
        module.load_state_dict(state, strict=True)

    @abstractmethod
    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 rows from the cache -> the float tensor the network takes."""

    @abstractmethod
    def forward(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features per input row, named as in `outputs`."""

    def times_ms(self, inputs: Any) -> np.ndarray:
        """(*layout, 2) times of the output rows; by default those of the input rows."""
        return inputs.times_ms

    def read_checkpoint(self, path: Path) -> dict[str, torch.Tensor]:
        """The state dict inside an official checkpoint file (override for wrapped formats)."""
        return torch.load(path, map_location="cpu", weights_only=True)

    @classmethod
    def recorded_weights(cls, weights: str) -> str:
        """What `load_weights(weights)` records ("random" or the checkpoint's sha256), without building
        the network: a stage whose cache holds every video needs no network at all."""
        return recorded_weights(cls.name, weights)

    def load_weights(self, weights: str) -> str:
        """`weights` is "random" or a path; returns "random" or the checkpoint's sha256. Into an extractor
        made by `with_weights`, the checkpoint goes into uninitialised storage: the load is strict, so
        every value comes from the file."""
        if weights != "random":
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"{self.name}: weights file {path} not found "
                                        "(see `vemo weights --help`)")
            state = self.read_checkpoint(path)
            unfilled = self._unfilled() if self._module is None else None
            if unfilled is None:
                self.load_state(self.module, state)
            else:
                self.load_state(unfilled, state)
                self._module = self._frozen(unfilled)
        self.weights = self.recorded_weights(weights)
        return self.weights

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Rows (N, ...) -> named float32 CPU arrays (N, *outputs[name]); runs on `self.device`."""
        out = self.forward(self.module, self.preprocess(batch).to(self.device))
        return {k: v.float().cpu().numpy() for k, v in out.items()}


def register_extractor(cls: type[Extractor]) -> type[Extractor]:
    """Register `cls` under `cls.name`; its `input_kind` must be one of the stage graph's
    (`pipeline.graph.INPUT_SOURCES`, which says where its rows come from; tests/test_graph.py checks)."""
    problem = card_disagreement(cls) if cls.name in EXTRACTORS.lazy_modules() else None   # a built-in
    if problem:
        raise ValueError(f"extractor {cls.name!r}: {problem}; change both")
    return EXTRACTORS.add(cls.name, cls)


def get_extractor(name: str) -> type[Extractor]:
    return EXTRACTORS.get(name)


def list_extractors() -> list[str]:
    return EXTRACTORS.names()


# The built-ins, each with its card in catalog.py.
EXTRACTORS.lazy("alexnet_fc7", "pipeline.extractors.alexnet")
EXTRACTORS.lazy("alexnet_fc7_spec", "pipeline.extractors.alexnet")
EXTRACTORS.lazy("mfcc", "pipeline.extractors.mfcc")
EXTRACTORS.lazy("mfcc_resnet18", "pipeline.extractors.mfcc_cnn")
EXTRACTORS.lazy("mfcc_resnet50", "pipeline.extractors.mfcc_cnn")
EXTRACTORS.lazy("r3d101_conv5", "pipeline.extractors.r3d")
EXTRACTORS.lazy("vgg16_fc6", "pipeline.extractors.vgg")
EXTRACTORS.lazy("vggface_fc6", "pipeline.extractors.vgg")
