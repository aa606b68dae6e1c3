"""The call's sound without the network: the mix each party hears, a voice cut into frames, and the
Opus packets the server sends decoding back to what was mixed."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc.rtp import RtpPacket

from calls.client import tone_levels
from calls.media import Ear, Voice, VoiceEncoder, VoiceTap, opus_payload_types
from calls.mixing import FRAME, RATE, mix_minus


def tone(hz: float, amplitude: int = 8000, start: int = 0) -> np.ndarray:
    t = (np.arange(FRAME) + start) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def test_each_party_hears_everyone_but_itself_and_the_recording_hears_all() -> None:
    voices = {"dispatcher": tone(500), "station": tone(1100), "caller": None}
    heard, whole = mix_minus(voices, {"dispatcher", "station", "caller"})
    levels = {who: tone_levels(samples, [500, 1100]) for who, samples in heard.items()}
    assert levels["dispatcher"][500] < 100 < 7000 < levels["dispatcher"][1100]
    assert levels["station"][1100] < 100 < 7000 < levels["station"][500]
    assert min(levels["caller"].values()) > 7000  # silent caller hears both
    assert min(tone_levels(whole, [500, 1100]).values()) > 7000


def test_loud_voices_are_clipped_not_wrapped() -> None:
    loud = np.full(FRAME, 30000, dtype=np.int16)
    heard, whole = mix_minus({"a": loud, "b": loud, "c": loud}, {"a"})
    assert heard["a"].min() == 32767
    assert whole.min() == 32767


def stereo_frame(left: np.ndarray, right: np.ndarray, rate: int = RATE) -> av.AudioFrame:
    interleaved = np.column_stack((left, right)).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
    frame.sample_rate = rate
    return frame


def test_a_stereo_voice_is_heard_as_the_mean_of_its_channels_in_20_ms_frames() -> None:
    voice = Voice()
    left, right = tone(500, 8000), tone(500, 4000)
    half = FRAME // 2
    voice.hear(stereo_frame(left[:half], right[:half]))
    assert voice.take() is None  # half a frame is not yet a frame
    voice.hear(stereo_frame(left[half:], right[half:]))
    frame = voice.take()
    assert frame is not None
    mean = (left.astype(np.int32) + right) // 2
    assert np.abs(frame - mean).max() <= 1  # the resampler rounds where the floor division does not


def test_a_voice_at_another_rate_is_resampled_to_the_mixers() -> None:
    voice = Voice()
    for n in range(4):
        voice.hear(stereo_frame(tone(500, start=n * FRAME)[::3], tone(500, start=n * FRAME)[::3], rate=16_000))
    frame = voice.take()
    assert frame is not None and len(frame) == FRAME


@pytest.mark.asyncio
async def test_what_a_party_is_sent_decodes_to_what_the_mixer_made_for_it() -> None:
    ear = Ear()
    decoder = av.CodecContext.create("libopus", "r")
    received = []
    for n in range(10):
        ear.put(tone(1100, start=n * FRAME))
        packet = await ear.recv()
        assert packet.pts == n * FRAME and packet.time_base == Fraction(1, RATE)
        for frame in decoder.decode(packet):
            assert frame.format.name == "s16" and frame.layout.name == "stereo"
            received.append(frame.to_ndarray().reshape(-1, 2)[:, 0])
    sound = np.concatenate(received)[-FRAME:]
    levels = tone_levels(sound, [500, 1100])
    assert levels[1100] > 6000 and levels[500] < 200


def frames_of(voice: Voice, n: int, start: int = 0) -> None:
    for k in range(n):
        samples = tone(500, start=(start + k) * FRAME)
        voice.hear(stereo_frame(samples, samples))


def test_a_burst_that_piled_up_is_cut_to_the_voices_limit() -> None:
    voice = Voice(most=2)
    frames_of(voice, 5)
    taken = [voice.take() for _ in range(3)]
    assert taken[0] is not None and taken[1] is not None and taken[2] is None  # 3 of 5 dropped, 2 kept


def test_a_spare_frame_held_for_a_second_is_let_go() -> None:
    voice = Voice(most=2)
    frames_of(voice, 1)  # one frame ahead of the mixer: jitter, once
    held = []
    for beat in range(60):
        frames_of(voice, 1, start=beat + 1)
        voice.take()
        held.append(voice.held)
    assert held[0] == 1  # the spare frame is still held ...
    assert held[-1] == 0  # ... until a second showed it was not needed


def opus_packets(n: int) -> list[bytes]:
    encoder = VoiceEncoder()
    packets = [encoder.encode(tone(500, start=k * FRAME)) for k in range(n)]
    return [bytes(p) for p in packets if p is not None]


def test_the_server_hears_each_packet_as_it_arrives_and_drops_late_and_repeated_ones() -> None:
    voice = Voice(most=8)
    tap = VoiceTap(voice.hear, opus=frozenset({111}))
    packets = opus_packets(5)

    def arrive(sequence: int, packet: bytes) -> int:
        tap.add(RtpPacket(payload_type=111, sequence_number=sequence, timestamp=sequence * FRAME, payload=packet))
        return voice.held

    assert arrive(65534, packets[0]) == 1  # at once: no waiting for the next packet
    assert arrive(65535, packets[1]) == 2
    assert arrive(0, packets[2]) == 3  # the sequence wraps
    assert arrive(2, packets[4]) == 4  # 1 is missing: the mixer will have silence for it
    assert arrive(1, packets[3]) == 4  # late
    assert arrive(2, packets[4]) == 4  # repeated
    heard = [voice.take() for _ in range(4)]
    assert all(h is not None and tone_levels(h, [500])[500] > 6000 for h in heard[1:])


def test_a_listener_that_plays_what_it_hears_holds_a_frame_like_a_browser() -> None:
    voice = Voice(most=8)
    tap = VoiceTap(voice.hear, opus=frozenset({111}), hold=1)
    for sequence, packet in enumerate(opus_packets(3)):
        rtp = RtpPacket(payload_type=111, sequence_number=sequence, timestamp=sequence * FRAME, payload=packet)
        rtp._data = packet  # type: ignore[attr-defined]  # as aiortc's receiver depayloads it
        tap.add(rtp)
        assert voice.held == sequence  # each frame once one more has come


def test_another_codec_goes_on_to_aiortcs_own_decoder() -> None:
    voice = Voice()
    tap = VoiceTap(voice.hear, opus=frozenset({111}))
    def pcmu(sequence: int) -> RtpPacket:
        packet = RtpPacket(payload_type=0, sequence_number=sequence, timestamp=sequence * 160, payload=b"\xff" * 160)
        packet._data = packet.payload  # type: ignore[attr-defined]  # as aiortc's receiver depayloads it
        return packet

    _, first = tap.add(pcmu(0))
    _, second = tap.add(pcmu(1))
    assert first is None and second is not None and second.timestamp == 0  # aiortc's buffer: whole frames
    assert voice.held == 0


def test_the_offers_opus_payload_types_are_found() -> None:
    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
    assert opus_payload_types(sdp) == {111}
