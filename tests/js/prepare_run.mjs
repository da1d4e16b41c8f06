// prepare_run.mjs PREPARE.js LIST.json OUT.json - runs the drawing page's
// preparation (tools/web/prepare.js) on raw RGBA pictures: LIST holds
// {"rgba": FILE, "w": W, "h": H, "fh": FH, "fw": FW} entries, and OUT gets,
// for each, the field as float32 and as bytes (both base64), or the error's
// message.
import fs from 'node:fs';

const [prepareFile, listFile, outFile] = process.argv.slice(2);
// prepare.js is an ES module of the page, outside any package: imported
// from its text.
const source = fs.readFileSync(prepareFile, 'utf8');
const { imageInk, imageField, imagePrepare } = await import(`data:text/javascript,${encodeURIComponent(source)}`);
const out = JSON.parse(fs.readFileSync(listFile, 'utf8')).map((p) => {
  const rgba = new Uint8Array(fs.readFileSync(p.rgba));
  try {
    const ink = imageInk(rgba, p.w, p.h);
    const field = imageField(ink, p.h, p.w, p.fh, p.fw);
    return {
      field: Buffer.from(field.buffer).toString('base64'),
      bytes: Buffer.from(imagePrepare(ink, p.h, p.w, p.fh, p.fw)).toString('base64'),
    };
  } catch (e) {
    return { error: e.message };
  }
});
fs.writeFileSync(outFile, JSON.stringify(out));
