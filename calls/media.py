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
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

from calls.mixing import FRAME, RATE, Samples, mix_minus
from calls.recorder import VOICE_BIT_RATE, VOICE_OPTIONS, Recorder, voice_frame

log = logging.getLogger(__name__)

TICK_S = FRAME / RATE
_AUDIO_TIME_BASE = Fraction(1, RATE)
_VIDEO_TIME_BASE = Fraction(1, 90_000)
_EAR_DEPTH = 5  # frames queued for a party's encoder; more means it is not keeping up: drop the oldest
_SPARE_WINDOW = 50  # mixer beats (1 s) over which a voice's spare frames are counted

StateChange = Callable[[int, str], None]  # (party id, "connected" | "gone")


@dataclass(frozen=True)
class IceServer:
    urls: str
    username: str = ""
    credential: str = ""
    secret: str = ""  # TURN REST: credentials minted per party (see calls.rules.turn_credential)


class Ear(MediaStreamTrack):
    """What one party hears: the frames the mixer made for it, encoded here as mono Opus and handed
    to aiortc as packets. aiortc would otherwise upmix each frame to stereo and encode it at 96 kbit/s
    in its executor, a thread hop per party per 20 ms; a voice needs neither."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: asyncio.Queue[Samples] = asyncio.Queue(maxsize=_EAR_DEPTH)
        self._encoder = VoiceEncoder()

    def put(self, samples: Samples) -> None:
        if self._frames.full():
            self._frames.get_nowait()
        self._frames.put_nowait(samples)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        while (packet := self._encoder.encode(await self._frames.get())) is None:
            pass
        return packet


class VoiceEncoder:
    """Opus for speech (see VOICE_OPTIONS): the mixer's mono 20 ms frames in, one packet per frame out,
    stamped with its frame's time (not the encoder's, which starts early by its look-ahead)."""

    def __init__(self) -> None:
        codec = av.CodecContext.create("libopus", "w")
        assert isinstance(codec, av.AudioCodecContext)
        codec.bit_rate = VOICE_BIT_RATE
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = RATE
        codec.time_base = _AUDIO_TIME_BASE
        codec.options = VOICE_OPTIONS
        self._codec = codec
        self._pts = 0

    def encode(self, samples: Samples) -> av.Packet[Any] | None:
        frame = voice_frame(samples, self._pts)
        self._pts += len(samples)
        for packet in self._codec.encode(frame):
            packet.pts, packet.time_base = frame.pts, _AUDIO_TIME_BASE
            return packet
        return None


class Voice:
    """One party's speech as it arrives, cut into the mixer's 20 ms frames: the call's only jitter
    buffer on the server. It holds at most `most` frames; when it has held a spare frame for a whole
    second (the jitter that put it there is over), it lets one go, so a burst adds no lasting delay."""

    def __init__(self, most: int = 2) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames: deque[Samples] = deque(maxlen=8)
        self._most = most
        self._spare = _SPARE_WINDOW  # the fewest frames left after a take, this window
        self._takes = 0

    def hear(self, frame: av.AudioFrame) -> None:
        if frame.format.name == "s16" and frame.layout.name == "mono" and frame.sample_rate == RATE:
            self._append(frame.to_ndarray().reshape(-1).astype(np.int16, copy=False))
        else:
            for part in self._resampler.resample(frame):
                self._append(part.to_ndarray().reshape(-1).astype(np.int16, copy=False))

    def _append(self, samples: Samples) -> None:
        if len(samples) == FRAME and not len(self._pending):
            self._frames.append(samples)  # the usual case: one packet is one frame
            return
        self._pending = np.concatenate((self._pending, samples))
        while len(self._pending) >= FRAME:
            self._frames.append(self._pending[:FRAME].copy())
            self._pending = self._pending[FRAME:]

    @property
    def held(self) -> int:
        """Frames waiting for the mixer."""
        return len(self._frames)

    def take(self) -> Samples | None:
        """The next frame, or None when nothing arrived in time (the mixer adds silence)."""
        while len(self._frames) > self._most:
            self._frames.popleft()  # a burst piled up: catch up rather than stay behind
        frame = self._frames.popleft() if self._frames else None
        self._spare = min(self._spare, len(self._frames))
        self._takes += 1
        if self._takes == _SPARE_WINDOW:
            if self._spare > 0 and self._frames:
                self._frames.popleft()
            self._spare, self._takes = _SPARE_WINDOW, 0
        return frame


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
    voice: Voice
    ear: Ear = field(default_factory=Ear)
    muted: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Room:
    """One call's media: the seats, the 20 ms clock that mixes them, the picture and the recorder."""

    def __init__(self, beat: Beat, recorder: Recorder, ice_servers: tuple[IceServer, ...], jitter_frames: int,
                 on_state: StateChange) -> None:
        self.recorder = recorder
        self.picture = Picture(recorder)
        self._seats: dict[int, Seat] = {}
        # The server sits in the centre's network: it needs STUN at most; TURN is for the parties outside.
        self._configuration = RTCConfiguration(iceServers=[
            RTCIceServer(urls=s.urls) for s in ice_servers if s.urls.startswith("stun:")])
        self._jitter_frames = jitter_frames
        self._on_state = on_state
        self._beat = beat
        beat.join(self._tick)

    @property
    def parties(self) -> set[int]:
        return set(self._seats)

    async def connect(self, party_id: int, offer_sdp: str, sends_video: bool, sees_video: bool) -> str:
        """Seat a party from its SDP offer (all candidates gathered) and return the answer. A party
        already seated (a reload, a network drop) is re-seated on its new connection."""
        await self.unseat(party_id)
        pc = RTCPeerConnection(self._configuration)
        seat = Seat(party_id, pc, Voice(self._jitter_frames))
        self._seats[party_id] = seat

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                # Opus is heard through VoiceTap; this hears a party that sends another codec.
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
        opus = opus_payload_types(offer_sdp)
        replace_jitter(pc, lambda: VoiceTap(seat.voice.hear, opus))
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
        await self._beat.leave(self._tick)
        for party_id in list(self._seats):
            await self.unseat(party_id)

    def _tick(self) -> None:
        voices = {p: (None if s.muted else s.voice.take()) for p, s in self._seats.items()}
        heard, whole = mix_minus(voices, set(self._seats))
        for party_id, samples in heard.items():
            self._seats[party_id].ear.put(samples)
        self.recorder.audio(whole)


