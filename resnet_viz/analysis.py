"""What happens to the tensor at every layer, and what it costs.

`analyze` runs one forward pass (on `meta` by default: no weights, no memory) and returns a
record per module call with its shapes, parameters, mult-adds, output bytes, window geometry and
receptive field, plus the totals and a memory estimate. Every view of the app is drawn from it.

Limitations:
    Mult-adds follow torchinfo's convention, so that the totals can be checked against it: a
    convolution counts its weights and bias once per output position, a linear layer once per
    sample, and a BatchNorm its 2 x C parameters once per sample (not per pixel); activations,
    pooling, additions and SE's rescaling count nothing. Convolutions and the classifier are
    over 99.9% of a ResNet's arithmetic, so the totals match the papers' "FLOPs", which are
    also multiply-adds.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from resnet_viz.blocks import ZeroPadShortcut
from resnet_viz.config import ResNetConfig
from resnet_viz.devices import check_fits, out_of_memory_as_error, resolve_device
from resnet_viz.model import build_model, resolve_config
from resnet_viz.tracing import Call, MetaTrainingMode, Tracer, saved_for_backward

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MAX_INPUT_SIDE = 4096
MAX_BATCH = 4096

_STAGE_NAME = re.compile(r"^layer(\d+)(?:\.(\d+))?")
_WINDOW_TYPES = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


@dataclass(frozen=True)
class LayerRecord:
    """One module call.

    Attributes:
        name: Qualified name, the state-dict prefix ("layer2.0.conv1").
        call_index: 0 for a module's first call, 1 for its second (torchvision's shared ReLU).
        start_order: Position among calls by when they started; records are listed by when
            they finished, so a block comes after its layers, and sorting by this puts it first.
        type: Class name of the module.
        is_leaf: The module has no submodules; totals add up leaf records only.
        part: "stem", "stage" or "head".
        stage_idx, block_idx: 0-based stage and block, None outside the stages.
        input_shapes, output_shape: Shapes (N, C, H, W), batch included.
        params: Parameters of the module and its submodules.
        mult_adds: Multiply-adds of this call (of every leaf call inside it, for a container).
        output_bytes: Size of the output tensor at the analysis dtype.
        kernel_size, stride, padding, dilation: Window geometry of convs and pools (height axis).
        groups: Groups of a convolution (ResNeXt's cardinality).
        ceil_mode: A pooling window rounds the output size up.
        receptive_field: Input pixels one output position sees along an axis, over every path.
        jump: Input pixels between neighbouring output positions (the effective stride).
        rf_start: Centre of output position 0's receptive field, in input pixels.
        global_context: A global pool (an SE gate) feeds this output, so it also depends a
            little on the whole image; `receptive_field` is then the convolutional one.
    """

    name: str
    call_index: int
    type: str
    start_order: int
    is_leaf: bool
    part: str
    stage_idx: int | None
    block_idx: int | None
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    params: int
    mult_adds: int
    output_bytes: int
    kernel_size: int | None = None
    stride: int | None = None
    padding: int | None = None
    dilation: int | None = None
    groups: int | None = None
    ceil_mode: bool = False
    receptive_field: int | None = None
    jump: int | None = None
    rf_start: float | None = None
    global_context: bool = False

    @property
    def depth(self) -> int:
        """Nesting level: 1 for `layer1`, 2 for `layer1.0`, 3 for `layer1.0.conv1`."""
        return self.name.count(".") + 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["input_shapes"] = [list(s) for s in self.input_shapes]
        out["output_shape"] = list(self.output_shape)
        return out


@dataclass(frozen=True)
class Memory:
    """Bytes at one batch size and dtype.

    Attributes:
        parameters: Learnable parameters.
        buffers: BatchNorm running statistics and other buffers.
        inference_peak: Largest total of activation tensors alive at once during an inference
            forward pass, the input included (what PyTorch's eager mode holds, before any
            allocator rounding or workspace).
        training_activations: Activations autograd keeps for the backward pass in a training
            forward pass; None where training cannot run (BatchNorm over one value per
            channel, as with batch 1 and 1x1 maps).
    """

    dtype: str
    batch: int
    parameters: int
    buffers: int
    inference_peak: int
    training_activations: int | None

    @property
    def training_total(self) -> int | None:
        """Parameters, their gradients and the kept activations; optimizer state not included."""
        if self.training_activations is None:
            return None
        return 2 * self.parameters + self.buffers + self.training_activations


@dataclass
class Analysis:
    """Records of every module call, in the order the calls finished, and the totals."""

    config: ResNetConfig | None
    input_size: tuple[int, int]
    batch: int
    device: str
    dtype: str
    records: list[LayerRecord]
    total_params: int
    trainable_params: int
    mult_adds: int
    memory: Memory
    warnings: list[str] = field(default_factory=list)

    @property
    def flops(self) -> int:
        """2 x mult-adds: what counters such as torch.utils.flop_counter report."""
        return 2 * self.mult_adds

    def leaves(self) -> list[LayerRecord]:
        return [r for r in self.records if r.is_leaf]

    def find(self, name: str, call_index: int = 0) -> LayerRecord:
        for record in self.records:
            if record.name == name and record.call_index == call_index:
                return record
        raise ValueError(
            f"no layer named {name!r} (call {call_index}) in this network; names look like "
            f"'conv1', 'layer1', 'layer1.0' or 'layer1.0.conv1'"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": None if self.config is None else self.config.to_dict(),
            "input_size": list(self.input_size),
            "batch": self.batch,
            "device": self.device,
            "dtype": self.dtype,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "mult_adds": self.mult_adds,
            "flops": self.flops,
            "memory": {**asdict(self.memory), "training_total": self.memory.training_total},
            "warnings": list(self.warnings),
            "layers": [r.to_dict() for r in self.records],
        }


# -- input checking --------------------------------------------------------------------


def parse_input_size(value: Any) -> tuple[int, int]:
    """224, "224", (160, 192) or "160x192" -> (height, width)."""
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
        if not all(p.isascii() and p.isdigit() for p in parts) or len(parts) not in (1, 2):
            raise ValueError(
                f"input size {value!r} is not a size; write 224 or HEIGHTxWIDTH such as 160x192"
            )
        value = (int(parts[0]), int(parts[-1]))
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    ):
        raise ValueError(
            f"input size must be one integer or (height, width), got {value!r}; the batch and "
            "channels are set apart (batch=..., and the config's in_channels)"
        )
    height, width = value
    if not (1 <= height <= MAX_INPUT_SIDE and 1 <= width <= MAX_INPUT_SIDE):
        raise ValueError(
            f"input size {height}x{width} is out of range; each side must be between 1 and "
            f"{MAX_INPUT_SIDE} pixels"
        )
    return height, width


def natural_input_size(config_or_model: ResNetConfig | str | nn.Module) -> tuple[int, int]:
    """The input a network was made for: 32x32 with the CIFAR stem, else ImageNet's 224x224."""
    config = _config_of(config_or_model)
    return (32, 32) if config is not None and config.stem == "cifar" else (224, 224)


def parse_dtype(value: str | torch.dtype) -> tuple[str, torch.dtype]:
    for name, dtype in DTYPES.items():
        if value in (name, dtype):
            return name, dtype
    raise ValueError(f"dtype {value!r} is not supported; use one of {', '.join(DTYPES)}")


def _check_batch(batch: Any) -> int:
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch must be an integer from 1 to {MAX_BATCH}, got {batch!r}")
    return batch


# -- the model to run --------------------------------------------------------------------


def _working_copy(model: nn.Module, device: torch.device, dtype: torch.dtype | None) -> nn.Module:
    """A copy of `model` that the analysis may hook, switch to eval and run, on `device`.

    The user's module objects are never touched. On `meta` the copy's tensors are empty meta
    tensors, so copying costs no memory; on the model's own device the copy shares the user's
    tensors, which it only reads. The copy has no hooks.
    """
    memo: dict[int, Any] = {}
    for module in model.modules():
        for attr in _HOOK_DICTS:
            hooks = getattr(module, attr, None)
            if hooks is not None:
                memo[id(hooks)] = type(hooks)()
    for tensor in _model_state(model):
        if device.type == "meta":
            target_dtype = dtype if dtype is not None and tensor.is_floating_point() else None
            twin = torch.empty_like(tensor, device="meta", dtype=target_dtype)
        elif tensor.device == device:
            memo[id(tensor)] = tensor
            continue
        else:
            twin = tensor.detach().to(device)
        if isinstance(tensor, nn.Parameter):
            twin = nn.Parameter(twin, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = twin
    twin_model = copy.deepcopy(model, memo)
    return twin_model.eval()


def _config_of(config_or_model: ResNetConfig | str | nn.Module) -> ResNetConfig | None:
    """The config behind a config, a preset name, or one of our models; None for others."""
    if isinstance(config_or_model, nn.Module):
        config = getattr(config_or_model, "config", None)
        return config if isinstance(config, ResNetConfig) else None
    return resolve_config(config_or_model)


def _meta_skeleton(
    config_or_model: ResNetConfig | str | nn.Module, dtype: torch.dtype | None
) -> tuple[ResNetConfig | None, nn.Module, int]:
    """The config, a weightless meta twin in `dtype`, and the input channels."""
    config: ResNetConfig | None
    if isinstance(config_or_model, nn.Module):
        config = _config_of(config_or_model)
        model = _working_copy(config_or_model, torch.device("meta"), dtype)
    else:
        config = resolve_config(config_or_model)
        model = build_model(config, device="meta")
        if dtype is not None:
            model = model.to(dtype)
    channels = config.in_channels if config is not None else _input_channels(model)
    return config, model, channels


def _model_device(model: nn.Module) -> torch.device:
    tensor = next(_model_state(model), None)
    return torch.device("cpu") if tensor is None else tensor.device


# -- building records --------------------------------------------------------------------


def _part_of(name: str, seen_stage: bool) -> tuple[str, int | None, int | None]:
    match = _STAGE_NAME.match(name)
    if match:
        block = match.group(2)
        return "stage", int(match.group(1)) - 1, None if block is None else int(block)
    return ("head" if seen_stage else "stem"), None, None


def _leaf_mult_adds(module: nn.Module, output_shape: tuple[int, ...]) -> int:
    params = sum(p.numel() for p in module.parameters())
    if not params or not output_shape:
        return 0
    if isinstance(module, nn.Conv2d):
        return params * math.prod(output_shape[:1] + output_shape[2:])
    return params * output_shape[0]


def _records_from(calls: list[Call], itemsize: int) -> list[LayerRecord]:
    records: list[LayerRecord] = []
    seen_stage = False
    for index, call in enumerate(calls):
        module = call.module
        is_leaf = next(module.children(), None) is None
        part, stage_idx, block_idx = _part_of(call.name, seen_stage)
        seen_stage = seen_stage or part == "stage"
        if is_leaf:
            mult_adds = _leaf_mult_adds(module, call.output_shape)
        else:
            # The calls made inside a container finish between its start and its end.
            inner = records[call.first_inner : index]
            mult_adds = sum(r.mult_adds for r in inner if r.is_leaf)
        geometry: dict[str, Any] = {}
        if isinstance(module, _WINDOW_TYPES):
            geometry = {
                "kernel_size": _first(module.kernel_size),
                "stride": _first(module.stride),
                "padding": _first(module.padding),
                "dilation": _first(getattr(module, "dilation", 1)),
                "ceil_mode": bool(getattr(module, "ceil_mode", False)),
            }
            if isinstance(module, nn.Conv2d):
                geometry["groups"] = module.groups
        elif isinstance(module, ZeroPadShortcut):
            geometry = {"kernel_size": 1, "stride": module.stride, "padding": 0, "dilation": 1}
        rf = call.field
        records.append(
            LayerRecord(
                name=call.name,
                call_index=call.call_index,
                type=type(module).__name__,
                start_order=call.started,
                is_leaf=is_leaf,
                part=part,
                stage_idx=stage_idx,
                block_idx=block_idx,
                input_shapes=tuple(call.input_shapes),
                output_shape=call.output_shape,
                params=sum(p.numel() for p in module.parameters()),
                mult_adds=mult_adds,
                output_bytes=math.prod(call.output_shape) * itemsize,
                receptive_field=None if rf is None else rf.size,
                jump=None if rf is None else int(round(rf.jump)),
                rf_start=None if rf is None else rf.start,
                global_context=False if rf is None else rf.global_context,
                **geometry,
            )
        )
    return records


def _first(value: Any) -> int:
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


# -- the passes --------------------------------------------------------------------------


def _trace(model: nn.Module, x: torch.Tensor, track_memory: bool) -> tuple[list[Call], int]:
    with torch.no_grad(), Tracer(model, track_memory=track_memory) as tracer:
        try:
            model(tracer.start(x))
        except RuntimeError as err:
            raise _ShrankError(tracer.current_module, str(err)) from None
    return tracer.calls, tracer.peak_bytes


class _ShrankError(Exception):
    def __init__(self, layer: str | None, detail: str) -> None:
        super().__init__(detail)
        self.layer = layer
        self.detail = detail


def _training_activations(model: nn.Module, x: torch.Tensor, fast: bool = True) -> int:
    """Bytes kept for backward in a training pass on meta.

    `fast` swaps in `MetaTrainingMode`, whose stand-ins save what PyTorch's ops save in a
    fraction of the time; the tests compare the two.
    """
    model.train()
    try:
        with torch.enable_grad(), saved_for_backward(model) as saved:
            if fast:
                with MetaTrainingMode():
                    model(x)
            else:
                model(x)
        return saved["bytes"]
    finally:
        model.eval()


def _smallest_working_size(model: nn.Module, channels: int, start: int) -> int | None:
    """Smallest square input that runs, by doubling then bisecting (output sizes only grow)."""

    def runs(side: int) -> bool:
        try:
            with torch.no_grad():
                model(torch.empty(1, channels, side, side, device="meta"))
            return True
        except RuntimeError:
            return False

    high = max(start, 1)
    while not runs(high):
        high *= 2
        if high > MAX_INPUT_SIDE:
            return None
    low = 0  # invariant: low fails (or is 0), high runs
    while high - low > 1:
        middle = (low + high) // 2
        if runs(middle):
            high = middle
        else:
            low = middle
    return high


def analyze(
    config_or_model: ResNetConfig | str | nn.Module,
    input_size: Any = None,
    batch: int = 1,
    device: str | torch.device = "meta",
    dtype: str | torch.dtype = "float32",
) -> Analysis:
    """Trace one forward pass and describe every module call.

    Args:
        config_or_model: A `ResNetConfig`, a preset name, or a module. A module handed in keeps
            its device, mode and hooks: the analysis runs on a copy that shares or mirrors its
            tensors.
        input_size: 224 or (height, width); the batch and channels are set apart. None takes
            the size the network was made for: 32x32 with the CIFAR stem, else 224x224.
        batch: Images per batch; scales shapes, mult-adds and memory.
        device: Where the traced pass runs. "meta" (the default) needs no weights and no memory
            and gives the same shapes; "cpu", "cuda" or "mps" run for real.
        dtype: Element type for bytes and memory: "float32", "float16" or "bfloat16". The
            traced pass itself runs in the model's own dtype on a real device.

    Returns:
        The records and totals.

    Raises:
        ValueError: For a bad size, batch, dtype or device, or an input so small that a layer
            has nothing left to work on (the message names the layer and the smallest size).
    """
    batch = _check_batch(batch)
    dtype_name, torch_dtype = parse_dtype(dtype)
    target = resolve_device(device)
    if input_size is None:
        input_size = natural_input_size(config_or_model)
    height, width = parse_input_size(input_size)

    if isinstance(config_or_model, nn.Module):
        source = "the model handed in"
        if target.type != "meta" and _model_device(config_or_model).type == "meta":
            raise ValueError(
                f"the model handed in lives on 'meta' and has no weights, so it cannot run on "
                f"{str(target)!r}; analyse it on 'meta', or build it on {str(target)!r} first"
            )
    else:
        source = config_or_model if isinstance(config_or_model, str) else "this configuration"
    config, meta_model, channels = _meta_skeleton(config_or_model, torch_dtype)

    # The meta pass always runs: it gives the records, the live memory, and, before a real
    # pass, how much that one will need.
    meta_x = torch.empty(batch, channels, height, width, device="meta", dtype=torch_dtype)
    try:
        calls, peak = _trace(meta_model, meta_x, track_memory=True)
    except _ShrankError as err:
        raise _too_small(err, meta_model, channels, (height, width), source) from None

    if target.type != "meta":
        calls = _real_pass(
            config_or_model if isinstance(config_or_model, nn.Module) else None,
            config,
            meta_model,
            target,
            x_shape=meta_x.shape,
            peak=peak,
            itemsize=meta_x.element_size(),
        )
    itemsize = meta_x.element_size()
    records = _records_from(calls, itemsize)
    training: int | None = None
    # BatchNorm refuses to train on one value per channel (batch 1 with 1x1 maps), as it
    # would in a real training step.
    if batch > 1 or not any(
        r.type.startswith("BatchNorm") and math.prod(r.output_shape[2:]) == 1 for r in records
    ):
        training = _training_activations(meta_model, meta_x)
    params = list(meta_model.parameters())
    analysis = Analysis(
        config=config,
        input_size=(height, width),
        batch=batch,
        device=str(target),
        dtype=dtype_name,
        records=records,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        mult_adds=sum(r.mult_adds for r in records if r.is_leaf),
        memory=Memory(
            dtype=dtype_name,
            batch=batch,
            parameters=_state_bytes(params, itemsize),
            # Floating buffers (running statistics) take the dtype; counters stay integers.
            buffers=_state_bytes(meta_model.buffers(), itemsize),
            inference_peak=peak,
            training_activations=training,
        ),
    )
    _warn_small_maps(analysis)
    logger.debug("analysed %d module calls", len(records))
    return analysis


def _real_pass(
    handed_in: nn.Module | None,
    config: ResNetConfig | None,
    meta_model: nn.Module,
    target: torch.device,
    x_shape: torch.Size,
    peak: int,
    itemsize: int,
) -> list[Call]:
    """Run the traced pass for real on `target`, after checking that it fits."""
    if handed_in is not None:
        on_target = _model_device(handed_in) == target
        weights = 0 if on_target else _state_bytes(_model_state(handed_in))
    else:
        weights = _state_bytes(_model_state(meta_model), float_itemsize=4)  # built in float32
    run_dtype = _float_dtype(handed_in) if handed_in is not None else torch.float32
    activations = peak * torch.empty((), dtype=run_dtype).element_size() // itemsize
    check_fits(weights + activations, target, "a real pass of this network at this size")

    try:
        with out_of_memory_as_error(target, "a real pass of this network at this size"):
            model = (
                _working_copy(handed_in, target, dtype=None)
                if handed_in is not None
                else build_model(config, device=target)  # type: ignore[arg-type]
            )
            x = torch.randn(*x_shape, device=target, dtype=run_dtype)
            calls, _ = _trace(model, x, track_memory=False)
    except _ShrankError as err:
        raise ValueError(f"the forward pass failed in {err.layer!r}: {err.detail}") from None
    return calls


def _state_bytes(tensors: Iterable[torch.Tensor], float_itemsize: int | None = None) -> int:
    """Bytes of `tensors`; floating ones at `float_itemsize` where given, integers as they are."""
    return sum(
        t.numel()
        * (float_itemsize if float_itemsize and t.is_floating_point() else t.element_size())
        for t in tensors
    )


def _model_state(model: nn.Module) -> Iterator[torch.Tensor]:
    return itertools.chain(model.parameters(), model.buffers())


def _too_small(
    err: _ShrankError,
    meta_model: nn.Module,
    channels: int,
    size: tuple[int, int],
    source: str,
) -> ValueError:
    height, width = size
    smallest = _smallest_working_size(meta_model.float(), channels, max(height, width))
    if smallest is not None and smallest <= min(height, width):
        # The input was big enough, so the model fails for another reason.
        return ValueError(f"the forward pass failed in {err.layer!r}: {err.detail}")
    where = f"layer {err.layer!r}" if err.layer else "a layer"
    hint = (
        f"the smallest square input that works is {smallest}x{smallest}"
        if smallest
        else "no input up to the size limit works"
    )
    return ValueError(
        f"input {height}x{width} is too small for {source}: {where} has nothing left to "
        f"work on ({err.detail.splitlines()[0]}); {hint}"
    )


def _input_channels(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError("cannot tell the input channels: the model has no Conv2d")


def _float_dtype(model: nn.Module) -> torch.dtype:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _warn_small_maps(analysis: Analysis) -> None:
    stages = [r for r in analysis.records if re.fullmatch(r"layer\d+", r.name)]
    one_by_one = [r for r in stages if r.output_shape[-2:] == (1, 1)]
    if not one_by_one:
        return
    first = one_by_one[0]
    height, width = analysis.input_size
    message = (
        f"input {height}x{width} leaves {first.name} (stage {len(stages) - len(one_by_one) + 1}) "
        "and every stage after it with 1x1 maps: their 3x3 convs see one pixel and padding, so "
        "spatial detail is gone, and activation maps there are single pixels"
    )
    analysis.warnings.append(message)
    warnings.warn(message, stacklevel=3)


# -- shape arithmetic --------------------------------------------------------------------


def shape_arithmetic(record: LayerRecord) -> list[str]:
    """The output-size formula of a conv or pool with this record's numbers filled in.

    One line per axis when height and width differ, e.g.
    "floor((224 + 2*3 - 1*(7 - 1) - 1) / 2) + 1 = 112".
    """
    if record.type.startswith("AdaptiveAvgPool"):
        h, w = record.input_shapes[0][-2:]
        oh, ow = record.output_shape[-2:]
        return [f"adaptive average pool: {h} x {w} -> {oh} x {ow}, whatever the input size"]
    if record.kernel_size is None or not record.input_shapes:
        return []
    sides = list(zip(record.input_shapes[0][-2:], record.output_shape[-2:], strict=True))
    axes = ["H", "W"] if sides[0] != sides[1] else [""]
    lines = []
    for axis, (size_in, size_out) in zip(axes, sides, strict=False):
        k, s, p, d = record.kernel_size, record.stride, record.padding, record.dilation
        label = f"{axis}: " if axis else ""
        if record.type == "ZeroPadShortcut":
            lines.append(f"{label}one pixel in {s} kept: ceil({size_in} / {s}) = {size_out}")
            continue
        rounding = "ceil" if record.ceil_mode else "floor"
        lines.append(
            f"{label}{rounding}(({size_in} + 2*{p} - {d}*({k} - 1) - 1) / {s}) + 1 = {size_out}"
        )
    return lines


def torchinfo_summary(
    config_or_model: ResNetConfig | str | nn.Module, input_size: Any = None, batch: int = 1
) -> Any:
    """torchinfo's own view of the same network, as a second opinion on our numbers.

    It runs on a meta copy, so it costs no memory and leaves a model handed in untouched.
    Returns torchinfo's `ModelStatistics`; `str()` of it is torchinfo's table.
    """
    import torchinfo

    height, width = parse_input_size(input_size or natural_input_size(config_or_model))
    batch = _check_batch(batch)
    _, model, channels = _meta_skeleton(config_or_model, dtype=None)
    return torchinfo.summary(
        model,
        input_size=(batch, channels, height, width),
        device="meta",
        verbose=0,
        col_names=("output_size", "num_params", "mult_adds"),
    )
