"""Deterministic randomness: one independent stream per (seed, purpose) and smooth noise.

Every stage asks for its own generator keyed by what it makes (``"districts"``,
``"parcels", "678"``...), so generating one district alone gives exactly the same
result as generating it inside the whole province, whatever the order.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["SmoothNoise", "rng_for"]


def _key(part: int | str) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode("utf-8"))
    return int(part) & 0xFFFFFFFF


def rng_for(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the purpose ``keys``.

    Uses ``SeedSequence`` (not ``seed + k``) so that nearby keys give unrelated streams.
    """
    return np.random.default_rng(np.random.SeedSequence([_key(seed), *map(_key, keys)]))


class SmoothNoise:
    """A smooth random field on the plane: a sum of plane waves over a few octaves.

    Cheap to evaluate on millions of points at once (no grid, no interpolation) and
    defined everywhere, which suits growing regions and classifying land on arbitrary
    point sets. Values are roughly standard normal.

    Parameters
    ----------
    rng
        Source of the wave directions and phases.
    wavelengths
        Wavelength of each octave in metres, longest first.
    weights
        Relative amplitude of each octave (defaults to halving per octave).
    waves
        Plane waves per octave: more waves look less like a lattice.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        wavelengths: tuple[float, ...],
        weights: tuple[float, ...] | None = None,
        waves: int = 7,
    ) -> None:
        if weights is None:
            weights = tuple(0.5**i for i in range(len(wavelengths)))
        ks, phases, amps = [], [], []
        for wavelength, weight in zip(wavelengths, weights, strict=True):
            theta = rng.uniform(0.0, np.pi, waves)
            k = 2.0 * np.pi / (wavelength * rng.uniform(0.8, 1.25, waves))
            ks.append(np.c_[k * np.cos(theta), k * np.sin(theta)])
            phases.append(rng.uniform(0.0, 2.0 * np.pi, waves))
            amps.append(np.full(waves, weight))
        self._k = np.vstack(ks)
        self._phase = np.concatenate(phases)
        amp = np.concatenate(amps)
        # cos of a random phase has variance 1/2: scale the sum to unit variance
        self._amp = amp / np.sqrt(0.5 * np.sum(amp**2))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Field values at the points ``(x, y)`` (any matching shapes)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        out = np.zeros(np.broadcast(x, y).shape)
        for (kx, ky), phase, amp in zip(self._k, self._phase, self._amp, strict=True):
            out += amp * np.cos(kx * x + ky * y + phase)
        return out
