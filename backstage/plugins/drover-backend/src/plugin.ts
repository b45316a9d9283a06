import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { DroverClient } from './drover';
import { droverPermissions } from './permissions';
import { createRouter } from './router';

/**
 * The drover backend plugin: /api/drover/tasks and /api/drover/migrations.
 * Config: drover.baseUrl, drover.token (secret), drover.queue.
 */
export const droverPlugin = createBackendPlugin({
  pluginId: 'drover',
  register(env) {
    env.registerInit({
      deps: {
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        httpRouter: coreServices.httpRouter,
        httpAuth: coreServices.httpAuth,
        permissions: coreServices.permissions,
        permissionsRegistry: coreServices.permissionsRegistry,
        catalog: catalogServiceRef,
      },
      async init({ config, logger, httpRouter, httpAuth, permissions, permissionsRegistry, catalog }) {
        permissionsRegistry.addPermissions(droverPermissions);
        const drover = new DroverClient(
          config.getString('drover.baseUrl'),
          config.getString('drover.token'),
        );
        httpRouter.use(
          await createRouter({
            catalog,
            httpAuth,
            permissions,
            logger,
            drover,
            queue: config.getOptionalString('drover.queue') ?? 'dataset-migrations',
          }),
        );
      },
    });
  },
});
