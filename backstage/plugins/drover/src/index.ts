export {
  droverPlugin,
  EntityDroverContent,
  EntityDroverDatasetCard,
  isDroverMigrationPlan,
  isDroverDataset,
} from './plugin';
export { droverApiRef, DroverClient } from './api';
export type { DroverApi, MigrationRow, Submitted } from './api';
