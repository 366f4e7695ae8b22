// The agent's voice: 16-bit PCM chunks from the server, played after a small jitter buffer
// (`prebufferSamples`; a segment's end plays at once). `position` counts the samples of the
// stream played; it is reported every `reportSamples` and whenever the buffer runs dry.
// "started" says where playing starts again after the buffer ran dry.
// "clear" drops what is buffered at once, answers where playback stopped, and goes on at `at`.
class PcmPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.prebuffer = options.processorOptions.prebufferSamples;
    this.reportEvery = options.processorOptions.reportSamples;
    this.chunks = [];
    this.offset = 0;
    this.buffered = 0;
    this.position = 0;
    this.reported = 0;
    this.playing = false;
    this.flush = false;
    this.port.onmessage = (event) => this.receive(event.data);
  }

  receive(message) {
    if (message.type === "audio") {
      const chunk = new Int16Array(message.pcm);
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    } else if (message.type === "flush") {
      this.flush = true;
    } else if (message.type === "clear") {
      this.port.postMessage({ type: "cleared", position: this.position });
      this.chunks = [];
      this.offset = 0;
      this.buffered = 0;
      this.playing = false;
      this.flush = false;
      this.position = message.at;
      this.reported = message.at;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    if (!this.playing && this.buffered > 0 && (this.buffered >= this.prebuffer || this.flush)) {
      this.playing = true;
      this.port.postMessage({ type: "started", position: this.position });
    }
    if (this.playing) {
      while (i < out.length && this.chunks.length) {
        const chunk = this.chunks[0];
        const take = Math.min(out.length - i, chunk.length - this.offset);
        for (let j = 0; j < take; j++) out[i + j] = chunk[this.offset + j] / 32768;
        i += take;
        this.offset += take;
        this.buffered -= take;
        this.position += take;
        if (this.offset >= chunk.length) {
          this.chunks.shift();
          this.offset = 0;
        }
      }
      if (!this.chunks.length) {
        this.playing = false; // dry: the jitter buffer fills again before playing on
        this.flush = false;
      }
    }
    for (; i < out.length; i++) out[i] = 0;
    if (this.position !== this.reported &&
        (this.position - this.reported >= this.reportEvery || !this.playing)) {
      this.reported = this.position;
      this.port.postMessage({ type: "position", position: this.position });
    }
    return true;
  }
}

registerProcessor("pcm-player", PcmPlayer);
