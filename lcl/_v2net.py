"""LCL-V2Net: a frozen LCL front end + a ResNet-style back end for recognition (configs in
``lcl._recognition_config``; the task, training and evaluation under corruptions in ``lcl._recognition``)."""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from data._checks import check_bool, check_choice, check_int, check_nbytes, check_seed

from ._model import V1V2
from ._recognition_config import FRONT_ENDS, MAX_CHANNELS, BackEndConfig

__all__ = ["BackEnd", "V2Net", "PixelStem", "build_v2net"]

#: Largest class count accepted by the networks here.
MAX_CLASSES = 1_000_000


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class BackEnd(nn.Module):
    """ResNet-style classifier on a feature map: ``stem``, ``layers.0`` ... ``layers.k``, ``pool``, ``fc``.

    Parameters
    ----------
    in_channels
        Channels of the input feature map.
    n_classes
        Output classes.
    config
        Widths and blocks.

    Raises
    ------
    TypeError, ValueError
        For channel or class counts that are not positive integers (at most 65536 channels, 10^6 classes), a
        ``config`` that is not a :class:`BackEndConfig`, or weights that would not fit in memory.

    Examples
    --------
    >>> import torch, lcl
    >>> b = lcl.BackEnd(64, 10, lcl.BackEndConfig(widths=(16, 32), blocks=1))
    >>> tuple(b(torch.rand(2, 64, 7, 7)).shape)
    (2, 10)
    """

    def __init__(self, in_channels: int, n_classes: int, config: BackEndConfig | None = None):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
        n_classes = check_int("n_classes", n_classes, low=1, high=MAX_CLASSES)
        config = BackEndConfig() if config is None else config
        if not isinstance(config, BackEndConfig):
            raise TypeError(f"config must be a BackEndConfig, got {type(config).__name__}")
        w0 = config.widths[0]
        n_weights = 9 * in_channels * w0 + config.widths[-1] * n_classes + sum(
            18 * w * w * config.blocks for w in config.widths)
        check_nbytes("config", config, 4.0 * n_weights, what=f"a back end of about {n_weights:.3g} weights")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w0, 3, padding=1, bias=False), nn.BatchNorm2d(w0),
                                  nn.ReLU())
        layers, cin = [], w0
        for i, w in enumerate(config.widths):
            blocks = [_Block(cin, w, 2 if i > 0 else 1)] + [_Block(w, w, 1) for _ in range(config.blocks - 1)]
            layers.append(nn.Sequential(*blocks))
            cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


class PixelStem(nn.Module):
    """Standard ResNet stem on raw pixels: 7x7 conv stride 2, batch norm, ReLU, 3x3 max-pool stride 2.

    Parameters
    ----------
    in_channels
        Image channels (1 to 65536).
    channels
        Output channels (1 to 65536).

    Examples
    --------
    >>> import torch, lcl
    >>> tuple(lcl.PixelStem(1, 32)(torch.rand(1, 1, 48, 48)).shape)
    (1, 32, 12, 12)
    """

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
        channels = check_int("channels", channels, low=1, high=MAX_CHANNELS)
        check_nbytes("channels", channels, 4.0 * 49 * in_channels * channels, what="the stem's weights")
        self.conv = nn.Conv2d(in_channels, channels, 7, stride=2, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.bn(self.conv(x))))


