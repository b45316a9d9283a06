/*
 * The plugin's dev harness: a minimal Backstage app (createApp) showing
 * the Migrations tab of one plan entity and the card of its dataset.
 * backstage/e2e/tab.e2e.ts bundles it with esbuild and serves it next to
 * the backend plugin; the page names the backend and the entity in
 * window.__DROVER_DEV__.
 */
import { createRoot } from 'react-dom/client';
import { Grid } from '@material-ui/core';
import { createApp } from '@backstage/app-defaults';
import { AppRouter } from '@backstage/core-app-api';
import { Content, Header, Page } from '@backstage/core-components';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import type { Entity } from '@backstage/catalog-model';
import {
  droverPlugin,
  EntityDroverContent,
  EntityDroverDatasetCard,
} from '../src';

declare global {
  interface Window {
    __DROVER_DEV__: { backendUrl: string; appUrl: string; plan: Entity; dataset: Entity };
  }
}

const dev = window.__DROVER_DEV__;
const app = createApp({
  plugins: [droverPlugin],
  configLoader: async () => [
    {
      context: 'dev',
      data: {
        app: { title: 'drover dev', baseUrl: dev.appUrl },
        backend: { baseUrl: dev.backendUrl },
      },
    },
  ],
});

const App = app.createRoot(
  <AppRouter>
    <Page themeId="tool">
      <Header title={dev.plan.metadata.name} subtitle="Migrations" />
      <Content>
        <Grid container spacing={3}>
          <Grid item xs={12}>
            <EntityProvider entity={dev.plan}>
              <EntityDroverContent />
            </EntityProvider>
          </Grid>
          <Grid item xs={12}>
            <EntityProvider entity={dev.dataset}>
              <EntityDroverDatasetCard />
            </EntityProvider>
          </Grid>
        </Grid>
      </Content>
    </Page>
  </AppRouter>,
);

createRoot(document.getElementById('root')!).render(<App />);
