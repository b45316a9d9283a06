/*
 * The client of drover's admin HTTP API (consumer/admin/ in the drover
 * repository): POST /api/tasks with the bearer token, GET /api/migrations.
 * The token stays here, on the backend.
 */

/** What drover answers POST /api/tasks with (202). */
export interface DroverSubmitted {
  task_id: string;
  dataset: string;
  topic: string;
}

/** One row of drover.task_runs as GET /api/migrations serves it. */
export type DroverRun = Record<string, unknown> & {
  task_id: string;
  entity_ref: string | null;
  dataset: string | null;
  status: string;
  steps_total: number | null;
  steps_done: number | null;
  rows_done: number | null;
  last_error: unknown;
  started_at: string | null;
  completed_at: string | null;
};

/** A refusal or failure of drover itself, with the HTTP status to answer. */
export class DroverError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'DroverError';
  }
}

export interface DroverTask {
  entity_ref: string;
  dataset: string;
  dry_run: boolean;
  task_id?: string;
  params?: Record<string, string>;
}

export class DroverClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  private async call(path: string, init: RequestInit): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl.replace(/\/+$/, '')}${path}`, init);
    } catch (e) {
      throw new DroverError(
        503,
        `drover is unreachable: ${(e as Error).cause ?? (e as Error).message}`,
      );
    }
    const text = await res.text();
    let body: any;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      throw new DroverError(502, `drover answered http ${res.status} without json`);
    }
    if (!res.ok) {
      const why = typeof body?.error === 'string' ? body.error : `http ${res.status}`;
      // drover's 4xx are refusals of the request (unknown plan, bad field,
      // task id already submitted): the caller's to see, same status.
      // Its own failures (5xx, a wrong token: 401) are a bad gateway.
      if (res.status >= 400 && res.status < 500 && res.status !== 401)
        throw new DroverError(res.status, `drover refused the task: ${why}`);
      if (res.status === 503)
        throw new DroverError(503, `drover is unavailable: ${why}`);
      throw new DroverError(502, `drover failed: http ${res.status}: ${why}`);
    }
    return body;
  }

  async submit(task: DroverTask): Promise<DroverSubmitted> {
    // no "queue": the worker's admin server submits to its own topic
    const body = await this.call('/api/tasks', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${this.token}`,
      },
      body: JSON.stringify({ payload: task }),
    });
    return body as DroverSubmitted;
  }

  async migrations(query: { dataset?: string; status?: string }): Promise<DroverRun[]> {
    const q = new URLSearchParams();
    if (query.dataset) q.set('dataset', query.dataset);
    if (query.status) q.set('status', query.status);
    q.set('limit', '1000');
    const body = (await this.call(`/api/migrations?${q}`, {
      method: 'GET',
      headers: { authorization: `Bearer ${this.token}` },
    })) as { migrations?: DroverRun[] };
    if (!Array.isArray(body.migrations))
      throw new DroverError(502, 'drover answered without "migrations"');
    return body.migrations;
  }
}
