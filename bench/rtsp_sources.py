"""Synthetic window cameras for the video benchmark: GStreamer's gst-rtsp-server serving one
pre-encoded 1080p H.264 clip on N mount points (/cam0 ... /cam{N-1}), copied, never re-encoded, so
the sources cost little. Each mount plays the clip once from its first client on, in real time;
the benchmark encodes a clip longer than its run. Run with the system Python, which has gi:

    /usr/bin/python3 bench/rtsp_sources.py PORT CLIP.mp4 N
"""

import sys

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
    for n in range(count):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f"( filesrc location={clip} ! qtdemux ! h264parse"
                           " ! rtph264pay name=pay0 pt=96 config-interval=1 )")
        factory.set_shared(True)  # the recorder and the analysis see the same live stream
        mounts.add_factory(f"/cam{n}", factory)
    server.attach(None)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
