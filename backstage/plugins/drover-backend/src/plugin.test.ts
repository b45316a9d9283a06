/*
 * The drover backend plugin in a real Backstage test backend, against a
 * real drover worker (its admin HTTP server), Kafka and PostgreSQL that
 * tests/integration/test_backstage_plugin.sh starts and names in
 * DROVER_PLUGIN_TEST_*.  The catalog is a mock holding the same plan the
 * worker reads from its DROVER_CATALOG_DIR.  Without those variables the
 * suite is skipped (the shell test decides whether that is a failure).
 */
import fs from 'fs';
import request from 'supertest';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type { Entity } from '@backstage/catalog-model';
import { droverPlugin } from './plugin';

const env = process.env;
const ADMIN = env.DROVER_PLUGIN_TEST_ADMIN_URL;
const TOKEN = env.DROVER_PLUGIN_TEST_ADMIN_TOKEN ?? '';
const live = ADMIN ? describe : describe.skip;
const SEED_REF = 'component:default/customer-dataset-v2-migration';

jest.setTimeout(180_000);

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

function entities(plan: Entity): Entity[] {
  const component = (name: string, spec: object, annotations = {}): Entity => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name, namespace: 'default', annotations },
    spec: { lifecycle: 'test', owner: 'tests', ...spec },
  });
  return [
    { ...plan, metadata: { namespace: 'default', ...plan.metadata } },
    component('source-dataset', { type: 'dataset' }),
    component(
      'other-queue-migration',
      { ...plan.spec },
      { 'drover.io/queue': 'other-migrations' },
    ),
  ];
}

async function backend(plan: Entity, permissions?: AuthorizeResult.ALLOW | AuthorizeResult.DENY) {
  const { server } = await startTestBackend({
    features: [
      droverPlugin,
      mockServices.rootConfig.factory({
        data: { drover: { baseUrl: ADMIN, token: TOKEN } },
      }),
      catalogServiceMock.factory({ entities: entities(plan) }),
      // a request without a token is unauthenticated (the mock's default
      // would be a user)
      mockServices.httpAuth.factory({ defaultCredentials: mockCredentials.none() }),
      ...(permissions ? [mockServices.permissions.factory({ result: permissions })] : []),
    ],
  });
  return server;
}

