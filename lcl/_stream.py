"""Stream training patches from a large image folder with worker processes, in bounded memory, resumable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

import data
from data._checks import check_int, check_nbytes, check_path, check_seed

from ._config import IMAGE_EXTENSIONS, DataConfig, TrainConfig

__all__ = ["list_images", "FolderPatches", "PatchStream", "patch_stream"]

#: Largest image side a folder stream resizes to.
MAX_IMAGE_SIZE = 65_536


def list_images(root: str | os.PathLike) -> list[str]:
    """Sorted paths (relative to ``root``) of every image file under ``root``, hidden entries skipped.

    Only names are kept in memory, never pixels.

    Parameters
    ----------
    root
        An existing folder.

    Returns
    -------
    list of str

    Raises
    ------
    TypeError
        If ``root`` is not a path.
    ValueError
        If ``root`` is not an existing folder.

    Examples
    --------
    >>> import lcl, tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "b").mkdir(); _ = (root / "b" / "x.png").write_bytes(b""); _ = (root / "a.txt").write_text("")
    >>> lcl.list_images(root)
    ['b/x.png']
    """
    root = check_path("root", root)
    if not root.is_dir():
        raise ValueError(f"root is not an existing folder: {root}")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root)
        out.extend((rel / f).as_posix() for f in filenames
                   if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
    return sorted(out)


def _square(img: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop a (y, x) image to a square and resize it to ``size`` (antialiased; small images upsampled)."""
    h, w = img.shape
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = img[y0:y0 + s, x0:x0 + s][None, None]
    if s != size:
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=s > size)
    return crop[0].clamp(0.0, 1.0)


