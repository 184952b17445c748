"""Checkpoints in: safe reading, the configuration they hold, strict loading, published weights.

`read_checkpoint` reads a PyTorch file (zip or legacy format) or a safetensors file, choosing by
the content, never the name, and never unpickling anything but tensors and plain containers.
`infer_config` works out the `ResNetConfig` a state dict was made for; `load_checkpoint` builds
that network (or the one asked for) and loads the weights, all of them or none.

Limitations:
    Some choices leave no trace in the weights, so `infer_config` cannot see them: the stride of
    a bottleneck on its 1x1 rather than its 3x3 ("v1"), dilated stages, zero-initialised
    residuals, and whether a network without projection shortcuts adds zero-padded identities
    (option A) or none (a plain network). It assumes v1.5, no dilation and option A; a
    configuration given beside the checkpoint settles them.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import pickletools
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from resnet_viz.config import ResNetConfig, changed_fields
from resnet_viz.images import ASSETS
from resnet_viz.model import ResNet, build_model, resolve_config
from resnet_viz.presets import describe
from resnet_viz.sources import read_source

logger = logging.getLogger(__name__)

# Keys under which training scripts store the weights: torchvision's and timm's reference
# scripts, Lightning ("state_dict") and the PyTorch tutorials ("model_state_dict"). The
# averaged (EMA) weights come last: they are taken only where the plain ones are absent.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema", "ema")
# Wrappers inside wrappers ({"model": {"state_dict": ...}}) are undone this many levels deep.
MAX_WRAPPER_DEPTH = 6
# DataParallel and DistributedDataParallel add "module."; torch.compile adds "_orig_mod.".
PREFIXES = ("module.", "_orig_mod.")

# The most a checkpoint may take, as a file and unpacked: resnet152's float32 weights are 230
# MB, and 2 GiB leaves room for a training checkpoint with its optimizer state. The app's
# uploads stop sooner, at Streamlit's server.maxUploadSize (200 MB unless
# .streamlit/config.toml sets it).
MAX_CHECKPOINT_BYTES = 2 * 2**30
# torch.save stores tensors uncompressed, so a checkpoint zip that inflates more than this
# (and to more than _BOMB_FLOOR, so that a small well-compressed file passes) was built to.
MAX_COMPRESSION_RATIO = 100
_BOMB_FLOOR = 50 * 2**20

_ZIP_MAGIC = b"PK\x03\x04"
# torch.save's legacy format starts with a protocol-2 pickle of its magic number.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_EXPORT_HINT = (
    "where the model's code is available, save its weights alone with "
    "`torch.save(model.state_dict(), path)` and load that file"
)


@dataclass
class Checkpoint:
    """The tensors of a checkpoint, after wrappers and prefixes are undone.

    Attributes:
        state_dict: Parameter and buffer names to tensors, on the CPU.
        format: "pytorch zip", "pytorch legacy" or "safetensors".
        notices: What was undone or left out, in sentences for the user.
    """

    state_dict: dict[str, torch.Tensor]
    format: str
    notices: list[str] = field(default_factory=list)


def read_checkpoint(source: str | Path | bytes | BinaryIO) -> Checkpoint:
    """Read a checkpoint's tensors without running any code stored in it.

    Args:
        source: A path, the file's bytes (an upload), or an open binary file.

    Returns:
        The state dict on the CPU, with wrappers (`WRAPPER_KEYS`, nested or beside stray tensors)
        and prefixes ("module.", "_orig_mod.") undone.

    Raises:
        ValueError: For a file that is not a checkpoint, holds pickled objects other than
            tensors (a whole model, say; the message says how to export a state dict), has
            no tensors or tensors no network can load (meta, sparse, quantized, complex), or
            is larger than MAX_CHECKPOINT_BYTES, as a file or unpacked.
    """
    data = read_source(
        source, "checkpoint", "give the path of a weights file", MAX_CHECKPOINT_BYTES
    )
    kind = _sniff(data)
    if kind == "safetensors":
        raw: Any = _load_safetensors(data)
    else:
        raw = _load_torch(data, kind)

    notices: list[str] = []
    state_dict = _unwrap(raw, notices)
    state_dict = _strip_prefixes(state_dict, notices)
    _check_values(state_dict)
    logger.info("read a %s checkpoint with %d tensors", kind, len(state_dict))
    return Checkpoint(state_dict, kind, notices)


def _sniff(data: bytes) -> str:
    """The format from the first bytes; the file name is never consulted."""
    if data.startswith(_ZIP_MAGIC):
        return "pytorch zip"
    if data.startswith(_LEGACY_MAGIC):
        return "pytorch legacy"
    if len(data) >= 10:
        header_length = int.from_bytes(data[:8], "little")
        if 2 <= header_length <= len(data) - 8 and data[8:9] == b"{":
            return "safetensors"
    if data[:1] == b"\x80":
        raise ValueError(
            "this file is a plain Python pickle, not a PyTorch checkpoint; it is not opened, "
            f"because unpickling can run any code. {_capital(_EXPORT_HINT)}"
        )
    raise ValueError(
        "this file is not a checkpoint this program reads: it is neither a PyTorch file "
        "(torch.save, .pth/.pt/.bin) nor a safetensors file"
    )


def _load_safetensors(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"this safetensors file is damaged ({err}); export it again") from None


def _load_torch(data: bytes, kind: str) -> Any:
    if kind == "pytorch zip":
        _check_unpacked_size(data)
    if kind == "pytorch zip" and _is_torchscript(data):
        raise ValueError(
            f"this file is a TorchScript archive (torch.jit.save), which holds code; {_EXPORT_HINT}"
        )
    try:
        # weights_only: only tensors, numbers, strings and plain containers are rebuilt; any
        # other object is refused before it is created. map_location: CUDA-saved tensors
        # arrive on the CPU even on a machine without a GPU.
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(_refused(str(err), data, kind)) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        first = (str(err) or type(err).__name__).splitlines()[0].split(". ")[0]
        raise ValueError(
            f"this PyTorch file is damaged or not a checkpoint ({first[:160]}); save it again"
        ) from None


def _check_unpacked_size(data: bytes) -> None:
    """Refuse a zip whose entries would inflate past the limit, before torch.load unpacks it.

    The sizes are those the zip's central directory declares; PyTorch's reader checks that an
    entry inflates to its declared size, so a file that understates them fails to load.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        return  # torch.load says what is wrong with it
    sizes = f"{unpacked / 2**20:,.0f} MB from a {len(data) / 2**20:,.1f} MB file"
    if unpacked > MAX_CHECKPOINT_BYTES:
        raise ValueError(
            f"this checkpoint unpacks to {sizes}, over the limit of "
            f"{MAX_CHECKPOINT_BYTES // 2**20:,} MB; it is not opened"
        )
    if unpacked > _BOMB_FLOOR and unpacked > MAX_COMPRESSION_RATIO * len(data):
        raise ValueError(
            f"this checkpoint unpacks to {sizes}, more than {MAX_COMPRESSION_RATIO}:1; "
            "torch.save does not compress, so it is not opened. Save the weights again with "
            "torch.save"
        )