live('drover backend plugin against a real drover worker', () => {
  let plan: Entity;
  let dataset: string;
  let server: Awaited<ReturnType<typeof backend>>;

  beforeAll(async () => {
    // the worker's plan file is JSON (a YAML subset): the same entity
    plan = JSON.parse(fs.readFileSync(env.DROVER_PLUGIN_TEST_PLAN!, 'utf8'));
    dataset = (plan.spec as any).dataset;
    server = await backend(plan);
  });

  const user = () => mockCredentials.user.header();

  // GET /api/drover/migrations until the task is final; the jest timeout
  // bounds it
  async function final(taskId: string, query: string) {
    for (;;) {
      const res = await request(server)
        .get(`/api/drover/migrations?${query}`)
        .set('Authorization', user());
      expect(res.status).toBe(200);
      const row = res.body.migrations.find((r: any) => r.task_id === taskId);
      if (row && ['done', 'dry_run', 'skipped', 'dead'].includes(row.status)) return row;
      await sleep(250);
    }
  }

  it('runs a dry run when asked (dryRun: true), before the real run', async () => {
    const res = await request(server)
      .post('/api/drover/tasks')
      .set('Authorization', user())
      .send({ dryRun: true, payload: { entity_ref: 'customer-dataset-v2-migration' } });
    expect(res.status).toBe(202);
    expect(res.body.dryRun).toBe(true);
    const row = await final(res.body.taskId, `dataset=${dataset}`);
    expect(row.status).toBe('dry_run');
  });

  it("answers the seed's request with 202 and runs the migration to done", async () => {
    const res = await request(server)
      .post('/api/drover/tasks')
      .set('Authorization', user())
      .send({ queue: 'dataset-migrations', payload: { entity_ref: SEED_REF } });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ dataset, entityRef: SEED_REF, dryRun: false });
    expect(res.body.taskId).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(res.body)).not.toContain(TOKEN);

    const row = await final(res.body.taskId, `entityRef=${encodeURIComponent(SEED_REF)}`);
    expect(row).toMatchObject({ status: 'done', dataset, entity_ref: SEED_REF, progress: 1 });
    expect(row.steps_done).toBe(row.steps_total);
    expect(row.started_at).toBeTruthy();
    expect(row.completed_at).toBeTruthy();

    // drover's own status API says the same
    const direct = await fetch(`${ADMIN}/api/migrations?dataset=${dataset}`);
    const rows = (await direct.json()).migrations;
    expect(rows.find((r: any) => r.task_id === res.body.taskId)?.status).toBe('done');
  });

  it('filters the migrations by status', async () => {
    const res = await request(server)
      .get(`/api/drover/migrations?dataset=${dataset}&status=dry_run`)
      .set('Authorization', user());
    expect(res.status).toBe(200);
    expect(res.body.migrations.length).toBeGreaterThan(0);
    expect(res.body.migrations.every((r: any) => r.status === 'dry_run')).toBe(true);
  });

  it('answers 404 for an entity the catalog does not have', async () => {
    const res = await request(server)
      .post('/api/drover/tasks')
      .set('Authorization', user())
      .send({ queue: 'dataset-migrations', payload: { entity_ref: 'component:default/no-such-plan' } });
    expect(res.status).toBe(404);
    expect(res.body.error.message).toBe('no entity "component:default/no-such-plan" in the catalog');
  });

  it('answers 400 for an entity that is not a migration plan', async () => {
    const res = await request(server)
      .post('/api/drover/tasks')
      .set('Authorization', user())
      .send({ payload: { entity_ref: 'component:default/source-dataset' } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^entity "component:default\/source-dataset" is not a migration plan/);
  });

  it('answers 400 for a plan annotated for another queue, and for another queue in the body', async () => {
    let res = await request(server)
      .post('/api/drover/tasks')
      .set('Authorization', user())
      .send({ payload: { entity_ref: 'other-queue-migration' } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/annotated for queue "other-migrations"/);
    res = await request(server)
      .post('/api/drover/tasks')
      .set('Authorization', user())
      .send({ queue: 'other-migrations', payload: { entity_ref: SEED_REF } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe(
      'unknown queue "other-migrations" (this backend submits to "dataset-migrations")',
    );
  });

  it('answers 400 for a malformed body or a dataset other than the plan\'s', async () => {
    for (const body of [{}, { payload: {} }, { payload: { entity_ref: 7 } },
      { payload: { entity_ref: SEED_REF, dry_run: 'yes' } }]) {
      const res = await request(server).post('/api/drover/tasks').set('Authorization', user()).send(body);
      expect(res.status).toBe(400);
    }
    const res = await request(server)
      .post('/api/drover/tasks')
      .set('Authorization', user())
      .send({ payload: { entity_ref: SEED_REF, dataset: 'someone_else' } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe(`dataset "someone_else" is not the plan's dataset "${dataset}"`);
  });

  it('answers 401 without credentials', async () => {
    const res = await request(server)
      .post('/api/drover/tasks')
      .send({ payload: { entity_ref: SEED_REF } });
    expect(res.status).toBe(401);
  });

  it('tells the browser the caller may run (allow-all without a policy)', async () => {
    const res = await request(server).get('/api/drover/access').set('Authorization', user());
    expect(res.body).toEqual({ run: true });
  });

  it('answers 503 while the catalog fails', async () => {
    const { server: down } = await startTestBackend({
      features: [
        droverPlugin,
        mockServices.rootConfig.factory({ data: { drover: { baseUrl: ADMIN, token: TOKEN } } }),
        catalogServiceMock.mock({
          getEntityByRef: async () => {
            throw new Error('Request failed with 503 Service Unavailable');
          },
        }).factory,
      ],
    });
    const res = await request(down)
      .post('/api/drover/tasks')
      .set('Authorization', user())
      .send({ queue: 'dataset-migrations', payload: { entity_ref: SEED_REF } });
    expect(res.status).toBe(503);
    expect(res.body.error).toEqual({
      name: 'ServiceUnavailable',
      message: 'the catalog is unavailable: Request failed with 503 Service Unavailable',
    });
  });

  it('answers 403 when the permission policy denies drover.task.create', async () => {
    const denied = await backend(plan, AuthorizeResult.DENY);
    const before = await fetch(`${ADMIN}/api/migrations?dataset=${dataset}`);
    const n = (await before.json()).migrations.length;
    const res = await request(denied)
      .post('/api/drover/tasks')
      .set('Authorization', user())
      .send({ queue: 'dataset-migrations', payload: { entity_ref: SEED_REF } });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toBe('not allowed to run migrations (permission "drover.task.create")');
    const access = await request(denied).get('/api/drover/access').set('Authorization', user());
    expect(access.body).toEqual({ run: false });
    // nothing was submitted
    const after = await fetch(`${ADMIN}/api/migrations?dataset=${dataset}`);
    expect((await after.json()).migrations.length).toBe(n);
  });
});
