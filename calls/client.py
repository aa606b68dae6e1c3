"""A call party in Python (aiortc), for the tests and the benchmark: it speaks a tone in bursts and
listens for the others' tones in what the server sends it, timing each burst from mouth to ear.

Bursts start every `period_s` on the party's own clock; a listener notes the moment a frequency's
power rises above the threshold. Parties of one process share the monotonic clock, so the delay is
that moment minus the start of the speaker's latest burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from calls.media import VoiceEncoder, VoiceTap, opus_payload_types, replace_jitter
from calls.mixing import FRAME, RATE

AMPLITUDE = 8000
_HEARD = AMPLITUDE / 4  # a tone's amplitude in a frame, above which it is heard


@dataclass
class Speech:
    """When each burst of a party's tone began (monotonic seconds)."""

    hz: float
    burst_s: float
    period_s: float
    started: list[float] = field(default_factory=list)

    def latest_before(self, moment: float) -> float | None:
        earlier = [s for s in self.started if s <= moment]
        return earlier[-1] if earlier else None


class ToneTrack(MediaStreamTrack):
    """A microphone that says `speech.hz` for burst_s every period_s, paced like a real one."""

    kind = "audio"

    def __init__(self, speech: Speech) -> None:
        super().__init__()
        self.speech = speech
        self._n = 0
        self._t0: float | None = None
        self._encoder = VoiceEncoder()

    async def recv(self) -> av.Packet[Any]:
        while True:
            if self._t0 is None:
                self._t0 = time.monotonic()
            due = self._t0 + self._n * FRAME / RATE
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            offset = (self._n * FRAME) % round(self.speech.period_s * RATE)
            samples = np.zeros(FRAME, dtype=np.int16)
            if offset < round(self.speech.burst_s * RATE):
                if offset < FRAME:  # a burst's first frame, handed to the encoder now
                    self.speech.started.append(time.monotonic())
                t = (np.arange(FRAME) + self._n * FRAME) / RATE
                samples = (AMPLITUDE * np.sin(2 * np.pi * self.speech.hz * t)).astype(np.int16)
            self._n += 1
            if (packet := self._encoder.encode(samples)) is not None:  # mono Opus, as the server sends
                return packet


_BASIS: dict[tuple[float, int], np.ndarray] = {}


def tone_levels(samples: np.ndarray, frequencies: list[float]) -> dict[float, float]:
    """Each frequency's amplitude in a block of samples (one DFT bin each)."""
    n = len(samples)
    data = samples.astype(np.float64)
    return {hz: float(2 / n * abs(np.dot(data, _basis(hz, n)))) for hz in frequencies}


def _basis(hz: float, n: int) -> np.ndarray:
    if (hz, n) not in _BASIS:
        _BASIS[hz, n] = np.exp(-2j * np.pi * hz * np.arange(n) / RATE)
    return _BASIS[hz, n]


@dataclass
class Ear:
    """What a party hears: frames received, and for each listened-for tone the moments it rose."""

    frequencies: list[float]
    frames: int = 0
    onsets: dict[float, list[float]] = field(default_factory=dict)
    own_frames: dict[float, int] = field(default_factory=dict)  # frames in which each tone was heard
    _on: dict[float, bool] = field(default_factory=dict)

    def hear(self, samples: np.ndarray, at: float) -> None:
        self.frames += 1
        for hz, level in tone_levels(samples, self.frequencies).items():
            loud = level > _HEARD
            if loud:
                self.own_frames[hz] = self.own_frames.get(hz, 0) + 1
            if loud and not self._on.get(hz):
                self.onsets.setdefault(hz, []).append(at)
            self._on[hz] = loud


Signal = Callable[[str], Awaitable[str]]  # our offer's SDP → the server's answer's SDP


class Party:
    """One aiortc peer: speaks its tone, listens for `listen_for`."""

    def __init__(self, speech: Speech, listen_for: list[float], jitter_frames: int = 2,
                 configuration: RTCConfiguration | None = None) -> None:
        self.speech = speech
        self.ear = Ear(listen_for)
        self.pc = RTCPeerConnection(configuration)
        self.pc.addTrack(ToneTrack(speech))
        self._jitter_frames = jitter_frames
        self._listening: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._listening = asyncio.create_task(self._listen(track))

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()

    async def join(self, signal: Signal) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await signal(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self._tap(answer)

    async def answer(self, offer_sdp: str) -> str:
        """Answer another party directly (no server between): the floor a call through the server is
        measured against."""
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        self._tap(offer_sdp)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    def _tap(self, remote_sdp: str) -> None:
        """Hear Opus as a browser would, after a short jitter buffer, decoded on this loop (see VoiceTap)."""
        opus = opus_payload_types(remote_sdp)
        replace_jitter(self.pc, lambda: VoiceTap(self._hear, opus, hold=self._jitter_frames))

    def _hear(self, frame: av.AudioFrame) -> None:
        self.ear.hear(frame.to_ndarray().reshape(-1), time.monotonic())

    async def _listen(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            at = time.monotonic()
            assert isinstance(frame, av.AudioFrame)
            if frame.format.name == "s16" and frame.layout.name == "stereo":
                self.ear.hear(frame.to_ndarray().reshape(-1, 2)[:, 0], at)  # the left is enough to hear a tone
            else:
                for part in resampler.resample(frame):
                    self.ear.hear(part.to_ndarray().reshape(-1), at)

    def delays_from(self, speaker: Speech) -> list[float]:
        """Mouth to ear, in seconds, of each of the speaker's bursts this party heard."""
        return [at - start for at in self.ear.onsets.get(speaker.hz, [])
                if (start := speaker.latest_before(at)) is not None]

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
        await self.pc.close()
