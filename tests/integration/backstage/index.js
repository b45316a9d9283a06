// A minimal Backstage backend: the catalog plugin only, for drover's
// integration tests.  Configuration comes from app-config.yaml with
// ${...} substitutions filled by scripts/backstage.sh.
const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(import('@backstage/plugin-catalog-backend'));
backend.start();
