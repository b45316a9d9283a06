import {
  createApiRef,
  DiscoveryApi,
  FetchApi,
} from '@backstage/core-plugin-api';

/** One row of GET /api/drover/migrations (drover's task_runs row). */
export interface MigrationRow {
  task_id: string;
  entity_ref: string | null;
  dataset: string | null;
  status: string;
  started_at: string | null;
  completed_at: string | null;
  steps_total: number | null;
  steps_done: number | null;
  rows_done: number | null;
  last_error: { class?: string; message?: string } | string | null;
  progress: number | null;
}

export interface Submitted {
  taskId: string;
  dataset: string;
  entityRef: string;
  dryRun: boolean;
}

export interface DroverApi {
  migrations(query: { entityRef?: string; dataset?: string; status?: string }): Promise<MigrationRow[]>;
  submit(entityRef: string, dryRun: boolean): Promise<Submitted>;
  canRun(): Promise<boolean>;
}

export const droverApiRef = createApiRef<DroverApi>({ id: 'plugin.drover.api' });

/** The browser's client of the drover backend plugin (/api/drover). */
export class DroverClient implements DroverApi {
  constructor(
    private readonly opts: { discoveryApi: DiscoveryApi; fetchApi: FetchApi; queue?: string },
  ) {}

  private async call<T>(path: string, init?: RequestInit): Promise<T> {
    const base = await this.opts.discoveryApi.getBaseUrl('drover');
    const res = await this.opts.fetchApi.fetch(`${base}${path}`, init);
    const body = await res.json().catch(() => undefined);
    if (!res.ok)
      throw new Error(body?.error?.message ?? `drover backend answered http ${res.status}`);
    return body as T;
  }

  async migrations(query: { entityRef?: string; dataset?: string; status?: string }) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
    return (await this.call<{ migrations: MigrationRow[] }>(`/migrations?${q}`)).migrations;
  }

  async submit(entityRef: string, dryRun: boolean) {
    return this.call<Submitted>('/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        queue: this.opts.queue ?? 'dataset-migrations',
        dryRun,
        payload: { entity_ref: entityRef },
      }),
    });
  }

  async canRun() {
    return (await this.call<{ run: boolean }>('/access')).run;
  }
}
