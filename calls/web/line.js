// A call line in the browser, shared by the console, the terminal and the caller's page: the
// microphone (and, for the caller, the rear camera) goes to the server, which sends back the mix of
// the other parties (and the caller's picture to the others). One offer with every ICE candidate
// gathered; the server answers. A connection that fails is offered again, so a brief network drop
// or a reload costs a moment, not the call.
"use strict";

// What this page hears, measured after the speaker: tests and the page's own level meter read it.
const liandongLine = window.liandongLine = { analyser: null, context: null, state: "idle", joins: 0,
  levels(frequencies) {  // each frequency's level in dB at the output, from the analyser's spectrum
    if (!this.analyser) return frequencies.map(() => -Infinity);
    const bins = new Float32Array(this.analyser.frequencyBinCount);
    this.analyser.getFloatFrequencyData(bins);
    const width = this.context.sampleRate / 2 / bins.length;
    return frequencies.map((f) => bins[Math.round(f / width)]);
  },
  async route() {  // the kind of this end's candidate on the path in use: "host", "srflx" or "relay"
    if (!this.pc) return null;
    const stats = await this.pc.getStats();
    let pair = null;
    stats.forEach((r) => { if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
    return pair ? stats.get(pair.localCandidateId)?.candidateType ?? null : null;
  } };

function gathered(pc, seconds = 5) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, seconds * 1000);  // send what there is: host candidates suffice on a LAN
  });
}

class Line {
  // post(sdp) -> the server's answer {sdp}; onState(state) for the page's status; video: where the
  // caller's picture is shown (the staff's pages) or null; relay: only TURN relays (tests, strict networks).
  constructor({ post, camera = false, watch = false, iceServers = [], relay = false, onState = () => {}, onEnded = null,
                video = null, audio }) {
    Object.assign(this, { post, camera, watch, iceServers, relay, onState, onEnded, video, audio });
    this.pc = null; this.stream = null; this.closed = false; this.retryTimer = null;
  }

  async open() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: this.camera ? { facingMode: { ideal: "environment" }, width: { ideal: 640 }, height: { ideal: 480 },
                             frameRate: { max: 15 } } : false });
    await this.connect();
  }

  async connect() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.relay ? "relay" : "all" });
    this.stream.getTracks().forEach((track) => pc.addTrack(track, this.stream));
    if (this.watch) pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (event) => {
      if (event.track.kind === "audio") this.hear(new MediaStream([event.track]));
      else if (this.video) this.video.srcObject = new MediaStream([event.track]);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      liandongLine.state = pc.connectionState;
      this.onState(pc.connectionState);
      if (pc.connectionState === "failed" || pc.connectionState === "disconnected") this.retrySoon();
    };
    const old = this.pc;
    this.pc = liandongLine.pc = pc;
    if (old) old.close();
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await this.post(pc.localDescription.sdp);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    liandongLine.joins += 1;
  }

  retrySoon(delay = 2000) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(async () => {
      if (this.closed || this.pc?.connectionState === "connected") return;
      try { await this.connect(); } catch (error) {
        if (error.code === "closed" || error.code === "forbidden") { this.close(); this.onEnded?.(error); return; }
        this.onState("failed"); this.retrySoon(Math.min(delay * 2, 10000));
      }
    }, delay);
  }

  // The other parties, played by an <audio> element (Chromium plays remote WebRTC sound only through
  // one) and measured by an analyser beside it.
  hear(stream) {
    this.audio.srcObject = stream;
    this.audio.play().catch(() => {});
    const context = liandongLine.context ??= new AudioContext();
    context.resume();
    const analyser = context.createAnalyser();
    analyser.fftSize = 4096;
    context.createMediaStreamSource(stream).connect(analyser);
    liandongLine.analyser = analyser;
  }

  mute(muted) { this.stream?.getAudioTracks().forEach((track) => { track.enabled = !muted; }); }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.pc?.close();
    this.stream?.getTracks().forEach((track) => track.stop());
    liandongLine.state = "closed";
    this.onState("closed");
  }
}
window.Line = Line;