class FolderPatches(IterableDataset):
    """Endless, deterministic stream of random square patches from the files of an image folder.

    Files are sharded over processes (``rank`` of ``world_size``) and over the loader's worker processes, so every
    file is read by exactly one worker of one process per epoch. Each worker walks its shard in a fresh seeded order
    every epoch, reads one image at a time (``data.read_image``), centre-crops it, resizes it to ``image_size`` and
    cuts ``patches_per_image`` patches at seeded positions. Patch ``k`` of a worker is a pure function of
    ``(seed, rank, worker, k)``, so a stream restarted at ``start_batches`` continues exactly where it stopped.

    Parameters
    ----------
    root
        Image folder.
    files
        Its image files (see :func:`list_images`).
    image_size, patch_size, patches_per_image
        Geometry.
    batch_size
        Patches per batch (to translate ``start_batches`` into per-worker offsets).
    seed, rank, world_size
        Seed and process sharding.

    Raises
    ------
    TypeError, ValueError
        For a ``root`` that is not a path, ``files`` that is not a list of relative paths, sizes that are not
        positive integers (``patch_size <= image_size <= 65536``), a negative ``seed``, ``rank`` outside
        ``[0, world_size)``, or no file for this process.

    Examples
    --------
    >>> import lcl, numpy as np, tempfile, pathlib
    >>> from skimage.io import imsave
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     imsave(root / f"{i}.png", (np.random.default_rng(i).random((40, 50)) * 255).astype(np.uint8))
    >>> ds = lcl.FolderPatches(root, lcl.list_images(root), image_size=32, patch_size=16, patches_per_image=2,
    ...                        batch_size=4)
    >>> tuple(next(iter(ds)).shape)
    (1, 16, 16)
    """

    def __init__(self, root: str | os.PathLike, files: list[str], *, image_size: int, patch_size: int,
                 patches_per_image: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__()
        check_path("root", root)
        if isinstance(files, (str, bytes)) or not isinstance(files, (list, tuple)) \
                or not all(isinstance(f, (str, os.PathLike)) for f in files):
            raise TypeError(f"files must be a list of image paths relative to root, got {files!r:.60}")
        image_size = check_int("image_size", image_size, low=1, high=MAX_IMAGE_SIZE)
        patch_size = check_int("patch_size", patch_size, low=1)
        patches_per_image = check_int("patches_per_image", patches_per_image, low=1, high=1_000_000)
        batch_size = check_int("batch_size", batch_size, low=1)
        seed = check_seed("seed", seed)
        world_size = check_int("world_size", world_size, low=1)
        rank = check_int("rank", rank, low=0, high=world_size - 1)
        if patch_size > image_size:
            raise ValueError(f"patch_size {patch_size} is larger than image_size {image_size}")
        self.root = str(root)
        self.files = files[rank::world_size]
        if not self.files:
            raise ValueError(f"process {rank} of {world_size} got no image file ({len(files)} files in {root})")
        self.image_size, self.patch_size, self.ppi = image_size, patch_size, patches_per_image
        self.batch_size = batch_size
        self.seed, self.rank = seed, rank
        self.start_batches = 0

    def _skip(self, worker: int, workers: int) -> int:
        """Patches this worker already delivered when ``start_batches`` batches were consumed (round robin)."""
        t = self.start_batches
        batches = (t - worker + workers - 1) // workers if t > worker else 0
        return batches * self.batch_size

    def patches(self, worker: int = 0, workers: int = 1, start: int = 0) -> Iterator[torch.Tensor]:
        """The patches of one worker from its ``start``-th on."""
        shard = self.files[worker::workers]
        if not shard:
            raise ValueError(f"worker {worker} of {workers} got no image file; use fewer workers")
        per_epoch = len(shard) * self.ppi
        k = start
        cached: tuple[tuple[int, int], torch.Tensor] | None = None
        span = self.image_size - self.patch_size + 1
        while True:
            epoch, r = divmod(k, per_epoch)
            j, i = divmod(r, self.ppi)
            order = np.random.default_rng([self.seed, self.rank, worker, epoch]).permutation(len(shard))
            if cached is None or cached[0] != (epoch, j):
                img = torch.from_numpy(data.read_image(Path(self.root) / shard[order[j]]).astype(np.float32))
                cached = ((epoch, j), _square(img, self.image_size))
            pos = np.random.default_rng([self.seed, self.rank, worker, epoch, j, 1]).integers(0, span, (self.ppi, 2))
            y0, x0 = int(pos[i, 0]), int(pos[i, 1])
            yield cached[1][:, y0:y0 + self.patch_size, x0:x0 + self.patch_size].clone()
            k += 1

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        loader_worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # A fresh DataLoader takes its first batch from loader worker 0; after `start_batches` batches the next
        # one belongs to worker start_batches % workers of the original round robin, so roles are rotated.
        worker = (loader_worker + self.start_batches) % workers
        return self.patches(worker, workers, self._skip(worker, workers))


class PatchStream:
    """Batches from a :class:`FolderPatches` through a ``DataLoader``; resumable via ``state_dict``.

    Parameters
    ----------
    dataset
        The patch source.
    batch_size
        Patches per batch (a positive integer).
    workers
        ``DataLoader`` worker processes (0: load in this process; at most 256).

    Raises
    ------
    TypeError, ValueError
        For a ``dataset`` that is not a :class:`FolderPatches`, a bad ``batch_size`` or ``workers``, or a batch
        that would not fit in memory.

    Examples
    --------
    >>> import lcl, numpy as np, tempfile, pathlib
    >>> from skimage.io import imsave
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(4):
    ...     imsave(root / f"{i}.png", (np.random.default_rng(i).random((32, 32)) * 255).astype(np.uint8))
    >>> ds = lcl.FolderPatches(root, lcl.list_images(root), image_size=32, patch_size=8, patches_per_image=2,
    ...                        batch_size=3)
    >>> stream = lcl.PatchStream(ds, batch_size=3, workers=0)
    >>> a = [next(stream) for _ in range(3)]
    >>> state = stream.state_dict()
    >>> again = lcl.PatchStream(ds, batch_size=3, workers=0); again.load_state_dict({"batches": 2})
    >>> bool(torch.equal(next(again), a[2]))
    True
    """

    def __init__(self, dataset: FolderPatches, batch_size: int, workers: int = 0):
        if not isinstance(dataset, FolderPatches):
            raise TypeError(f"dataset must be a FolderPatches, got {type(dataset).__name__}")
        batch_size = check_int("batch_size", batch_size, low=1)
        workers = check_int("workers", workers, low=0, high=256)
        check_nbytes("batch_size", batch_size, 4.0 * batch_size * dataset.patch_size ** 2 * max(1, 2 * workers),
                     what=f"batches of {batch_size} patches of {dataset.patch_size} px")
        self.dataset, self.batch_size, self.workers = dataset, batch_size, workers
        self.batches = 0
        self._iter: Iterator[torch.Tensor] | None = None

    def _start(self) -> None:
        self.dataset.start_batches = self.batches
        loader = DataLoader(self.dataset, batch_size=self.batch_size, num_workers=self.workers,
                            prefetch_factor=2 if self.workers else None, persistent_workers=False)
        self._iter = iter(loader)

    def __iter__(self) -> PatchStream:
        return self

    def __next__(self) -> torch.Tensor:
        if self._iter is None:
            self._start()
        batch = next(self._iter)
        self.batches += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Batches consumed so far."""
        return {"batches": self.batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after ``state["batches"]`` batches (restarts the workers)."""
        self.batches = int(state["batches"])
        self._iter = None


def patch_stream(data_config: DataConfig, train_config: TrainConfig, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, generator: torch.Generator | None = None) -> PatchStream:
    """The trainer's streaming source for ``data_config`` (``source="folder"``, ``streaming=true``).

    Parameters
    ----------
    data_config
        The folder, image size, worker count and patches per image.
    train_config
        Patch size and batch size.
    seed
        Seed of the stream (:class:`lcl.Trainer` passes ``data.derive_seed(LCLConfig.seed, "stream")``).
    rank, world_size
        This process and the number of processes.
    generator
        Unused (the stream is seeded by ``seed``); accepted for the trainer's calling convention.

    Returns
    -------
    PatchStream

    Raises
    ------
    TypeError, ValueError
        For configs of the wrong type, ``rank`` outside ``[0, world_size)``, a folder without enough files.

    Examples
    --------
    >>> import lcl, numpy as np, tempfile, pathlib
    >>> from skimage.io import imsave
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(2):
    ...     imsave(root / f"{i}.png", (np.random.default_rng(i).random((64, 64)) * 255).astype(np.uint8))
    >>> d = lcl.DataConfig(source="folder", folder=str(root), image_size=64, streaming=True)
    >>> tuple(next(lcl.patch_stream(d, lcl.TrainConfig(batch_size=4, patch_size=48))).shape)
    (4, 1, 48, 48)
    """
    if not isinstance(data_config, DataConfig):
        raise TypeError(f"data_config must be an lcl.DataConfig, got {type(data_config).__name__}")
    if not isinstance(train_config, TrainConfig):
        raise TypeError(f"train_config must be an lcl.TrainConfig, got {type(train_config).__name__}")
    seed = check_seed("seed", seed)
    world_size = check_int("world_size", world_size, low=1)
    rank = check_int("rank", rank, low=0, high=world_size - 1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    files = list_images(data_config.folder)
    if data_config.max_images:
        files = files[:data_config.max_images]
    if len(files) < world_size * max(1, data_config.workers):
        raise ValueError(f"{len(files)} image files cannot be shared by {world_size} process(es) x "
                         f"{max(1, data_config.workers)} worker(s)")
    ds = FolderPatches(data_config.folder, files, image_size=data_config.image_size,
                       patch_size=train_config.patch_size, patches_per_image=data_config.patches_per_image,
                       batch_size=train_config.batch_size, seed=seed, rank=rank,
                       world_size=world_size)
    return PatchStream(ds, train_config.batch_size, data_config.workers)
