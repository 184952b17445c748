"""Run one forward pass and record every module call: shapes, receptive fields, live memory.

Module hooks say which module ran; a `TorchFunctionMode` sees every tensor operation in between,
including the ones that are not modules (the residual addition, option A's subsampling, SE's
rescaling), so receptive fields follow every path through the skip connections.

Limitations:
    Receptive fields are tracked along the height axis; every ResNet here has square kernels,
    strides and padding. An operation this module does not know that changes the spatial size
    (an interpolation, say) leaves the receptive field unknown from there on.
"""

from __future__ import annotations

import itertools
import logging
import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Field:
    """Receptive field of output position 0 along one axis, in input pixels.

    `lo` and `hi` are the first and last input pixels that position 0 can see (negative or past
    the edge where padding is involved); position i sees the same window shifted by i * jump.
    `global_context` is set once a global pool has fed in, as an SE gate does: from there on
    every output depends a little on the whole image, and `lo`/`hi` describe the convolutional
    field only.
    """

    lo: float
    hi: float
    jump: float
    global_context: bool = False

    @property
    def size(self) -> int:
        return int(round(self.hi - self.lo + 1))

    @property
    def start(self) -> float:
        """Centre of position 0's field."""
        return (self.lo + self.hi) / 2

    def window(self, kernel: int, stride: int, padding: int, dilation: int = 1) -> Field:
        """The field after a sliding window (convolution or pooling)."""
        span = dilation * (kernel - 1)
        return Field(
            self.lo - padding * self.jump,
            self.hi + (span - padding) * self.jump,
            self.jump * stride,
            self.global_context,
        )

    def shifted(self, offset: float, step: int = 1) -> Field:
        """Position 0 moved by `offset` input positions, neighbours `step` positions apart."""
        return Field(
            self.lo + offset * self.jump,
            self.hi + offset * self.jump,
            self.jump * step,
            self.global_context,
        )

    def union(self, other: Field) -> Field:
        """Where two paths meet (an addition), position 0 sees what either path sees."""
        if not math.isclose(self.jump, other.jump):
            logger.warning(
                "paths with jumps %s and %s meet; using the larger", self.jump, other.jump
            )
        return Field(
            min(self.lo, other.lo),
            max(self.hi, other.hi),
            max(self.jump, other.jump),
            self.global_context or other.global_context,
        )


PIXEL = Field(0.0, 0.0, 1.0)


@dataclass
class Call:
    """One module call as the tracer saw it."""

    module: nn.Module
    name: str
    call_index: int
    input_shapes: list[tuple[int, ...]]
    first_inner: int = 0  # index in `Tracer.calls` of the first call made inside this one
    started: int = 0  # how many calls started before this one
    output_shape: tuple[int, ...] = ()
    field: Field | None = None


def _pair(value: Any) -> int:
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _window_of(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[int, int, int, int] | None:
    """(kernel, stride, padding, dilation) of a sliding-window op, or None for other ops."""
    # Names rather than identities: functional, builtin and Tensor-method forms all share them.
    name = getattr(func, "__name__", "")
    if name == "conv2d":
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        padding = _arg(args, kwargs, 4, "padding", 0)
        if isinstance(padding, str):
            raise ValueError(f"padding={padding!r} convolutions are not supported by the tracer")
        return (
            int(weight.shape[-2]),
            _pair(_arg(args, kwargs, 3, "stride", 1)),
            _pair(padding),
            _pair(_arg(args, kwargs, 5, "dilation", 1)),
        )
    if name in ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "avg_pool2d"):
        kernel = _pair(_arg(args, kwargs, 1, "kernel_size", None))
        stride = _arg(args, kwargs, 2, "stride", None)
        stride = kernel if stride in (None, [], ()) else _pair(stride)
        dilation = 1 if name == "avg_pool2d" else _pair(_arg(args, kwargs, 4, "dilation", 1))
        return kernel, stride, _pair(_arg(args, kwargs, 3, "padding", 0)), dilation
    return None


# Elementwise ops whose output has the broadcast shape of their tensor operands.
_ELEMENTWISE = {"relu", "sigmoid", "add", "__add__", "mul", "__mul__", "batch_norm"}


