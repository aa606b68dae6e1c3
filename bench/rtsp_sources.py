"""Synthetic window cameras for the video benchmark: GStreamer's gst-rtsp-server serving one
pre-encoded 1080p H.264 clip with AAC sound on N mount points (/cam0 ... /cam{N-1}), copied, never
re-encoded, so the sources cost little. Each mount plays the clip once from its first client on, in
real time; the benchmark encodes a clip longer than its run. Run with the system Python, which has gi:

    /usr/bin/python3 bench/rtsp_sources.py PORT CLIP.mp4 N

It prints `ready`, then `playing /camN <epoch seconds>` as each mount starts playing (the clip's
frame n leaves the server at that time + n / 25 s), and `sessions /camN <count>` whenever the number
of clients playing a mount changes: the sessions a real camera would have to serve.
"""

import sys
import time
from collections import Counter

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    Gst.init(None)
    port, clip, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    server = GstRtspServer.RTSPServer()
    server.set_service(port)
    mounts = server.get_mount_points()
    sessions: Counter[str] = Counter()

    def configured(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia, path: str) -> None:
        def state(_media: GstRtspServer.RTSPMedia, new: int) -> None:
            if new == Gst.State.PLAYING:
                print(f"playing {path} {time.time():.3f}", flush=True)
        media.connect("new-state", state)

    for n in range(count):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f"( filesrc location={clip} ! qtdemux name=d"
                           " d.video_0 ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1"
                           " d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )")
        factory.set_shared(True)  # every client sees the same live stream, as from a camera
        factory.connect("media-configure", configured, f"/cam{n}")
        mounts.add_factory(f"/cam{n}", factory)

    def connected(_server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient) -> None:
        played: list[str] = []

        def play(_client: GstRtspServer.RTSPClient, context: GstRtspServer.RTSPContext) -> None:
            path = context.uri.abspath
            played.append(path)
            sessions[path] += 1
            print(f"sessions {path} {sessions[path]}", flush=True)

        def closed(_client: GstRtspServer.RTSPClient) -> None:
            for path in played:
                sessions[path] -= 1
                print(f"sessions {path} {sessions[path]}", flush=True)

        client.connect("play-request", play)
        client.connect("closed", closed)

    server.connect("client-connected", connected)
    server.attach(None)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