class V2Net(nn.Module):
    """Front end (``front_end``) followed by a ResNet-style back end (``backend``).

    With ``frozen=True`` the front end stays in eval mode, has no trainable parameters and runs under
    ``torch.no_grad``. Record with ``data.record(net, stimuli, layers=["front_end.stage2", "backend.layers.0"])``.

    Parameters
    ----------
    front_end
        A :class:`lcl.V1V2`, a :class:`PixelStem` or any module mapping images to a feature map.
    backend
        The classifier.
    frozen
        Freeze the front end.

    Examples
    --------
    >>> import torch, lcl
    >>> front = lcl.V1V2(lcl.LCLConfig.preset("demo").model)
    >>> net = lcl.V2Net(front, lcl.BackEnd(64, 5, lcl.BackEndConfig(widths=(16,), blocks=1)), frozen=True)
    >>> tuple(net(torch.rand(2, 1, 48, 48)).shape), net.front_end.stage1.conv.weight.requires_grad
    ((2, 5), False)
    """

    def __init__(self, front_end: nn.Module, backend: BackEnd, *, frozen: bool):
        super().__init__()
        if not isinstance(front_end, nn.Module):
            raise TypeError(f"front_end must be a torch.nn.Module, got {type(front_end).__name__}")
        if not isinstance(backend, nn.Module):
            raise TypeError(f"backend must be a torch.nn.Module (a BackEnd), got {type(backend).__name__}")
        frozen = check_bool("frozen", frozen)
        self.front_end = front_end
        self.backend = backend
        self.frozen = frozen
        if frozen:
            self.front_end.requires_grad_(False)
            self.front_end.eval()

    def train(self, mode: bool = True) -> V2Net:
        super().train(mode)
        if self.frozen:
            self.front_end.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            with torch.no_grad():
                h = self.front_end(x)
        else:
            h = self.front_end(x)
        return self.backend(h)


def _front_channels(front: nn.Module) -> int:
    if isinstance(front, V1V2):
        return front.config.stage2.channels
    return int(front.out_channels)


def build_v2net(kind: str, lcl_model: V1V2 | None, backend: BackEndConfig, n_classes: int, *, seed: int = 0,
                in_channels: int = 1) -> V2Net:
    """Build the network for one front end (see :data:`FRONT_ENDS`) with a freshly initialised back end.

    Parameters
    ----------
    kind
        ``"lcl"`` (needs ``lcl_model``, used frozen), ``"pixels"`` or ``"supervised"`` (architecture of
        ``lcl_model``, or the default, trained from scratch).
    lcl_model
        The trained LCL model.
    backend
        Back-end architecture.
    n_classes
        Number of classes.
    seed
        Seeds the new weights.
    in_channels
        Image channels.

    Returns
    -------
    V2Net

    Raises
    ------
    TypeError, ValueError
        Before building anything, for an unknown ``kind``, an ``lcl_model`` that is not a :class:`lcl.V1V2`
        (or missing for ``"lcl"``), a ``backend`` that is not a :class:`BackEndConfig`, bad counts or seed.

    Examples
    --------
    >>> import lcl
    >>> net = lcl.build_v2net("pixels", None, lcl.BackEndConfig(widths=(16,), blocks=1), 4)
    >>> type(net.front_end).__name__, net.frozen
    ('PixelStem', False)
    """
    check_choice("kind", kind, FRONT_ENDS)
    if lcl_model is not None and not isinstance(lcl_model, V1V2):
        raise TypeError(f"lcl_model must be an lcl.V1V2 or None, got {type(lcl_model).__name__}")
    if not isinstance(backend, BackEndConfig):
        raise TypeError(f"backend must be a BackEndConfig, got {type(backend).__name__}")
    n_classes = check_int("n_classes", n_classes, low=1, high=MAX_CLASSES)
    seed = check_seed("seed", seed)
    in_channels = check_int("in_channels", in_channels, low=1, high=MAX_CHANNELS)
    torch.manual_seed(seed)
    if kind == "lcl":
        if lcl_model is None:
            raise ValueError("front end 'lcl' needs a trained LCL model")
        front: nn.Module = lcl_model
    elif kind == "pixels":
        front = PixelStem(in_channels, backend.widths[0])
    elif kind == "supervised":
        config = lcl_model.config if lcl_model is not None else None
        front = V1V2(config)
    else:
        raise ValueError(f"unknown front end {kind!r}; known: {FRONT_ENDS}")
    net = V2Net(front, BackEnd(_front_channels(front), n_classes, backend), frozen=kind == "lcl")
    return net


