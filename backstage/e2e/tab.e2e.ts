/*
 * End to end in headless Chromium: the frontend plugin's dev harness
 * (plugins/drover/dev, bundled here with esbuild) served by a Backstage
 * test backend that also runs the drover backend plugin, against the real
 * drover worker of tests/integration/test_backstage_plugin.sh (which runs
 * this after the backend suite, so the seed's migration is done).  The
 * Migrations tab must show that task as done; the page is saved as a
 * screenshot in $DROVER_E2E_ARTIFACTS.  Browser: $CHROMIUM (Debian's
 * chromium), driven by puppeteer-core, which downloads no browser.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { build } from 'esbuild';
import puppeteer from 'puppeteer-core';
import {
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type { Entity } from '@backstage/catalog-model';
import { droverPlugin } from '../plugins/drover-backend/src/plugin';

const env = process.env;
jest.setTimeout(300_000);

/** Serves the bundled harness at /api/app/ (no token needed). */
function appPlugin(dir: string, page: () => string) {
  return createBackendPlugin({
    pluginId: 'app',
    register(reg) {
      reg.registerInit({
        deps: { httpRouter: coreServices.httpRouter },
        async init({ httpRouter }) {
          const express = require('express');
          const router = express.Router();
          router.use(express.static(dir, { index: false }));
          router.get('*', (_req: any, res: any) => res.type('html').send(page()));
          httpRouter.use(router);
          httpRouter.addAuthPolicy({ path: '/', allow: 'unauthenticated' });
        },
      });
    },
  });
}

it('shows the seed migration as done in the Migrations tab', async () => {
  const plan: Entity = JSON.parse(fs.readFileSync(env.DROVER_PLUGIN_TEST_PLAN!, 'utf8'));
  plan.metadata.namespace = 'default';
  const dsName = (plan.spec as any).dataset;
  const dataset: Entity = {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'customer', namespace: 'default', annotations: { 'drover.io/dataset': dsName } },
    spec: { type: 'dataset', owner: 'tests', lifecycle: 'test' },
  };

  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'drover-dev-'));
  await build({
    entryPoints: [path.join(__dirname, '../plugins/drover/dev/index.tsx')],
    bundle: true,
    outfile: path.join(out, 'app.js'),
    format: 'iife',
    jsx: 'automatic',
    minify: true,
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
    loader: { '.svg': 'file', '.png': 'file', '.woff': 'file', '.woff2': 'file', '.ttf': 'file' },
  });

  let base = '';
  const page = () => `<!doctype html><html><head><meta charset="utf-8">
<title>drover dev</title><link rel="stylesheet" href="${base}/api/app/app.css"></head>
<body><div id="root"></div><script>window.__DROVER_DEV__=${JSON.stringify({
    backendUrl: base,
    appUrl: `${base}/api/app`,
    plan,
    dataset,
  })};</script><script src="${base}/api/app/app.js"></script></body></html>`;

  const { server } = await startTestBackend({
    features: [
      droverPlugin,
      appPlugin(out, page),
      mockServices.rootConfig.factory({
        data: {
          drover: {
            baseUrl: env.DROVER_PLUGIN_TEST_ADMIN_URL,
            token: env.DROVER_PLUGIN_TEST_ADMIN_TOKEN,
          },
        },
      }),
      catalogServiceMock.factory({ entities: [plan, dataset] }),
    ],
  });
  base = `http://localhost:${server.port()}`;

  const browser = await puppeteer.launch({
    executablePath: env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', e => errors.push(String(e)));
    tab.on('console', m => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const shots = env.DROVER_E2E_ARTIFACTS ?? out;
    fs.mkdirSync(shots, { recursive: true });
    const shot = path.join(shots, 'backstage-migrations-tab.png');
    await tab.setViewport({ width: 1280, height: 900 });
    await tab.goto(`${base}/api/app/`, { waitUntil: 'networkidle0' });
    // the seed's task, done, in the tab's table (waits on the live refresh)
    try {
      await tab.waitForFunction(
        () =>
          Array.from(document.querySelectorAll('table[aria-label="migrations"] td')).some(
            c => c.textContent === 'done',
          ),
        { timeout: 60_000 },
      );
    } catch (e) {
      // what the page shows instead, for the failure message
      await tab.screenshot({ path: shot, fullPage: true });
      const body = await tab.$eval('body', b => b.innerText).catch(() => '');
      throw new Error(`no done row in the tab (${e}); page: ${body.slice(0, 2000)}; errors: ${errors.join(' | ')}`);
    }
    const text = await tab.$eval('body', b => b.innerText);
    expect(text).toContain(dsName);
    expect(text).toMatch(/3\/3/);
    const buttons = await tab.$$eval('button', bs =>
      bs.map(b => [b.textContent, (b as HTMLButtonElement).disabled]),
    );
    expect(buttons).toContainEqual(['Run migration', false]);
    expect(buttons).toContainEqual(['Dry run', false]);
    await tab.screenshot({ path: shot, fullPage: true });
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
    fs.rmSync(out, { recursive: true, force: true });
  }
});
