// The page: Talk opens the microphone (the browser's echo cancellation, noise suppression
// and gain control on) and the websocket; 20 ms PCM16 frames go up, the agent's voice comes
// down into a player with a small jitter buffer. The page tells the server how far it has
// played and when each segment's last sample has played, so "what was heard" is exact.
import { drawLanes } from "./lanes.js";

const FRAME_MS = 20;
const PREBUFFER_MS = 60; // the jitter buffer: audio held before playing starts
const REPORT_MS = 40; // how often the player says how far it has played

const talk = document.getElementById("talk");
const statusLine = document.getElementById("status");
const transcript = document.getElementById("transcript");
const typed = document.getElementById("typed");
const typedText = document.getElementById("typed-text");

let socket = null;
let micStream = null;
let captureContext = null;
let playerContext = null;
let player = null;
let waiting = []; // audio that came before the player was ready
let markers = []; // {at, kind: "segment" | "mark", message}, by stream position
let userLine = null; // the user's line being transcribed
let agentLine = null; // the agent's line of the turn in progress
let playingSpan = null;

// What happened when, for tests and bench/web_first_audio.py (performance.now() times).
window.voiceagent = {
  frames: 0, positions: 0, marks: 0, clears: 0, turns: [],
  firstFrameAt: null, starts: [], segments: [], userTurns: [],
};

talk.addEventListener("click", () => (socket ? stop("stopped") : start()));
typed.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = typedText.value.trim();
  if (text && socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "text", text }));
    addLine("user", text);
    typedText.value = "";
  }
});

function setStatus(text) {
  statusLine.textContent = text;
}

