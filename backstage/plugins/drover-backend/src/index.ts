/**
 * drover's Backstage backend plugin: POST /api/drover/tasks submits a
 * migration task for a catalog plan, GET /api/drover/migrations reads
 * their status from drover's admin API.
 *
 * @packageDocumentation
 */
export { droverPlugin as default } from './plugin';
export { droverTaskCreatePermission, droverPermissions } from './permissions';