def _meta_shortcut(func: Callable[..., Any], args: tuple[Any, ...]) -> Tensor | None:
    """The output of an elementwise op on meta tensors, without running it.

    On meta a result is only a shape, and PyTorch works out elementwise shapes through Python
    reference implementations, which are most of a meta pass's time. Outside autograd the
    shape is all that matters; with autograd on, the real op runs so that backward sees it.
    """
    name = getattr(func, "__name__", "")
    if name not in _ELEMENTWISE or torch.is_grad_enabled():
        return None
    tensors = [a for a in args if isinstance(a, Tensor)]
    if not tensors or not all(t.is_meta for t in tensors):
        return None
    if name == "batch_norm":
        return torch.empty_like(tensors[0])
    if func is not Tensor.__add__ and len(tensors) < len(args):
        return None  # a scalar operand may change the dtype; let PyTorch decide
    shape = torch.broadcast_shapes(*(t.shape for t in tensors[:2]))
    return torch.empty(shape, dtype=tensors[0].dtype, device="meta")


class _MetaBatchNorm(torch.autograd.Function):
    """Training-mode BatchNorm on meta: the output's shape, and what PyTorch's version saves.

    For backward, real BatchNorm saves its input, its weight, the running statistics and two
    per-channel statistics; weight and running statistics are model state, so this saves the
    input and the two.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor | None) -> Tensor:
        channels = x.shape[1]
        ctx.save_for_backward(x, x.new_empty(channels), x.new_empty(channels))
        return torch.empty_like(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


class _MetaReLU(torch.autograd.Function):
    """ReLU on meta: real ReLU saves its output, to know where the gradient passes."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = torch.empty_like(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


