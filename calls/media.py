"""A call's media, through the server (aiortc): each party's peer connection, the mixer that gives
each one everyone else's voice every 20 ms, the caller's picture passed on to the others, and the
recording.

Why a mixer rather than forwarding each track: every party then receives one audio track (a phone
browser decodes one stream, not one per party), the recording is the very mix the parties heard,
and aiortc would decode and re-encode forwarded tracks anyway. Decoding runs in aiortc's receiver
threads and encoding in its executor; this loop only adds arrays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from calls.mixing import FRAME, RATE, Samples, mix_minus
from calls.recorder import Recorder

log = logging.getLogger(__name__)

TICK_S = FRAME / RATE
_AUDIO_TIME_BASE = Fraction(1, RATE)
_VIDEO_TIME_BASE = Fraction(1, 90_000)
_EAR_DEPTH = 5  # frames queued for a party's encoder; more means it is not keeping up: drop the oldest
_VOICE_TARGET = 2  # frames a voice may hold before the mixer skips one, so a burst does not add lasting delay

StateChange = Callable[[int, str], None]  # (party id, "connected" | "gone")


@dataclass(frozen=True)
class IceServer:
    urls: str
    username: str = ""
    credential: str = ""
    secret: str = ""  # TURN REST: credentials minted per party (see calls.rules.turn_credential)


class Ear(MediaStreamTrack):
    """What one party hears: the frames the mixer made for it, sent as they come."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: asyncio.Queue[Samples] = asyncio.Queue(maxsize=_EAR_DEPTH)
        self._pts = 0

    def put(self, samples: Samples) -> None:
        if self._frames.full():
            self._frames.get_nowait()
        self._frames.put_nowait(samples)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        samples = await self._frames.get()
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.time_base = _AUDIO_TIME_BASE
        frame.pts = self._pts
        self._pts += FRAME
        return frame


class Voice:
    """One party's speech as it arrives, cut into the mixer's 20 ms frames."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames: deque[Samples] = deque(maxlen=8)

    def hear(self, frame: av.AudioFrame) -> None:
        for part in self._resampler.resample(frame):
            self._pending = np.concatenate((self._pending, part.to_ndarray().reshape(-1)))
        while len(self._pending) >= FRAME:
            self._frames.append(self._pending[:FRAME].copy())
            self._pending = self._pending[FRAME:]

    def take(self) -> Samples | None:
        """The next frame, or None when nothing arrived in time (the mixer adds silence)."""
        if len(self._frames) > _VOICE_TARGET:
            self._frames.popleft()  # a burst piled up: catch up rather than stay behind
        return self._frames.popleft() if self._frames else None


class Picture:
    """The caller's camera as the others see it: the newest frame, shared by every viewer."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._latest: av.VideoFrame | None = None
        self._number = 0
        self._changed = asyncio.Condition()
        self._started = time.monotonic()

    async def follow(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.VideoFrame)
            # One time line for every viewer, whichever connection of the caller's it came from.
            frame.pts = int((time.monotonic() - self._started) * 90_000)
            frame.time_base = _VIDEO_TIME_BASE
            self._recorder.video(frame)
            async with self._changed:
                self._latest, self._number = frame, self._number + 1
                self._changed.notify_all()

    async def next_after(self, number: int) -> tuple[int, av.VideoFrame]:
        async with self._changed:
            await self._changed.wait_for(lambda: self._number > number)
            assert self._latest is not None
            return self._number, self._latest


class Screen(MediaStreamTrack):
    """What a viewer is sent of the caller's picture: always the newest frame, none twice."""

    kind = "video"

    def __init__(self, picture: Picture) -> None:
        super().__init__()
        self._picture = picture
        self._seen = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        self._seen, frame = await self._picture.next_after(self._seen)
        return frame


