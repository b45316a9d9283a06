import { createPermission } from '@backstage/plugin-permission-common';

/**
 * Who may submit a drover task (run or dry-run a migration plan).  With
 * Backstage's permission framework off (permission.enabled unset) every
 * authenticated caller may; with it on, the app's policy decides.
 */
export const droverTaskCreatePermission = createPermission({
  name: 'drover.task.create',
  attributes: { action: 'create' },
});

export const droverPermissions = [droverTaskCreatePermission];