class _MetaAdd(torch.autograd.Function):
    """Addition on meta: real addition saves nothing."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor) -> Tensor:
        return torch.empty(torch.broadcast_shapes(a.shape, b.shape), dtype=a.dtype, device="meta")

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        return grad, grad


class _OpMode(TorchFunctionMode):
    """A function mode that hands every torch operation to `run`, kwargs always a dict."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        return self.run(func, args, kwargs or {})

    def run(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must say how it runs an operation")


class MetaTrainingMode(_OpMode):
    """Within it, a training pass on meta skips the arithmetic of its commonest ops.

    PyTorch works out the shapes of BatchNorm, ReLU and addition on meta through Python
    reference implementations, which are most of a meta pass's time although the result is
    only a shape. The stand-ins save for backward exactly what the real ops save, so that
    `saved_for_backward` counts the same bytes; the tests compare the two on several networks.
    """

    def run(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = getattr(func, "__name__", "")
        tensors = [a for a in args if isinstance(a, Tensor)]
        if tensors and all(t.is_meta for t in tensors) and not kwargs.get("inplace"):
            if name == "batch_norm":
                weight = args[3] if len(args) > 3 else kwargs.get("weight")
                return _MetaBatchNorm.apply(args[0], weight)
            if name == "relu" and len(args) == 1:
                return _MetaReLU.apply(args[0])
            if name in ("add", "__add__") and len(tensors) == 2 == len(args) and not kwargs:
                return _MetaAdd.apply(*args)
        return func(*args, **kwargs)


class _FieldMode(_OpMode):
    """Propagates receptive fields from tensor to tensor, and counts live activation bytes."""

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def run(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out: Any = _meta_shortcut(func, args)
        if out is None:
            out = func(*args, **kwargs)
        if isinstance(out, Tensor):
            self.tracer.note_output(func, args, kwargs, out)
        return out


class Tracer:
    """Record module calls of one forward pass; use as `with Tracer(model) as t: model(x)`."""

    def __init__(self, model: nn.Module, track_memory: bool = False) -> None:
        self.calls: list[Call] = []
        self.names = {module: name for name, module in model.named_modules() if name}
        self.track_memory = track_memory
        self.live_bytes = 0
        self.peak_bytes = 0
        self._fields: dict[int, tuple[weakref.ref[Tensor], Field]] = {}
        self._stack: list[Call] = []
        self._counts: dict[str, int] = {}
        self._started = 0
        self._handles: list[Any] = []

    # -- receptive fields ----------------------------------------------------------------

    def field_of(self, tensor: Tensor) -> Field | None:
        entry = self._fields.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1]

    def set_field(self, tensor: Tensor, value: Field) -> None:
        self._fields[id(tensor)] = (weakref.ref(tensor), value)

    def note_output(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], out: Tensor
    ) -> None:
        inputs = [t for t in (*args, *kwargs.values()) if isinstance(t, Tensor)]
        if self.track_memory and out._base is None and all(out is not t for t in inputs):
            self._count_live(out)

        traced = [(t, f) for t in inputs if (f := self.field_of(t)) is not None]
        if not traced:
            return
        if out.dim() < 3:
            # flatten, linear: each output still sees what the pooled map saw
            self.set_field(out, self._merge([f for _, f in traced], broadcast=False))
            return

        first, first_field = traced[0]
        window = _window_of(func, args, kwargs)
        if window is not None:
            self.set_field(out, first_field.window(*window))
        elif func is Tensor.__getitem__:
            self.set_field(out, self._sliced(first_field, args[1]))
        elif getattr(func, "__name__", "") == "pad" and len(args[1]) >= 4:
            self.set_field(out, first_field.shifted(-args[1][2]))  # rows padded on top
        elif out.shape[-2:] == (1, 1) and first.dim() >= 3 and first.shape[-2:] != (1, 1):
            # A global reduction (average pool, SE's squeeze): one value sees the whole map.
            reach = (first.shape[-2] - 1) * first_field.jump
            self.set_field(
                out,
                Field(
                    first_field.lo, first_field.hi + reach, first_field.jump * first.shape[-2], True
                ),
            )
        else:
            same = [f for t, f in traced if t.dim() >= 3 and t.shape[-2:] == out.shape[-2:]]
            if not same:
                logger.warning(
                    "%s changes the spatial size in a way the tracer does not know; receptive "
                    "fields after it are unknown",
                    getattr(func, "__name__", func),
                )
                return
            # Operands of size 1x1 broadcast over the map (SE's gate): they add whole-image
            # context, flagged, not extent; the trunk's field is what a student expects to see.
            broadcast = len(same) < len(traced)
            self.set_field(
                out, self._merge(same, broadcast or any(f.global_context for _, f in traced))
            )

    @staticmethod
    def _merge(fields: list[Field], broadcast: bool) -> Field:
        merged = fields[0]
        for other in fields[1:]:
            merged = merged.union(other)
        if broadcast and not merged.global_context:
            merged = Field(merged.lo, merged.hi, merged.jump, True)
        return merged

    @staticmethod
    def _sliced(before: Field, index: Any) -> Field:
        # x[:, :, a::s, b::t]: position 0 is input position a, and neighbours are s apart.
        if not isinstance(index, tuple) or len(index) < 3 or not isinstance(index[2], slice):
            return before
        rows = index[2]
        return before.shifted(rows.start or 0, rows.step or 1)

    # -- live memory ---------------------------------------------------------------------

    def _count_live(self, tensor: Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        self.live_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        weakref.finalize(tensor, self._release, size)

    def _release(self, size: int) -> None:
        self.live_bytes -= size

    # -- module hooks --------------------------------------------------------------------

    def _pre_hook(self, module: nn.Module, inputs: tuple[Any, ...]) -> None:
        name = self.names[module]
        index = self._counts.get(name, 0)
        self._counts[name] = index + 1
        shapes = [tuple(t.shape) for t in inputs if isinstance(t, Tensor)]
        call = Call(module, name, index, shapes, first_inner=len(self.calls), started=self._started)
        self._started += 1
        self._stack.append(call)

    def _hook(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        call = self._stack.pop()
        if isinstance(output, Tensor):
            call.output_shape = tuple(output.shape)
            call.field = self.field_of(output)
        self.calls.append(call)

    @property
    def current_module(self) -> str | None:
        """The innermost module running, for error messages."""
        return self._stack[-1].name if self._stack else None

    def __enter__(self) -> Tracer:
        for module in self.names:
            self._handles.append(module.register_forward_pre_hook(self._pre_hook))
            self._handles.append(module.register_forward_hook(self._hook))
        self._mode = _FieldMode(self)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def start(self, x: Tensor) -> Tensor:
        """Mark `x` as the network input: each pixel sees itself."""
        self.set_field(x, PIXEL)
        if self.track_memory:
            self._count_live(x)
        return x


@contextmanager
def saved_for_backward(model: nn.Module) -> Iterator[dict[str, int]]:
    """Count the bytes autograd keeps for backward, the model's own tensors excluded.

    Parameters and buffers (BatchNorm's running statistics) are model state, not activations.
    A tensor saved by several operations (a ReLU's output that is also a conv's input, say) is
    counted once; views count as their base.
    """
    state = {id(t) for t in itertools.chain(model.parameters(), model.buffers())}
    seen: dict[int, weakref.ref[Tensor]] = {}
    totals = {"bytes": 0}

    def pack(tensor: Tensor) -> Tensor:
        base = tensor if tensor._base is None else tensor._base
        if id(base) in state or (id(base) in seen and seen[id(base)]() is base):
            return tensor
        seen[id(base)] = weakref.ref(base)
        totals["bytes"] += base.numel() * base.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield totals


__all__ = ["Call", "Field", "MetaTrainingMode", "Tracer", "saved_for_backward"]
