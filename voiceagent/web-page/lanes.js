// A turn's lanes from its timeline (the JSON `voiceagent --timeline` writes): listening,
// each LLM round, each tool, and the speech, side by side on one time axis.
const SVG = "http://www.w3.org/2000/svg";
const LANE = 22;
const LEFT = 96;
const WIDTH = 400;

function spans(events, start, end, key) {
  const open = new Map();
  const out = [];
  for (const event of events) {
    if (event.kind === start) open.set(event[key], event);
    else if (event.kind === end && open.has(event[key])) {
      out.push({ from: open.get(event[key]).t_ms, to: event.t_ms, label: event.name || event.text || "" });
      open.delete(event[key]);
    }
  }
  return out;
}

function element(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function drawLanes(box, figures, turn) {
  const events = turn.events || [];
  const end = Math.max(1, ...events.map((e) => e.t_ms));
  const lanes = [];
  const speechEnd = events.find((e) => e.kind === "user.speech_end");
  if (speechEnd) lanes.push({ name: "listening", css: "listening", spans: [{ from: 0, to: speechEnd.t_ms }] });
  const rounds = spans(events, "llm.request", "llm.end", "round");
  rounds.forEach((span, i) => lanes.push({ name: `LLM round ${i + 1}`, css: "llm", spans: [span] }));
  for (const span of spans(events, "tool.start", "tool.end", "call_id")) {
    lanes.push({ name: `tool ${span.label}`.slice(0, 18), css: "tool", spans: [span] });
  }
  lanes.push({ name: "speech", css: "speech", spans: spans(events, "audio.start", "audio.end", "segment") });
  const height = LANE * lanes.length + 24;
  const svg = element("svg", { viewBox: `0 0 ${LEFT + WIDTH + 10} ${height}`, role: "img" });
  const x = (ms) => LEFT + (WIDTH * ms) / end;
  lanes.forEach((lane, row) => {
    svg.append(element("text", { x: 4, y: row * LANE + 15 }, lane.name));
    for (const span of lane.spans) {
      svg.append(element("rect", {
        class: lane.css, x: x(span.from), y: row * LANE + 4,
        width: Math.max(1, x(span.to) - x(span.from)), height: LANE - 8,
      }));
    }
  });
  for (const barge of events.filter((e) => e.kind === "barge_in")) {
    svg.append(element("line", { class: "barge", x1: x(barge.t_ms), x2: x(barge.t_ms), y1: 0, y2: height - 20 }));
  }
  svg.append(element("text", { x: LEFT, y: height - 4 }, "0 ms"));
  svg.append(element("text", { x: LEFT + WIDTH - 50, y: height - 4 }, `${Math.round(end)} ms`));
  box.replaceChildren(svg);
  const first = turn.metrics ? turn.metrics.first_audio_ms : null;
  const from = turn.trigger === "user" ? "end of speech → first audio" : "first audio";
  const figure = first === null || first === undefined ? "n/a" : `${Math.round(first)} ms`;
  const cut = events.some((e) => e.kind === "barge_in") ? "; cut by a barge-in" : "";
  figures.textContent = `${turn.trigger} turn: ${from} ${figure}${cut}`;
}