class Beat:
    """The mixers' 20 ms clock: one timer for every call of the process, not one each."""

    def __init__(self) -> None:
        self._mixers: list[Callable[[], None]] = []
        self._clock: asyncio.Task[None] | None = None

    def join(self, mix: Callable[[], None]) -> None:
        self._mixers.append(mix)
        if self._clock is None:
            self._clock = asyncio.create_task(self._run(), name="call mixers")

    async def leave(self, mix: Callable[[], None]) -> None:
        self._mixers.remove(mix)
        if not self._mixers and self._clock is not None:
            clock, self._clock = self._clock, None
            clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clock

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
            for mix in list(self._mixers):
                try:
                    mix()
                except Exception:
                    log.exception("a call's mixer failed a beat")  # the other calls go on


async def _listen(track: MediaStreamTrack, voice: Voice) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        assert isinstance(frame, av.AudioFrame)
        voice.hear(frame)


class VoiceTap(JitterBuffer):
    """Where a party's voice is heard: aiortc's receiver hands each RTP packet to its jitter buffer,
    which this replaces. aiortc would pass whole frames to a decoder thread per receiver and post each
    decoded frame back to the event loop: two thread hand-offs per party per 20 ms, which cost the
    server more than the decoding itself and kept thirty threads contending for the GIL at ten calls.
    Here Opus is decoded on the loop (18 µs a packet, mono) and handed to `hear`.

    On the server (`hold` None) each packet is decoded as it arrives, straight into the seat's `Voice`,
    the mixer's queue, which is the call's only jitter buffer there; a packet older than the newest
    is dropped, as its moment has been mixed. A listener that plays what it hears (`hold` n) keeps
    aiortc's buffer, which releases a frame once n more have come. Other codecs go on to aiortc."""

    def __init__(self, hear: Callable[[av.AudioFrame], None], opus: frozenset[int], hold: int | None = None) -> None:
        super().__init__(capacity=16, prefetch=hold or 0)
        self._hear = hear
        self._opus = opus  # the negotiated payload types for Opus
        self._hold = hold is not None
        self._decoder = voice_decoder()
        self._newest: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if packet.payload_type not in self._opus:
            return super().add(packet)
        if self._hold:
            _, whole = super().add(packet)
            if whole is None:
                return False, None
            data = whole.data
        else:
            if self._newest is not None and uint16_add(packet.sequence_number, -self._newest) >= 0x8000:
                return False, None  # late
            if packet.sequence_number == self._newest:
                return False, None  # a duplicate
            self._newest = packet.sequence_number
            data = packet.payload
        try:
            frames = self._decoder.decode(av.Packet(data))
        except av.FFmpegError as error:
            log.debug("a call voice packet did not decode: %s", error)  # heard as silence
            return False, None
        for frame in frames:
            self._hear(frame)
        return False, None


def voice_decoder() -> av.AudioCodecContext:
    codec = av.CodecContext.create("libopus", "r")
    assert isinstance(codec, av.AudioCodecContext)
    codec.format, codec.layout, codec.sample_rate = "s16", "mono", RATE
    return codec


def opus_payload_types(sdp: str) -> frozenset[int]:
    return frozenset(int(m) for m in re.findall(r"^a=rtpmap:(\d+) opus/48000", sdp, re.MULTILINE | re.IGNORECASE))


def replace_jitter(pc: RTCPeerConnection, make: Callable[[], JitterBuffer]) -> None:
    """Give each audio receiver of `pc` the buffer `make` builds. aiortc's receivers make theirs
    privately, so it is replaced before any packet arrives; an aiortc without it keeps its own."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "audio":
            continue
        receiver = transceiver.receiver
        name = "_RTCRtpReceiver__jitter_buffer"
        if isinstance(getattr(receiver, name, None), JitterBuffer):
            setattr(receiver, name, make())
        else:
            log.warning("aiortc's receiver has no audio jitter buffer to replace: its own decodes the call")
