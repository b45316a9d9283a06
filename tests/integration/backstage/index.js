// A minimal Backstage backend: the catalog plugin, for drover's
// integration tests, and drover's backend plugin when scripts/backstage.sh
// bundled it (DROVER_BACKSTAGE_PLUGIN, with app-config.drover.yaml).
// Configuration comes from app-config.yaml with ${...} substitutions
// filled by scripts/backstage.sh.
const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(import('@backstage/plugin-catalog-backend'));
if (process.env.DROVER_BACKSTAGE_PLUGIN)
  backend.add(require(process.env.DROVER_BACKSTAGE_PLUGIN).default);
backend.start();