@dataclass
class Seat:
    """One party's place in the room: its connection, what it says and what it hears."""

    party_id: int
    pc: RTCPeerConnection
    ear: Ear = field(default_factory=Ear)
    voice: Voice = field(default_factory=Voice)
    muted: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Room:
    """One call's media: the seats, the 20 ms clock that mixes them, the picture and the recorder."""

    def __init__(self, recorder: Recorder, ice_servers: tuple[IceServer, ...], jitter_frames: int,
                 on_state: StateChange) -> None:
        self.recorder = recorder
        self.picture = Picture(recorder)
        self._seats: dict[int, Seat] = {}
        # The server sits in the centre's network: it needs STUN at most; TURN is for the parties outside.
        self._configuration = RTCConfiguration(iceServers=[
            RTCIceServer(urls=s.urls) for s in ice_servers if s.urls.startswith("stun:")])
        self._jitter_frames = jitter_frames
        self._on_state = on_state
        self._clock = asyncio.create_task(self._run(), name="call mixer")

    @property
    def parties(self) -> set[int]:
        return set(self._seats)

    async def connect(self, party_id: int, offer_sdp: str, sends_video: bool, sees_video: bool) -> str:
        """Seat a party from its SDP offer (all candidates gathered) and return the answer. A party
        already seated (a reload, a network drop) is re-seated on its new connection."""
        await self.unseat(party_id)
        pc = RTCPeerConnection(self._configuration)
        seat = Seat(party_id, pc)
        self._seats[party_id] = seat

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                seat.tasks.append(asyncio.create_task(_listen(track, seat.voice), name="call voice"))
            elif track.kind == "video" and sends_video:
                seat.tasks.append(asyncio.create_task(self.picture.follow(track), name="call picture"))

        @pc.on("connectionstatechange")
        def on_connection() -> None:
            if self._seats.get(party_id) is not seat:
                return  # an old connection of a re-seated party
            if pc.connectionState == "connected":
                self._on_state(party_id, "connected")
            elif pc.connectionState in ("failed", "closed"):
                self._on_state(party_id, "gone")

        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        shorten_jitter(pc, self._jitter_frames)
        kinds = {t.kind for t in pc.getTransceivers()}
        if "audio" in kinds:
            pc.addTrack(seat.ear)
        if "video" in kinds and sees_video:
            pc.addTrack(Screen(self.picture))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def mute(self, party_id: int, muted: bool) -> None:
        if seat := self._seats.get(party_id):
            seat.muted = muted

    async def unseat(self, party_id: int) -> None:
        seat = self._seats.pop(party_id, None)
        if seat is None:
            return
        for task in seat.tasks:
            task.cancel()
        seat.ear.stop()
        await seat.pc.close()

    async def close(self) -> None:
        self._clock.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._clock
        for party_id in list(self._seats):
            await self.unseat(party_id)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += TICK_S
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.2:
                due = loop.time()  # the loop stalled: resume the beat rather than burst to catch up
            self._tick()

    def _tick(self) -> None:
        voices = {p: (None if s.muted else s.voice.take()) for p, s in self._seats.items()}
        heard, whole = mix_minus(voices, set(self._seats))
        for party_id, samples in heard.items():
            self._seats[party_id].ear.put(samples)
        self.recorder.audio(whole)


async def _listen(track: MediaStreamTrack, voice: Voice) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        assert isinstance(frame, av.AudioFrame)
        voice.hear(frame)


def shorten_jitter(pc: RTCPeerConnection, frames: int) -> None:
    """aiortc holds 4 audio packets (80 ms) before decoding the first, sized for the internet; the
    call's own budget (mouth to ear ≤ 150 ms) cannot spend that twice. Its receivers make the buffer
    privately, so it is replaced before any packet arrives; an aiortc without it keeps its own."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "audio":
            continue
        receiver = transceiver.receiver
        name = "_RTCRtpReceiver__jitter_buffer"
        if isinstance(getattr(receiver, name, None), JitterBuffer):
            setattr(receiver, name, JitterBuffer(capacity=16, prefetch=frames))
        else:
            log.warning("aiortc's receiver has no audio jitter buffer to shorten: calls keep its 80 ms")
