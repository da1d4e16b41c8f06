// The drawing page: a pad to draw on, the model run by ONNX Runtime Web on
// every change, the drawing prepared as `trainer predict` prepares a picture.
import { prepareDigit } from './prepare.js';

const pad = document.getElementById('pad');
const pen = pad.getContext('2d', { willReadFrequently: true });
const seen = document.getElementById('seen');
const verdict = document.getElementById('verdict');
const status = document.getElementById('status');
const bars = document.getElementById('bars');

// What the last prediction saw and gave, and a promise for the tests and
// for scripts: settled() resolves once no prediction is pending.
const state = { input: null, probabilities: null, predictions: 0, error: null };
window.trainerPage = state;

function say(text, error = false) {
  status.textContent = text;
  status.className = error ? 'error' : '';
}

function clearPad() {
  pen.fillStyle = '#fff';
  pen.fillRect(0, 0, pad.width, pad.height);
}

// A class's name: the model's own (model.json's names) or its number.
function className(info, c) {
  return info.names ? info.names[c] : String(c);
}

function makeBars(info) {
  const rows = [];
  for (let c = 0; c < info.classes; c++) {
    const label = document.createElement('span');
    label.textContent = className(info, c);
    const track = document.createElement('div');
    track.className = 'track';
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.style.width = '0';
    track.append(bar);
    const figure = document.createElement('span');
    figure.className = 'probability';
    figure.dataset.class = String(c);
    bars.append(label, track, figure);
    rows.push({ bar, figure });
  }
  return rows;
}

function show(rows, probabilities, input, info) {
  let best = 0;
  probabilities.forEach((p, c) => { if (p > probabilities[best]) best = c; });
  verdict.textContent = className(info, best);
  verdict.dataset.class = String(best);
  rows.forEach((row, c) => {
    const p = probabilities[c];
    row.bar.style.width = `${(100 * p).toFixed(1)}%`;
    row.bar.className = c === best ? 'bar top' : 'bar';
    row.figure.textContent = `${(100 * p).toFixed(2)}%`;
    row.figure.dataset.probability = String(p);
  });
  const picture = new ImageData(info.width, info.height);
  for (let j = 0; j < input.length; j++) {
    picture.data.set([input[j], input[j], input[j], 255], 4 * j);
  }
  seen.width = info.width;
  seen.height = info.height;
  seen.getContext('2d').putImageData(picture, 0, 0);
}

function blank(rows) {
  verdict.textContent = '';
  delete verdict.dataset.class;
  rows.forEach((row) => {
    row.bar.style.width = '0';
    row.figure.textContent = '';
    delete row.figure.dataset.probability;
  });
  seen.getContext('2d').clearRect(0, 0, seen.width, seen.height);
}

async function start() {
  const response = await fetch('model.json');
  if (!response.ok) throw new Error(`model.json: ${response.status} ${response.statusText}`);
  const info = await response.json();
  ort.env.wasm.wasmPaths = new URL('./', location.href).href;
  // Threads need a cross-origin isolated page, which a plain static server
  // does not give; one thread runs these models in a millisecond or two.
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create('model.onnx', { executionProviders: ['wasm'] });
  const rows = makeBars(info);
  document.getElementById('about').textContent =
    `The model: ${info.layers}; ${info.classes} classes.`;

  let running = null;
  let dirty = false;
  async function predict() {
    const { width, height } = pad;
    const rgba = pen.getImageData(0, 0, width, height).data;
    let input;
    try {
      input = prepareDigit(rgba, width, height, info.height, info.width);
    } catch (e) { // a blank pad: no ink
      blank(rows);
      state.input = null;
      state.probabilities = null;
      state.error = e.message;
      say('draw a digit');
      return;
    }
    // The model takes [N][C][H][W] floats, each byte / 255, the grey
    // picture in every channel (as `trainer predict` gives it).
    const size = info.height * info.width;
    const x = new Float32Array(size * info.channels);
    for (let ch = 0; ch < info.channels; ch++)
      for (let j = 0; j < size; j++) x[ch * size + j] = input[j] / 255;
    const feeds = {};
    feeds[session.inputNames[0]] = new ort.Tensor('float32', x, [1, info.channels, info.height, info.width]);
    const out = await session.run(feeds);
    const probabilities = Float32Array.from(out[session.outputNames[0]].data);
    state.input = input;
    state.probabilities = probabilities;
    state.error = null;
    state.predictions++;
    show(rows, probabilities, input, info);
    say('');
  }
  // One prediction at a time; changes made meanwhile get one more.
  function schedule() {
    if (running) {
      dirty = true;
      return;
    }
    running = (async () => {
      do {
        dirty = false;
        await predict();
      } while (dirty);
    })().catch((e) => say(e.message, true)).finally(() => { running = null; });
  }
  state.settled = async () => {
    while (running) await running;
  };

  let last = null;
  function point(e) {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  }
  pen.lineCap = 'round';
  pen.lineJoin = 'round';
  pen.lineWidth = pad.width / 14;
  pen.strokeStyle = '#000';
  pad.addEventListener('pointerdown', (e) => {
    pad.setPointerCapture(e.pointerId);
    last = point(e);
    pen.beginPath();
    pen.moveTo(...last);
    pen.lineTo(...last);
    pen.stroke();
    schedule();
  });
  pad.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = point(e);
    pen.beginPath();
    pen.moveTo(...last);
    pen.lineTo(...p);
    pen.stroke();
    last = p;
    schedule();
  });
  const lift = () => { last = null; };
  pad.addEventListener('pointerup', lift);
  pad.addEventListener('pointercancel', lift);
  document.getElementById('clear').addEventListener('click', () => {
    clearPad();
    schedule();
  });
  say('draw a digit');
  document.body.dataset.ready = 'yes';
}

clearPad();
state.settled = async () => {};
start().catch((e) => {
  // From a file, index.html has said how to serve the page.
  if (location.protocol !== 'file:') say(`the model did not load: ${e.message}`, true);
  document.body.dataset.ready = 'failed';
});
