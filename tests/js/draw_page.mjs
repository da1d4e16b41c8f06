// draw_page.mjs URL DRAWINGS.json OUT.json [SCREENSHOT.png] - opens the
// drawing page in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium or $CHROMIUM), draws each drawing's strokes through
// the mouse, and writes what the page then shows: the class in large type,
// each class's probability (from its figure), the 28x28 bytes the model
// saw, and the pad as a PNG file (base64).  A drawing is a list of strokes,
// each a list of [x, y] in the pad's pixels.  With SCREENSHOT, the page
// after the last drawing.
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const [url, drawingsPath, outPath, screenshot] = process.argv.slice(2);
const drawings = JSON.parse(fs.readFileSync(drawingsPath, 'utf8'));

// As root, and with no network: no sandbox, nothing fetched in the
// background (the closed network would refuse it, many times a second).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 860, height: 440 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  await page.goto(url);
  await page.waitForSelector('body[data-ready]', { timeout: 60000 });
  const ready = await page.getAttribute('body', 'data-ready');
  if (ready !== 'yes') throw new Error(`the page did not start: ${await page.textContent('#status')}`);
  const box = await page.locator('#pad').boundingBox();
  const results = [];
  for (const strokes of drawings) {
    await page.click('#clear');
    for (const stroke of strokes) {
      await page.mouse.move(box.x + stroke[0][0], box.y + stroke[0][1]);
      await page.mouse.down();
      for (const [x, y] of stroke.slice(1)) await page.mouse.move(box.x + x, box.y + y, { steps: 4 });
      await page.mouse.up();
    }
    await page.evaluate(() => window.trainerPage.settled());
    results.push(await page.evaluate(() => {
      const s = window.trainerPage;
      const figures = [...document.querySelectorAll('#bars .probability')];
      return {
        shown: document.getElementById('verdict').textContent,
        probabilities: figures.map((f) => (f.dataset.probability === undefined ? null
          : Number(f.dataset.probability))),
        figures: figures.map((f) => f.textContent),
        input: s.input ? Array.from(s.input) : null,
        error: s.error,
        status: document.getElementById('status').textContent,
        png: document.getElementById('pad').toDataURL('image/png').split(',')[1],
      };
    }));
  }
  if (screenshot) await page.screenshot({ path: screenshot });
  fs.writeFileSync(outPath, JSON.stringify({ results, problems }));
} finally {
  await browser.close();
}
