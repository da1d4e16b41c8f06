// ort_run.js MODEL.onnx IMAGES.f32 N C H W OUT.f32 - runs an ONNX model with
// ONNX Runtime for Node on N images ([N][C][H][W] float32, little-endian)
// and writes its "probabilities" output as float32.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, images, n, c, h, w, out] = process.argv.slice(2);
  const dims = [n, c, h, w].map(Number);
  const bytes = fs.readFileSync(images);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const session = await ort.InferenceSession.create(model);
  const result = await session.run({ input: new ort.Tensor('float32', data, dims) });
  const p = result.probabilities;
  fs.writeFileSync(out, Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength));
  console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version}: ` +
              `${p.dims.join('x')} probabilities`);
}

main().catch((e) => {
  console.error(`ort_run: ${e.message}`);
  process.exit(1);
});
