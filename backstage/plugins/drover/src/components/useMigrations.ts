import { useCallback, useEffect, useState } from 'react';
import { useApi } from '@backstage/core-plugin-api';
import { droverApiRef, MigrationRow } from '../api';

/** The migrations of a plan or dataset, fetched again every
 * `refreshMs` (live, like drover's status page) and on `reload()`. */
export function useMigrations(
  query: { entityRef?: string; dataset?: string },
  refreshMs: number,
) {
  const api = useApi(droverApiRef);
  const [rows, setRows] = useState<MigrationRow[] | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const { entityRef, dataset } = query;

  const reload = useCallback(async () => {
    try {
      setRows(await api.migrations({ entityRef, dataset }));
      setError(undefined);
    } catch (e) {
      setError(e as Error);
    }
  }, [api, entityRef, dataset]);

  useEffect(() => {
    reload();
    if (refreshMs <= 0) return undefined;
    const t = setInterval(reload, refreshMs);
    return () => clearInterval(t);
  }, [reload, refreshMs]);

  return { rows, error, reload };
}
