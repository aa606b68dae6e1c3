// Reminder tones, synthesised with Web Audio so the pages need no sound files. The output passes
// through an analyser that measures what actually reached the speakers: liandongAudio.heard counts
// tones whose signal was measured there (for people debugging a silent terminal, and for tests).
"use strict";
const liandongAudio = window.liandongAudio = { context: null, analyser: null, armed: false, ringing: false,
                                                tonesPlayed: 0, heard: 0, peak: 0, lastTone: null };

// Browsers allow audio only after a gesture: call this from a click or key handler.
async function armAudio() {
  const audio = liandongAudio;
  if (!audio.context) {
    audio.context = new AudioContext();
    audio.analyser = audio.context.createAnalyser();
    audio.analyser.fftSize = 2048;
    audio.analyser.connect(audio.context.destination);
  }
  await audio.context.resume();
  audio.armed = audio.context.state === "running";
  return audio.armed;
}

const TONE_SECONDS = { siren: 1.2, urgent: 0.65, chime: 0.8 };

// siren: a sweep; urgent: three beeps; chime: two soft notes.
function playTone(tone) {
  const audio = liandongAudio, ctx = audio.context;
  if (!ctx || ctx.state !== "running") return false;
  const gain = ctx.createGain();
  gain.connect(audio.analyser);
  const now = ctx.currentTime;
  const beep = (freq, start, length, type = "square") => {
    const osc = ctx.createOscillator();
    osc.type = type; osc.frequency.setValueAtTime(freq, now + start);
    osc.connect(gain); osc.start(now + start); osc.stop(now + start + length);
    return osc;
  };
  gain.gain.setValueAtTime(0.25, now);
  if (tone === "siren") {
    const osc = beep(600, 0, 1.2, "sawtooth");
    osc.frequency.linearRampToValueAtTime(1200, now + 0.6);
    osc.frequency.linearRampToValueAtTime(600, now + 1.2);
  } else if (tone === "urgent") {
    [0, 0.25, 0.5].forEach((t) => beep(880, t, 0.15));
  } else {
    beep(660, 0, 0.3, "sine"); beep(990, 0.3, 0.5, "sine");
  }
  audio.tonesPlayed += 1;
  audio.lastTone = tone;
  measure((TONE_SECONDS[tone] ?? 1) * 1000);
  return true;
}

// Sample the analyser while the tone lasts; a tone counts as heard once its signal is measured.
function measure(milliseconds) {
  const audio = liandongAudio;
  const samples = new Float32Array(audio.analyser.fftSize);
  const until = performance.now() + milliseconds;
  let counted = false;
  const timer = setInterval(() => {
    audio.analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (const s of samples) peak = Math.max(peak, Math.abs(s));
    audio.peak = Math.max(audio.peak, peak);
    if (peak > 0.05 && !counted) { counted = true; audio.heard += 1; }
    if (performance.now() > until) clearInterval(timer);
  }, 40);
}