async function start() {
  talk.disabled = true;
  setStatus("Asking for the microphone…");
  try {
    micStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
  } catch (error) {
    setStatus(`No microphone: ${error.message}`);
    talk.disabled = false;
    return;
  }
  captureContext = new AudioContext();
  await captureContext.audioWorklet.addModule("capture-worklet.js");
  const rate = captureContext.sampleRate;
  const capture = new AudioWorkletNode(captureContext, "pcm-capture", {
    processorOptions: { frameSamples: Math.round((rate * FRAME_MS) / 1000) },
    outputChannelCount: [1],
  });
  captureContext.createMediaStreamSource(micStream).connect(capture);
  capture.connect(captureContext.destination); // pulled by the graph; it outputs silence

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/ws`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    socket.send(JSON.stringify({ type: "hello", sample_rate: rate }));
    capture.port.onmessage = (event) => {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(event.data);
        if (window.voiceagent.frames === 0) window.voiceagent.firstFrameAt = performance.now();
        window.voiceagent.frames += 1;
      }
    };
    talk.textContent = "Stop";
    talk.classList.add("live");
    talk.disabled = false;
    typedText.disabled = false;
    typed.querySelector("button").disabled = false;
    setStatus("Listening: speak.");
  };
  socket.onmessage = (event) => receive(event.data);
  socket.onclose = (event) => stop(event.code === 1000 ? "the conversation ended" : `closed (${event.code} ${event.reason})`);
}

function stop(why) {
  if (socket) {
    const closing = socket;
    socket = null;
    closing.onclose = null;
    if (closing.readyState <= WebSocket.OPEN) closing.close(1000);
  }
  if (micStream) micStream.getTracks().forEach((track) => track.stop());
  for (const context of [captureContext, playerContext]) if (context) context.close();
  micStream = captureContext = playerContext = player = null;
  waiting = [];
  markers = [];
  talk.textContent = "Talk";
  talk.classList.remove("live");
  talk.disabled = false;
  typedText.disabled = true;
  typed.querySelector("button").disabled = true;
  setStatus(`Not talking: ${why}.`);
}

async function startPlayer(rate) {
  playerContext = new AudioContext({ sampleRate: rate });
  await playerContext.audioWorklet.addModule("player-worklet.js");
  const node = new AudioWorkletNode(playerContext, "pcm-player", {
    numberOfInputs: 0,
    outputChannelCount: [1],
    processorOptions: {
      prebufferSamples: Math.round((rate * PREBUFFER_MS) / 1000),
      reportSamples: Math.round((rate * REPORT_MS) / 1000),
    },
  });
  node.connect(playerContext.destination);
  node.port.onmessage = (event) => played(event.data);
  await playerContext.resume();
  player = node;
  for (const pcm of waiting) player.port.postMessage({ type: "audio", pcm }, [pcm]);
  waiting = [];
}

function receive(data) {
  if (data instanceof ArrayBuffer) {
    if (player) player.port.postMessage({ type: "audio", pcm: data }, [data]);
    else waiting.push(data);
    return;
  }
  const message = JSON.parse(data);
  switch (message.type) {
    case "ready":
      startPlayer(message.output_rate);
      break;
    case "segment":
      window.voiceagent.segments.push({ segment: message.segment, at: message.at, t: performance.now() });
      markers.push({ at: message.at, kind: "segment", message });
      break;
    case "mark":
      markers.push({ at: message.at, kind: "mark", message });
      if (player) player.port.postMessage({ type: "flush" });
      break;
    case "clear":
      window.voiceagent.clears += 1;
      markers = [];
      if (player) player.port.postMessage({ type: "clear", at: message.at });
      else if (socket) socket.send(JSON.stringify({ type: "cleared", position: message.at }));
      if (agentLine) cut(agentLine);
      break;
    case "transcript":
      userSaid(message.text, message.final);
      break;
    case "turn_started":
      if (message.trigger === "user") window.voiceagent.userTurns.push({ t: performance.now(), segments: window.voiceagent.segments.length });
      agentLine = null;
      playingSpan = null;
      break;
    case "barge_in":
      setStatus("You talked over the agent: it stopped.");
      break;
    case "turn":
      turnEnded(message);
      break;
  }
}

function played(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  if (message.type === "started") {
    window.voiceagent.starts.push({ position: message.position, t: performance.now() });
    return;
  }
  if (message.type === "cleared") {
    socket.send(JSON.stringify({ type: "cleared", position: message.position }));
    return;
  }
  const position = message.position;
  window.voiceagent.positions += 1;
  socket.send(JSON.stringify({ type: "played", position }));
  while (markers.length && (markers[0].kind === "mark" ? markers[0].at <= position : markers[0].at < position)) {
    const { kind, message: m } = markers.shift();
    if (kind === "segment") segmentHeard(m);
    else {
      socket.send(JSON.stringify({ type: "mark", name: m.name, position: m.at }));
      window.voiceagent.marks += 1;
      if (playingSpan) playingSpan.classList.remove("playing");
      playingSpan = null;
    }
  }
}

function addLine(who, text) {
  const li = document.createElement("li");
  li.className = who;
  const label = document.createElement("span");
  label.className = "who";
  label.textContent = who === "user" ? "You:" : "Agent:";
  const words = document.createElement("span");
  words.className = "words";
  words.textContent = text;
  li.append(label, words);
  transcript.append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function userSaid(text, final) {
  if (!userLine) userLine = addLine("user", text);
  userLine.querySelector(".words").textContent = text;
  userLine.classList.toggle("partial", !final);
  if (final) userLine = null;
}

function segmentHeard(message) {
  if (!agentLine) {
    agentLine = addLine("agent", "");
    agentLine.dataset.segments = "";
  }
  const span = document.createElement("span");
  span.className = "segment playing";
  span.textContent = message.text + " ";
  agentLine.querySelector(".words").append(span);
  playingSpan = span;
}

function cut(line) {
  if (!line.querySelector(".cut")) {
    const note = document.createElement("span");
    note.className = "cut";
    note.textContent = "(interrupted)";
    line.append(note);
  }
}

function turnEnded(message) {
  window.voiceagent.turns.push({ trigger: message.trigger, heard: message.heard, unheard: message.unheard, reason: message.reason });
  const line = agentLine || (message.said ? addLine("agent", "") : null);
  if (line) {
    const words = line.querySelector(".words");
    words.replaceChildren();
    const heard = document.createElement("span");
    heard.className = "heard";
    heard.textContent = message.heard;
    words.append(heard);
    if (message.unheard) {
      const unheard = document.createElement("s");
      unheard.className = "unheard";
      unheard.title = "said but not heard: you talked over it";
      unheard.textContent = " " + message.unheard;
      words.append(unheard);
      cut(line);
    }
  }
  agentLine = null;
  playingSpan = null;
  drawLanes(document.getElementById("lanes"), document.getElementById("figures"), message.timeline);
  setStatus("Listening: speak.");
}
