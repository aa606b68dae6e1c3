"""The call's sound, as arithmetic: each party hears everyone but itself (mix-minus), the recording
hears everyone. 20 ms of 48 kHz mono 16-bit samples at a time; sums are clipped, never wrapped."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

import numpy as np
import numpy.typing as npt

RATE = 48_000
FRAME = 960  # samples in 20 ms, Opus's usual frame
Samples = npt.NDArray[np.int16]
K = TypeVar("K", bound=Hashable)

SILENCE: Samples = np.zeros(FRAME, dtype=np.int16)


def mix_minus(voices: Mapping[K, Samples | None], listeners: set[K]) -> tuple[dict[K, Samples], Samples]:
    """What each listener hears (every voice but its own) and the whole mix. A voice that sent
    nothing this frame (None: muted, late or gone) adds silence."""
    spoken = {k: v.astype(np.int32) for k, v in voices.items() if v is not None}
    total = np.zeros(FRAME, dtype=np.int32)
    for voice in spoken.values():
        total += voice
    heard = {}
    for listener in listeners:
        own = spoken.get(listener)
        heard[listener] = _clip(total - own if own is not None else total)
    return heard, _clip(total)


def _clip(samples: npt.NDArray[np.int32]) -> Samples:
    return np.clip(samples, -32768, 32767).astype(np.int16)
