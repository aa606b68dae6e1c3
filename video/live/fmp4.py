"""Fragmented MP4 as ffmpeg writes it to a pipe: the init segment (ftyp, moov), then fragments (moof,
mdat). What a live fan-out needs from it: where each box ends, whether a fragment opens with a video
keyframe (a viewer may start there), and the MIME type Media Source Extensions asks for.

ISO/IEC 14496-12 layout; only the boxes named here are read, the rest are carried through untouched.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

_NON_SYNC = 0x00010000  # sample_is_non_sync_sample, in the sample flags


class Malformed(ValueError):
    """The bytes are not the fragmented MP4 they should be."""


def box_header(head: bytes, available: int | None) -> tuple[bytes, int, int]:
    """(type, total size, header size) of the box `head` begins (8 bytes, or 16 for a 64-bit size).
    `available`: bytes from the box's start to the end of what holds it, which a size of 0 ("to the
    end") takes; None for a stream, which has no end to run to."""
    if len(head) < 8:
        raise Malformed("a box header cut short")
    size, kind = struct.unpack_from(">I4s", head)
    header = 8
    if size == 1:
        if len(head) < 16:
            raise Malformed(f"{kind!r} box header cut short")
        size, header = struct.unpack_from(">Q", head, 8)[0], 16
    elif size == 0:
        if available is None:
            raise Malformed(f"{kind!r} box without a size: a stream of unbounded boxes cannot be fanned out")
        size = available
    if size < header or (available is not None and size > available):
        raise Malformed(f"{kind!r} box of {size} bytes does not fit")
    return kind, int(size), header


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of each box between `start` and `end`."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        kind, size, header = box_header(data[at:at + 16], end - at)
        yield kind, at + header, at + size
        at += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for found, body, stop in boxes(data, start, end):
        if found == kind:
            return body, stop
    return None


@dataclass(frozen=True)
class Track:
    track_id: int
    handler: bytes  # b"vide", b"soun"
    default_flags: int  # from mvex/trex
    default_size: int = 0  # from mvex/trex


@dataclass(frozen=True)
class Init:
    """What the init segment (ftyp + moov) says."""

    data: bytes
    tracks: tuple[Track, ...]
    mime: str

    @property
    def video_track(self) -> int | None:
        return next((t.track_id for t in self.tracks if t.handler == b"vide"), None)

    @property
    def has_audio(self) -> bool:
        return any(t.handler == b"soun" for t in self.tracks)


def read_init(data: bytes) -> Init:
    """The tracks and the MIME type of an init segment."""
    moov = next(((b, e) for kind, b, e in boxes(data) if kind == b"moov"), None)
    if moov is None:
        raise Malformed("no moov box in the init segment")
    defaults: dict[int, tuple[int, int]] = {}  # track → (sample flags, sample size)
    if mvex := _child(data, *moov, b"mvex"):
        for kind, body, _ in boxes(data, *mvex):
            if kind == b"trex":
                track_id, size, flags = struct.unpack_from(">I8xII", data, body + 4)
                defaults[track_id] = (flags, size)
    tracks = []
    for kind, body, end in boxes(data, *moov):
        if kind != b"trak":
            continue
        tkhd = _child(data, body, end, b"tkhd")
        mdia = _child(data, body, end, b"mdia")
        hdlr = _child(data, *mdia, b"hdlr") if mdia else None
        if tkhd is None or hdlr is None:
            raise Malformed("a track without tkhd or hdlr")
        version = data[tkhd[0]]
        track_id = struct.unpack_from(">I", data, tkhd[0] + (20 if version == 1 else 12))[0]
        flags, size = defaults.get(track_id, (0, 0))
        tracks.append(Track(track_id, data[hdlr[0] + 8:hdlr[0] + 12], flags, size))
    return Init(data, tuple(tracks), _mime(data, tuple(tracks)))


