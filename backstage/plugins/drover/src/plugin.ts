import {
  createApiFactory,
  createComponentExtension,
  createPlugin,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/core-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import { DroverClient, droverApiRef } from './api';

export const droverPlugin = createPlugin({
  id: 'drover',
  apis: [
    createApiFactory({
      api: droverApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) => new DroverClient({ discoveryApi, fetchApi }),
    }),
  ],
});

/** The "Migrations" tab of a migration-plan component. */
export const EntityDroverContent = droverPlugin.provide(
  createComponentExtension({
    name: 'EntityDroverContent',
    component: {
      lazy: () => import('./components/MigrationsContent').then(m => m.MigrationsContent),
    },
  }),
);

/** A card for dataset entities listing their migrations. */
export const EntityDroverDatasetCard = droverPlugin.provide(
  createComponentExtension({
    name: 'EntityDroverDatasetCard',
    component: {
      lazy: () => import('./components/DatasetCard').then(m => m.DatasetCard),
    },
  }),
);

/** For EntitySwitch: a drover migration plan. */
export const isDroverMigrationPlan = (entity: Entity) =>
  entity.kind.toLocaleLowerCase('en-US') === 'component' &&
  (entity.spec as any)?.type === 'migration-plan';

/** For EntitySwitch: a dataset (a Component or Resource of type dataset). */
export const isDroverDataset = (entity: Entity) => (entity.spec as any)?.type === 'dataset';
