"""A real RTSP server for the tests: GStreamer's gst-rtsp-server (Debian: gir1.2-gst-rtsp-server-1.0,
python3-gi) serving live H.264 video with AAC audio (or G.711 A-law, as many Chinese cameras send,
with --pcma). Run with the system Python, which has gi:

    /usr/bin/python3 tests/rtsp_server.py PORT [--pcma] [--noise] [PATH ...]

--noise sends snow at 6 Mbit/s instead of a ball at 0.8: a stream heavy enough to fill a stalled
viewer's socket buffers within seconds.

It prints `clients N` whenever the number of connected RTSP clients changes: how many sessions
Liandong opened to the camera, as a real camera would count them.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

VIDEO = ("videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=640,height=360,framerate=25/1"
         " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate={kbps} ! h264parse"
         " ! rtph264pay name=pay0 pt=96 config-interval=1")
AAC = "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! voaacenc ! rtpmp4gpay name=pay1 pt=97"
PCMA = ("audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1"
        " ! alawenc ! rtppcmapay name=pay1 pt=8")


def main() -> None:
    Gst.init(None)
    args = sys.argv[1:]
    port = args.pop(0)
    audio = PCMA if "--pcma" in args else AAC
    video = VIDEO.format(pattern="snow", kbps=6000) if "--noise" in args else VIDEO.format(pattern="ball", kbps=800)
    paths = [a for a in args if not a.startswith("--")] or ["cam"]
    server = GstRtspServer.RTSPServer()
    server.set_service(port)
    mounts = server.get_mount_points()
    for path in paths:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f"( {video}  {audio} )")
        factory.set_shared(True)
        mounts.add_factory(f"/{path}", factory)
    clients = set()

    def closed(client: GstRtspServer.RTSPClient) -> None:
        clients.discard(client)
        print(f"clients {len(clients)}", flush=True)

    def connected(_server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient) -> None:
        clients.add(client)
        client.connect("closed", closed)
        print(f"clients {len(clients)}", flush=True)

    server.connect("client-connected", connected)
    server.attach(None)
    print(f"serving rtsp://127.0.0.1:{port}/{paths[0]}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