def _mime(data: bytes, tracks: tuple[Track, ...]) -> str:
    """MSE's type: H.264 profile, compatibility and level from avcC; AAC-LC for an mp4a track."""
    codecs = []
    at = data.find(b"avcC")
    if at >= 0 and len(data) >= at + 8:
        codecs.append(f"avc1.{data[at + 5]:02X}{data[at + 6]:02X}{data[at + 7]:02X}")
    elif any(t.handler == b"vide" for t in tracks):
        codecs.append("avc1.42E01E")
    if data.find(b"mp4a") >= 0:
        codecs.append("mp4a.40.2")
    return f'video/mp4; codecs="{", ".join(codecs)}"'


def avc_config(init: Init) -> bytes | None:
    """The H.264 decoder configuration (the avcC box's body: SPS, PPS, NAL length size)."""
    at = init.data.find(b"avcC")
    if at < 4:
        return None
    size = struct.unpack_from(">I", init.data, at - 4)[0]
    return init.data[at + 4:at - 4 + size] if size > 8 else None


def opens_with_keyframe(moof: bytes, init: Init) -> bool:
    """Whether this fragment's video track starts with a sync sample (a viewer may start here). A
    fragment with no video (audio only) is not a start."""
    first = _first_video_sample(moof, init)
    return first is not None and not first.flags & _NON_SYNC


def first_video_sample(fragment: bytes, init: Init) -> bytes | None:
    """The bytes of the fragment's first video sample (length-prefixed NAL units, as avcC says), read
    from the mdat that follows its moof: what a decoder needs for the fragment's first picture."""
    first = _first_video_sample(fragment, init)
    if first is None or not first.size or first.offset + first.size > len(fragment):
        return None
    return fragment[first.offset:first.offset + first.size]


@dataclass(frozen=True)
class _Sample:
    flags: int
    size: int
    offset: int  # from the start of the moof (default-base-is-moof)


def _first_video_sample(moof: bytes, init: Init) -> _Sample | None:
    video = init.video_track
    defaults = {t.track_id: t for t in init.tracks}
    outer = next(((b, e) for kind, b, e in boxes(moof) if kind == b"moof"), None)
    if outer is None:
        raise Malformed("a fragment without moof")
    for kind, body, end in boxes(moof, *outer):
        if kind != b"traf":
            continue
        tfhd, trun = _child(moof, body, end, b"tfhd"), _child(moof, body, end, b"trun")
        if tfhd is None or trun is None:
            continue
        tf_flags = int.from_bytes(moof[tfhd[0] + 1:tfhd[0] + 4], "big")
        track_id = struct.unpack_from(">I", moof, tfhd[0] + 4)[0]
        if track_id != video:
            continue
        track = defaults.get(track_id)
        flags, size = (track.default_flags, track.default_size) if track else (0, 0)
        at = tfhd[0] + 8 + (8 if tf_flags & 0x1 else 0) + (4 if tf_flags & 0x2 else 0)
        at += 4 if tf_flags & 0x8 else 0
        if tf_flags & 0x10:
            size = struct.unpack_from(">I", moof, at)[0]
            at += 4
        if tf_flags & 0x20:
            flags = struct.unpack_from(">I", moof, at)[0]
        tr_flags = int.from_bytes(moof[trun[0] + 1:trun[0] + 4], "big")
        count = struct.unpack_from(">I", moof, trun[0] + 4)[0]
        at = trun[0] + 8
        offset = 0
        if tr_flags & 0x1:
            offset = struct.unpack_from(">i", moof, at)[0]
            at += 4
        if tr_flags & 0x4:
            flags = struct.unpack_from(">I", moof, at)[0]
            at += 4
        if count:
            at += 4 if tr_flags & 0x100 else 0
            if tr_flags & 0x200:
                size = struct.unpack_from(">I", moof, at)[0]
                at += 4
            if tr_flags & 0x400 and not tr_flags & 0x4:
                flags = struct.unpack_from(">I", moof, at)[0]
        return _Sample(flags, size, offset) if count else None
    return None
