import express from 'express';
import Router from 'express-promise-router';
import {
  BackstageCredentials,
  HttpAuthService,
  LoggerService,
  PermissionsService,
} from '@backstage/backend-plugin-api';
import {
  Entity,
  parseEntityRef,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import { CatalogService } from '@backstage/plugin-catalog-node';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import { DroverClient, DroverError, DroverRun } from './drover';
import { droverTaskCreatePermission } from './permissions';

/** The catalog annotation naming the queue a plan is meant for. */
export const QUEUE_ANNOTATION = 'drover.io/queue';

export interface RouterOptions {
  catalog: CatalogService;
  httpAuth: HttpAuthService;
  permissions: PermissionsService;
  logger: LoggerService;
  drover: DroverClient;
  queue: string;
}

/** A refusal: an HTTP status and one line saying why. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const bad = (msg: string) => new Refusal(400, msg);

/** `value` if it is a non-empty string, else a 400 naming the field. */
function text(obj: Record<string, unknown>, key: string, required: boolean) {
  const v = obj[key];
  if (v === undefined && !required) return undefined;
  if (v === undefined) throw bad(`missing field "${key}"`);
  if (typeof v !== 'string' || v.length === 0)
    throw bad(`field "${key}" must be a non-empty string`);
  return v;
}

function bool(obj: Record<string, unknown>, key: string) {
  const v = obj[key];
  if (v !== undefined && typeof v !== 'boolean')
    throw bad(`field "${key}" must be a boolean`);
  return v as boolean | undefined;
}

/** The full, lower-case ref of `ref` (kind component, namespace default
 * when left out), or a 400. */
function normalRef(ref: string): string {
  try {
    return stringifyEntityRef(
      parseEntityRef(ref, { defaultKind: 'component', defaultNamespace: 'default' }),
    ).toLocaleLowerCase('en-US');
  } catch (e) {
    throw bad(`invalid entity ref "${ref}": ${(e as Error).message}`);
  }
}

/** A migration plan's dataset; 400 for any other entity. */
function planDataset(entity: Entity, ref: string, queue: string): string {
  const type = (entity.spec as any)?.type;
  if (entity.kind.toLocaleLowerCase('en-US') !== 'component' || type !== 'migration-plan')
    throw bad(
      `entity "${ref}" is not a migration plan (kind "${entity.kind}", type "${type ?? ''}")`,
    );
  const annotated = entity.metadata.annotations?.[QUEUE_ANNOTATION];
  if (annotated !== undefined && annotated !== queue)
    throw bad(
      `entity "${ref}" is annotated for queue "${annotated}" (this backend submits to "${queue}")`,
    );
  const dataset = (entity.spec as any)?.dataset;
  if (typeof dataset !== 'string' || dataset.length === 0)
    throw bad(`migration plan "${ref}" has no spec.dataset`);
  return dataset;
}

/** A status row for the browser: drover's row plus progress (0..1 by
 * steps, null before the plan's size is known). */
function withProgress(r: DroverRun) {
  const total = r.steps_total ?? 0;
  return {
    ...r,
    progress: total > 0 ? Math.min(1, (r.steps_done ?? 0) / total) : null,
  };
}

export async function createRouter(opts: RouterOptions): Promise<express.Router> {
  const { catalog, httpAuth, permissions, logger, drover, queue } = opts;
  const router = Router();
  router.use(express.json({ limit: '64kb' }));

  const entity = async (ref: string, credentials: BackstageCredentials) => {
    let e: Entity | undefined;
    try {
      e = await catalog.getEntityByRef(ref, { credentials });
    } catch (err) {
      // the catalog failing (starting, down) is not the caller's error
      throw new Refusal(503, `the catalog is unavailable: ${(err as Error).message}`);
    }
    if (!e) throw new Refusal(404, `no entity "${ref}" in the catalog`);
    return e;
  };

  const mayRun = async (credentials: BackstageCredentials) =>
    (await permissions.authorize([{ permission: droverTaskCreatePermission }], {
      credentials,
    }))[0].result === AuthorizeResult.ALLOW;

  router.post('/tasks', async (req, res) => {
    const credentials = await httpAuth.credentials(req, { allow: ['user', 'service'] });
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw bad('request body must be a json object');
    const q = text(body, 'queue', false);
    if (q !== undefined && q !== queue)
      throw bad(`unknown queue "${q}" (this backend submits to "${queue}")`);
    const payload = body.payload;
    if (!payload || typeof payload !== 'object' || Array.isArray(payload))
      throw bad('field "payload" must be an object');
    const ref = normalRef(text(payload, 'entity_ref', true)!);
    const given = text(payload, 'dataset', false);
    const taskId = text(payload, 'task_id', false);
    const dryTop = bool(body, 'dryRun');
    const dryPayload = bool(payload, 'dry_run');
    if (dryTop !== undefined && dryPayload !== undefined && dryTop !== dryPayload)
      throw bad('fields "dryRun" and "payload.dry_run" disagree');
    const params = payload.params;
    if (params !== undefined &&
        (typeof params !== 'object' || params === null || Array.isArray(params) ||
         Object.values(params).some(v => typeof v !== 'string')))
      throw bad('field "params" must be an object of strings');

    if (!(await mayRun(credentials)))
      throw new Refusal(403, `not allowed to run migrations (permission "${droverTaskCreatePermission.name}")`);
    const dataset = planDataset(await entity(ref, credentials), ref, queue);
    if (given !== undefined && given !== dataset)
      throw bad(`dataset "${given}" is not the plan's dataset "${dataset}"`);

    const dryRun = dryTop ?? dryPayload ?? false;
    const sub = await drover.submit({
      entity_ref: ref,
      dataset,
      dry_run: dryRun,
      ...(taskId ? { task_id: taskId } : {}),
      ...(params ? { params: params as Record<string, string> } : {}),
    });
    logger.info(
      `task ${sub.task_id} submitted for "${ref}" (dataset "${dataset}"${dryRun ? ', dry run' : ''}) by ${principal(credentials)}`,
    );
    res.status(202).json({
      taskId: sub.task_id,
      task_id: sub.task_id,
      dataset: sub.dataset,
      entityRef: ref,
      dryRun,
      queue,
    });
  });

  router.get('/migrations', async (req, res) => {
    const credentials = await httpAuth.credentials(req, { allow: ['user', 'service'] });
    const arg = (k: string) => {
      const v = req.query[k];
      if (v === undefined || v === '') return undefined;
      if (typeof v !== 'string') throw bad(`query parameter "${k}" must be given once`);
      return v;
    };
    const entityRef = arg('entityRef');
    let dataset = arg('dataset');
    const status = arg('status');
    let ref: string | undefined;
    if (entityRef !== undefined) {
      ref = normalRef(entityRef);
      const planDs = planDataset(await entity(ref, credentials), ref, queue);
      if (dataset !== undefined && dataset !== planDs)
        throw bad(`dataset "${dataset}" is not the plan's dataset "${planDs}"`);
      dataset = planDs;
    }
    let rows = await drover.migrations({ dataset, status });
    if (ref !== undefined)
      rows = rows.filter(r => {
        try {
          return r.entity_ref !== null && normalRef(r.entity_ref) === ref;
        } catch {
          return false;
        }
      });
    res.json({ migrations: rows.map(withProgress) });
  });

  router.get('/access', async (req, res) => {
    const credentials = await httpAuth.credentials(req, { allow: ['user', 'service'] });
    res.json({ run: await mayRun(credentials) });
  });

  router.use(
    (err: Error, _req: express.Request, res: express.Response, next: express.NextFunction) => {
      if (res.headersSent) return next(err);
      let status = 500;
      if (err instanceof Refusal || err instanceof DroverError) status = err.status;
      else if (err.name === 'AuthenticationError') status = 401;
      else if (err.name === 'NotAllowedError') status = 403;
      else if ((err as any).type === 'entity.parse.failed') status = 400;
      else if ((err as any).type === 'entity.too.large') status = 413;
      if (status >= 500) logger.warn(`drover request failed: ${err.message}`);
      let name = 'InternalError';
      if (status < 500) name = 'RequestRefused';
      else if (status === 503) name = 'ServiceUnavailable';
      else if (status === 502) name = 'BadGateway';
      res.status(status).json({
        error: { name, message: err.message },
        response: { statusCode: status },
      });
    },
  );
  return router;
}

function principal(c: BackstageCredentials): string {
  const p = c.principal as any;
  if (p?.type === 'user') return p.userEntityRef;
  if (p?.type === 'service') return `service ${p.subject}`;
  return 'an unknown principal';
}
