export interface Config {
  /** drover's Backstage backend plugin (@drover/plugin-drover-backend) */
  drover?: {
    /**
     * Base URL of a drover worker's admin HTTP server (its
     * DROVER_HTTP_LISTEN), e.g. http://drover-admin.drover.svc:9464
     */
    baseUrl: string;
    /**
     * The admin token (DROVER_ADMIN_TOKEN) drover checks on POST /api/tasks.
     * Read by the backend only, never sent to the browser.
     * @visibility secret
     */
    token: string;
    /**
     * The queue name requests must name (or omit): the seed's
     * "dataset-migrations" unless set.  Plans annotated
     * drover.io/queue with another value are refused.
     */
    queue?: string;
  };
}