def _is_torchscript(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _refused(message: str, data: bytes, kind: str) -> str:
    """Why weights-only loading refused a file, and what to do, in one sentence."""
    # PyTorch words it "Unsupported global: GLOBAL x.y" for a class it does not know, and
    # "unsupported GLOBAL x.y whose module x is blocked" for os, posix, builtins and the like.
    match = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", message)
    found = _pickle_globals(_pickle_bytes(data, kind))
    what = (
        match.group(1)
        if match
        else next(
            (name for name in found if not name.startswith(("torch.", "collections."))),
            "not a tensor",
        )
    )
    # A model pickles its layers as torch.nn.modules classes; a string that merely mentions
    # them (in a payload's arguments, say) is no model.
    if any(name.startswith("torch.nn.modules.") for name in found):
        return (
            f"this file holds a whole pickled model ({what}), not a state dict; it is not "
            f"loaded, because unpickling a model can run any code. {_capital(_EXPORT_HINT)}"
        )
    return (
        f"this file holds Python objects besides tensors (it refers to {what}); it is not "
        f"loaded, because unpickling them could run any code. {_capital(_EXPORT_HINT)}"
    )


def _pickle_globals(stream: bytes) -> list[str]:
    """The "module.name" of every global a pickle stream refers to, read without unpickling.

    A legacy file holds several pickles in a row and then raw tensor bytes; reading stops at
    the first thing that is not a pickle.
    """
    found: list[str] = []
    buffer = io.BytesIO(stream)
    try:
        for _ in range(8):
            strings: list[str] = []
            for opcode, arg, _ in pickletools.genops(buffer):
                if opcode.name in ("GLOBAL", "INST") and isinstance(arg, str):
                    found.append(arg.replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
    except (ValueError, EOFError, IndexError, struct.error):
        pass  # the end of the pickles, or a damaged one: what was read so far stands
    return found


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pickle_bytes(data: bytes, kind: str) -> bytes:
    """The pickle stream of a checkpoint, to be searched as bytes (never unpickled)."""
    if kind != "pytorch zip":
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            return archive.read(names[0]) if names else b""
    except (zipfile.BadZipFile, KeyError):
        return b""


def _unwrap(raw: Any, notices: list[str]) -> dict[str, torch.Tensor]:
    """The dict of tensors inside whatever the training script saved around it.

    A wrapper key (see `WRAPPER_KEYS`) that holds tensors wins over tensors at its own level:
    PyTorch's ImageNet example saves `best_acc1` as a tensor beside its "state_dict".
    """
    current = raw
    path: list[str] = []
    others: list[str] = []
    stray: list[str] = []
    for depth in range(MAX_WRAPPER_DEPTH + 1):
        if not isinstance(current, Mapping):
            raise ValueError(
                f"this checkpoint holds a {type(current).__name__}, not a dict of named "
                f"tensors; {_EXPORT_HINT}"
            )
        remaining = MAX_WRAPPER_DEPTH - depth
        inner = next(
            (k for k in WRAPPER_KEYS if remaining and _holds_tensors(current.get(k), remaining)),
            None,
        )
        if inner is None:
            break
        path.append(repr(inner))
        others += [str(k) for k in current if k != inner]
        stray += [str(k) for k in current if k != inner and isinstance(current[k], torch.Tensor)]
        current = current[inner]
    if path:
        notices.append(
            f"took the weights from the checkpoint's {' > '.join(path)} entry"
            + (f" (left out: {_few(others, 6)})" if others else "")
            + (f"; the tensors beside it ({_few(stray)}) are not weights" if stray else "")
        )

    tensors = {str(k): v for k, v in current.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        keys = ", ".join(map(repr, list(current)[:6])) or "none"
        raise ValueError(
            f"this checkpoint has no tensors at its top level and none under "
            f"{', '.join(map(repr, WRAPPER_KEYS))}, {MAX_WRAPPER_DEPTH} levels deep at most "
            f"(its keys: {keys})"
        )
    dropped = [str(k) for k, v in current.items() if not isinstance(v, torch.Tensor)]
    if dropped:
        notices.append(f"left out {len(dropped)} entries that are not tensors: {_few(dropped)}")
    return tensors


def _holds_tensors(value: Any, depth: int) -> bool:
    """Whether `value` is a dict with tensors in it, at most `depth` wrapper levels down."""
    if not isinstance(value, Mapping):
        return False
    if any(isinstance(v, torch.Tensor) for v in value.values()):
        return True
    return depth > 1 and any(_holds_tensors(value.get(k), depth - 1) for k in WRAPPER_KEYS)


# What no network can load, with what to do instead. Checked before any loading, so the user
# sees one message instead of PyTorch's error from the middle of load_state_dict.
_UNLOADABLE = (
    (
        lambda t: t.is_meta,
        "holds no values (meta tensors, shapes only)",
        "save the weights of a network built on a real device (cpu or cuda)",
    ),
    (
        lambda t: t.layout != torch.strided,
        "holds sparse tensors",
        "save them dense, with tensor.to_dense()",
    ),
    (
        lambda t: t.is_quantized,
        "holds quantized tensors",
        "save them as floats, with tensor.dequantize()",
    ),
    (
        lambda t: t.is_complex(),
        "holds complex values",
        "a ResNet's weights are real numbers; save the network's own state dict",
    ),
)


def _check_values(state_dict: Mapping[str, torch.Tensor]) -> None:
    """Refuse tensors that load_state_dict cannot copy into a network, naming a few."""
    for test, what, fix in _UNLOADABLE:
        bad = [key for key, value in state_dict.items() if test(value)]
        if bad:
            raise ValueError(f"this checkpoint {what} ({_few(bad, 3)}); {fix}")


def _strip_prefixes(state_dict: dict[str, torch.Tensor], notices: list[str]) -> dict[str, Any]:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if all(key.startswith(prefix) for key in state_dict):
                state_dict = {key[len(prefix) :]: value for key, value in state_dict.items()}
                notices.append(f"removed the prefix {prefix!r} from every key")
                changed = True
    return state_dict


def _few(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


# -- the configuration a state dict holds ----------------------------------------------

_BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.")


def infer_config(state_dict: Mapping[str, torch.Tensor]) -> ResNetConfig:
    """The configuration whose network has exactly these keys and shapes.

    Reads the stem, the stages and their blocks, the widths, ResNeXt groups and width per
    group, squeeze-and-excitation, pre-activation, the shortcut kind, the input channels and
    the number of classes. What the weights cannot show is listed in the module docstring.

    Raises:
        ValueError: If the state dict is not one of a ResNet this project builds; the message
            says which part did not fit.
    """
    shapes = {key: tuple(value.shape) for key, value in state_dict.items()}
    stem, stem_width, in_channels = _infer_stem(shapes)
    blocks_per_stage = _infer_stages(shapes)
    block = "bottleneck" if "layer1.0.conv3.weight" in shapes else "basic"
    expansion = 4 if block == "bottleneck" else 1
    last_conv = "conv3" if block == "bottleneck" else "conv2"
    widths = tuple(
        _shape(shapes, f"layer{i + 1}.0.{last_conv}.weight")[0] // expansion
        for i in range(len(blocks_per_stage))
    )
    groups, width_per_group = 1, 64
    if block == "bottleneck":
        inner = _shape(shapes, "layer1.0.conv2.weight")
        groups = inner[0] // inner[1]
        width_per_group = inner[0] * 64 // (widths[0] * groups)
    fields: dict[str, Any] = {
        "block": block,
        "blocks_per_stage": blocks_per_stage,
        "widths": widths,
        "groups": groups,
        "width_per_group": width_per_group,
        "stem": stem,
        "stem_width": stem_width,
        "shortcut": _infer_shortcut(shapes, blocks_per_stage),
        "preact": "final_bn.weight" in shapes,
        "se": "layer1.0.se.fc1.weight" in shapes,
        "in_channels": in_channels,
        "num_classes": _shape(shapes, "fc.weight")[0],
    }
    try:
        config = ResNetConfig(**fields)
    except ValueError as err:
        if fields["shortcut"] != "A":
            raise ValueError(f"these weights describe no valid ResNet: {err}") from None
        # Channels shrink somewhere, so option A is impossible: a plain network.
        config = ResNetConfig(**{**fields, "shortcut": "B", "residual": False})

    mismatch = compare_state_dict(config, state_dict)
    if mismatch:
        raise ValueError(
            f"these weights look like {describe(config)} but do not fit it: {mismatch.describe()}"
        )
    return config


def _shape(shapes: dict[str, tuple[int, ...]], key: str) -> tuple[int, ...]:
    if key not in shapes:
        sample = _few(sorted(shapes)[:8], 4)
        raise ValueError(
            f"these weights are not those of a ResNet this program builds: there is no "
            f"{key!r} (the keys start {sample}); torchvision and timm ResNets load"
        )
    return shapes[key]


def _infer_stem(shapes: dict[str, tuple[int, ...]]) -> tuple[str, int, int]:
    """(stem kind, stem width, input channels)."""
    if "conv1.0.weight" in shapes:
        first = _shape(shapes, "conv1.0.weight")
        middle = _shape(shapes, "conv1.3.weight")
        width = _shape(shapes, "conv1.6.weight")[0]
        kind = "deep" if first[0] == middle[0] else "deep_tiered"
        return kind, width, first[1]
    conv = _shape(shapes, "conv1.weight")
    if len(conv) != 4 or conv[-1] not in (3, 7):
        raise ValueError(
            f"the first convolution has shape {conv}; a ResNet stem has a 7x7 (ImageNet) or "
            "3x3 (CIFAR) kernel"
        )
    return ("imagenet" if conv[-1] == 7 else "cifar"), conv[0], conv[1]


def _infer_stages(shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    blocks: dict[int, set[int]] = {}
    for key in shapes:
        match = _BLOCK_KEY.match(key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if not blocks:
        _shape(shapes, "layer1.0.conv1.weight")  # raises with the keys it found
    stages = sorted(blocks)
    if stages != list(range(1, len(stages) + 1)):
        raise ValueError(f"the stages are numbered {stages}; expected layer1, layer2, ... in turn")
    counts = []
    for stage in stages:
        indices = sorted(blocks[stage])
        if indices != list(range(len(indices))):
            raise ValueError(f"layer{stage} has blocks {indices}; expected 0, 1, ... in turn")
        counts.append(len(indices))
    return tuple(counts)


def _infer_shortcut(shapes: dict[str, tuple[int, ...]], blocks_per_stage: tuple[int, ...]) -> str:
    with_projection = 0
    for stage, count in enumerate(blocks_per_stage, start=1):
        for index in range(count):
            prefix = f"layer{stage}.{index}.downsample."
            if len(shapes.get(prefix + "1.weight", ())) == 4:
                return "D"  # the conv sits after an average pool, at index 1
            if prefix + "0.weight" in shapes:
                with_projection += 1
    if with_projection == sum(blocks_per_stage):
        return "C"
    return "B" if with_projection else "A"


# -- comparing and loading -------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """How a state dict differs from a network's, key by key.

    Attributes:
        missing: Keys the network has and the checkpoint lacks.
        unexpected: Keys the checkpoint has and the network lacks.
        wrong_shape: (key, shape in the checkpoint, shape in the network).
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    wrong_shape: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong_shape)

    def only_classifier(self) -> bool:
        """The only differences are the classifier's shapes: another number of classes."""
        return (
            not self.missing
            and not self.unexpected
            and bool(self.wrong_shape)
            and all(key in ("fc.weight", "fc.bias") for key, _, _ in self.wrong_shape)
        )

    def describe(self, limit: int = 5) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({_few(list(self.missing), limit)})")
        if self.unexpected:
            parts.append(
                f"{len(self.unexpected)} unexpected ({_few(list(self.unexpected), limit)})"
            )
        if self.wrong_shape:
            shown = [
                f"{key}: checkpoint {tuple(ours)}, network {tuple(theirs)}"
                for key, ours, theirs in self.wrong_shape
            ]
            parts.append(f"{len(shown)} with the wrong shape ({_few(shown, limit)})")
        return "; ".join(parts) or "no differences"


class WeightsMismatchError(ValueError):
    """A checkpoint that does not fit the network; `mismatch` lists the keys."""

    def __init__(self, message: str, mismatch: Mismatch) -> None:
        super().__init__(message)
        self.mismatch = mismatch


def compare_state_dict(
    network: ResNetConfig | str | nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> Mismatch:
    """Keys and shapes of `state_dict` against those of a network (built on meta if a config)."""
    model = network if isinstance(network, nn.Module) else build_model(network, device="meta")
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    given = {key: tuple(value.shape) for key, value in state_dict.items()}
    # Checkpoints from before PyTorch 0.4.1 lack BatchNorm's batch counter; BatchNorm fills it
    # in itself when loading, so its absence is no mismatch.
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    return Mismatch(
        missing=tuple(missing),
        unexpected=tuple(k for k in given if k not in expected),
        wrong_shape=tuple(
            (k, given[k], expected[k]) for k in expected if k in given and given[k] != expected[k]
        ),
    )


def load_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Load every tensor into `model`, or raise and leave the model unchanged.

    Raises:
        WeightsMismatchError: If any key is missing, unexpected or of the wrong shape; nothing
            is loaded then, so a half-loaded network is never shown as loaded.
    """
    mismatch = compare_state_dict(model, state_dict)
    if mismatch:
        raise WeightsMismatchError(
            f"the weights in {source} do not fit this network: {mismatch.describe()}", mismatch
        )
    model.load_state_dict(dict(state_dict), strict=True)
    if isinstance(model, ResNet):
        model.weights_source = source


@dataclass
class LoadedWeights:
    """A network with a checkpoint's weights in it.

    Attributes:
        model: The network, in eval mode, its `weights_source` set.
        config: Its configuration.
        inferred: The configuration the checkpoint's shapes describe (None if they describe
            none this project builds, but the configuration asked for fits them).
        checkpoint: The tensors as read, with the notices about wrappers and prefixes.
        notices: Everything the user should be told, in sentences.
    """

    model: ResNet
    config: ResNetConfig
    inferred: ResNetConfig | None
    checkpoint: Checkpoint
    notices: list[str]


def config_for_checkpoint(
    state_dict: Mapping[str, torch.Tensor], requested: ResNetConfig | str | None = None
) -> tuple[ResNetConfig, ResNetConfig | None, list[str]]:
    """The configuration to build for a checkpoint: (chosen, inferred, notices).

    With no request, the one the checkpoint holds. With one, the request where its keys and
    shapes match; where only the classifier differs, the request with the checkpoint's number
    of classes (and a notice); any other difference raises, naming what the checkpoint holds.
    """
    try:
        inferred: ResNetConfig | None = infer_config(state_dict)
        inference_error = ""
    except ValueError as err:
        inferred, inference_error = None, str(err)
    if requested is None:
        if inferred is None:
            raise ValueError(inference_error)
        return inferred, inferred, []

    wanted = resolve_config(requested)
    mismatch = compare_state_dict(wanted, state_dict)
    if not mismatch:
        return wanted, inferred, []
    if mismatch.only_classifier():
        classes = int(state_dict["fc.weight"].shape[0])
        adopted = wanted.replace(num_classes=classes)
        if not compare_state_dict(adopted, state_dict):
            return (
                adopted,
                inferred,
                [
                    f"the checkpoint has {classes} classes, not {wanted.num_classes}; "
                    f"using {classes}"
                ],
            )
    if inferred is None:
        raise WeightsMismatchError(
            f"the checkpoint does not fit {describe(wanted)}: {mismatch.describe(3)}", mismatch
        )
    differences = ", ".join(
        f"{name}={getattr(inferred, name)!r}" for name in changed_fields(wanted, inferred)
    )
    raise WeightsMismatchError(
        f"the checkpoint holds {describe(inferred)} (token {inferred.to_url_token()}), not "
        f"{describe(wanted)}: it has {differences}; leave out the model to use the "
        "checkpoint's own",
        mismatch,
    )


def load_checkpoint(
    source: str | Path | bytes | BinaryIO,
    config: ResNetConfig | str | None = None,
    device: str | torch.device = "cpu",
    name: str | None = None,
) -> LoadedWeights:
    """Read a checkpoint, settle the configuration, build the network and load it, strictly.

    Args:
        source: A path, bytes or an open file, of any format `read_checkpoint` takes.
        config: The network wanted; None takes the one the checkpoint holds.
        device: Where the network is built.
        name: How to name the weights to the user (an upload's file name); the path if None.
    """
    label = name or (str(source) if isinstance(source, (str, Path)) else "the checkpoint")
    checkpoint = read_checkpoint(source)
    chosen, inferred, notices = config_for_checkpoint(checkpoint.state_dict, config)
    model = build_model(chosen, device=device)
    load_state_dict(model, checkpoint.state_dict, label)
    return LoadedWeights(model, chosen, inferred, checkpoint, checkpoint.notices + notices)


# -- torchvision's published weights ---------------------------------------------------


@dataclass(frozen=True)
class PublishedWeights:
    """One set of torchvision's ImageNet weights for a preset.

    Attributes:
        preset: Our preset name, which is torchvision's model name.
        name: torchvision's name for the weights, "IMAGENET1K_V1" or "IMAGENET1K_V2".
        url: Where torchvision publishes the file.
        acc1, acc5: ImageNet top-1 and top-5 accuracy, in percent.
        resize_size, crop_size: The preprocessing the weights expect (see `images.prepare`).
    """

    preset: str
    name: str
    url: str
    acc1: float
    acc5: float
    resize_size: int
    crop_size: int

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str | None:
        """The start of the file's SHA-256, which torchvision puts in the file name."""
        match = re.search(r"-([0-9a-f]{8,})\.", self.file_name)
        return match.group(1) if match else None


def published_weights(preset: str | None = None) -> list[PublishedWeights]:
    """torchvision's published weights, for one preset or all; [] for a preset with none."""
    table = json.loads((ASSETS / "torchvision_resnet_weights.json").read_text(encoding="utf-8"))
    return [
        PublishedWeights(
            preset=name,
            name=entry["weights"],
            url=entry["url"],
            acc1=float(entry["imagenet_acc1"]),
            acc5=float(entry["imagenet_acc5"]),
            resize_size=int(entry["resize_size"][0]),
            crop_size=int(entry["crop_size"][0]),
        )
        for name, entries in table.items()
        if preset is None or name == preset
        for entry in entries
    ]


def cached_weights_path(entry: PublishedWeights) -> Path:
    """Where torch.hub keeps the file: $TORCH_HOME/hub/checkpoints, as torchvision does."""
    return Path(torch.hub.get_dir()) / "checkpoints" / entry.file_name


def fetch_published_weights(
    entry: PublishedWeights, download: bool = True, progress: bool = True
) -> Path:
    """The path of the weights in the torch hub cache, downloading them first if allowed.

    Args:
        entry: Which weights, from `published_weights`.
        download: Fetch the file when it is not in the cache; False only looks.
        progress: Show torch.hub's progress bar on standard error while downloading.

    Raises:
        ValueError: When the file is not cached and cannot be (or may not be) downloaded; the
            message gives the address and where to put the file by hand.
    """
    path = cached_weights_path(entry)
    if path.is_file():
        logger.info("found %s %s in the cache at %s", entry.preset, entry.name, path)
        return path
    where = (
        f"{entry.preset} {entry.name} is not in the torch hub cache ({path.parent}); when this "
        f"machine is online, download {entry.url} and save it there as {entry.file_name}"
    )
    if not download:
        raise ValueError(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s to %s", entry.url, path)
    try:
        # torch.hub writes to a temporary file and renames it only once the hash matches, so
        # an interrupted download never leaves a file that looks complete.
        torch.hub.download_url_to_file(
            entry.url, str(path), hash_prefix=entry.hash_prefix, progress=progress
        )
    except (OSError, RuntimeError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"the download failed ({reason}); {where}") from None
    return path


__all__ = [
    "Checkpoint",
    "LoadedWeights",
    "Mismatch",
    "PublishedWeights",
    "WeightsMismatchError",
    "cached_weights_path",
    "compare_state_dict",
    "config_for_checkpoint",
    "fetch_published_weights",
    "infer_config",
    "load_checkpoint",
    "load_state_dict",
    "published_weights",
    "read_checkpoint",
]
