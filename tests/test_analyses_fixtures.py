"""Cheap texture / noise stimuli shared by the analyses tests (no Portilla-Simoncelli synthesis).

Imported by the other ``test_analyses_*`` modules as ``from test_analyses_fixtures import sparse_texture_set``.

Sparse periodic "textures": randomly placed oriented bars (circular convolution, so the image is periodic like a
Portilla-Simoncelli synthesis) and their phase-randomized, spectrally matched noise.
"""

from __future__ import annotations

import numpy as np

import analyses
import data


def sparse_texture_set(n_families: int = 4, n_samples: int = 6, size: int = 32, degrees: float = 2.0,
                       seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    yy = (yy + size // 2) % size - size // 2
    xx = (xx + size // 2) % size - size // 2
    imgs, fams, types, samples = [], [], [], []
    for f in range(n_families):
        theta = rng.uniform(0, np.pi)
        length = rng.uniform(3, 6)
        u = xx * np.cos(theta) + yy * np.sin(theta)
        v = -xx * np.sin(theta) + yy * np.cos(theta)
        kernel = np.exp(-v ** 2 / (2 * 0.7 ** 2)) * (np.abs(u) < length)
        for s in range(n_samples):
            impulses = (rng.random((size, size)) < 0.02) * rng.choice([-1.0, 1.0], (size, size))
            tex = np.fft.ifft2(np.fft.fft2(impulses) * np.fft.fft2(kernel)).real
            noise = analyses.phase_randomize(tex, seed=int(rng.integers(2 ** 32)))
            scale = 0.45 / max(np.abs(tex).max(), np.abs(noise).max())
            for kind, img in (("texture", tex), ("noise", noise)):
                imgs.append(0.5 + scale * img)
                fams.append(f"family{f}")
                types.append(kind)
                samples.append(s)
    ids = [f"{f}-{t}-{s}" for f, t, s in zip(fams, types, samples)]
    return data.stimulus_set(np.stack(imgs), stimulus_id=ids, degrees=degrees, texture_family=fams,
                             texture_type=types, sample=samples)


def test_sparse_texture_set_pairs_are_spectrally_matched():
    s = sparse_texture_set(n_families=2, n_samples=2)
    data.validate_stimuli(s)
    imgs = s.image.values
    for t, n in zip(imgs[0::2], imgs[1::2]):
        np.testing.assert_allclose(np.abs(np.fft.fft2(n)), np.abs(np.fft.fft2(t)), atol=1e-9)
