// Opens a ficus HTML report in headless Chromium (Debian's, through playwright-core: no
// downloaded browser) and checks that it renders every section and its SVG charts, with no
// console errors, no page errors and no network requests (the page is self-contained).
//   node tests/web/check_report.js REPORT.html [CHROMIUM]
// Prints one JSON line with what it saw; exits 1 on any failed check.
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

async function main() {
  const file = path.resolve(process.argv[2]);
  const executablePath = process.argv[3] || process.env.CHROMIUM || '/usr/bin/chromium';
  const browser = await chromium.launch({ executablePath, headless: true,
                                          args: ['--no-sandbox', '--disable-gpu'] });
  const problems = [];
  try {
    const page = await browser.newPage();
    page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
    page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
    page.on('request', (r) => { if (!r.url().startsWith('file:')) problems.push('network: ' + r.url()); });
    await page.goto('file://' + file, { waitUntil: 'load', timeout: 20000 });
    const seen = await page.evaluate(() => {
      const out = { sections: {}, charts: {}, findings: [] };
      for (const s of document.querySelectorAll('section')) {
        out.sections[s.id] = s.querySelector('h2') ? s.querySelector('h2').textContent : '';
      }
      for (const svg of document.querySelectorAll('svg.chart')) {
        const box = svg.getBoundingClientRect();
        out.charts[svg.id] = { marks: svg.querySelectorAll('rect,polyline,line').length,
                               width: box.width, height: box.height };
      }
      for (const f of document.querySelectorAll('#findings .f')) out.findings.push(f.dataset.kind);
      return out;
    });
    for (const id of ['traffic', 'latency', 'slo', 'findings', 'noisy', 'events', 'risk', 'capacity']) {
      if (!(id in seen.sections)) problems.push('missing section #' + id);
    }
    for (const id of ['chart-requests', 'chart-time', 'chart-trend', 'chart-risk']) {
      const c = seen.charts[id];
      if (!c) problems.push('missing chart #' + id);
      else if (c.marks === 0 || c.width === 0 || c.height === 0) problems.push('empty chart #' + id);
    }
    console.log(JSON.stringify({ ok: problems.length === 0, problems, ...seen }));
  } finally {
    await browser.close();
  }
  process.exit(problems.length === 0 ? 0 : 1);
}

main().catch((e) => { console.log(JSON.stringify({ ok: false, problems: [String(e)] })); process.exit(1); });
