"""A real RTSP server for the tests: GStreamer's gst-rtsp-server (Debian: gir1.2-gst-rtsp-server-1.0,
python3-gi) serving live H.264 video with AAC audio. Run with the system Python, which has gi:

    /usr/bin/python3 tests/rtsp_server.py PORT [PATH ...]
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=25/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=800 ! h264parse"
    " ! rtph264pay name=pay0 pt=96 config-interval=1"
    "  audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! voaacenc ! rtpmp4gpay name=pay1 pt=97 )"
)


def main() -> None:
    Gst.init(None)
    port, paths = sys.argv[1], sys.argv[2:] or ["cam"]
    server = GstRtspServer.RTSPServer()
    server.set_service(port)
    mounts = server.get_mount_points()
    for path in paths:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(PIPELINE)
        factory.set_shared(True)
        mounts.add_factory(f"/{path}", factory)
    server.attach(None)
    print(f"serving rtsp://127.0.0.1:{port}/{paths[0]}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
