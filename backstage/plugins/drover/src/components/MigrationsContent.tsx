import { useEffect, useState } from 'react';
import {
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  Typography,
} from '@material-ui/core';
import { InfoCard, Progress } from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import { droverApiRef, Submitted } from '../api';
import { MigrationsTable } from './MigrationsTable';
import { useMigrations } from './useMigrations';

/** The "Migrations" tab of a migration plan: its tasks, live, and the
 * "Dry run" / "Run migration" actions (confirmed first; disabled when
 * the caller may not run drover.task.create). */
export function MigrationsContent({ refreshIntervalMs = 2000 }: { refreshIntervalMs?: number }) {
  const { entity } = useEntity();
  const api = useApi(droverApiRef);
  const entityRef = stringifyEntityRef(entity);
  const dataset = (entity.spec as any)?.dataset as string | undefined;
  const { rows, error, reload } = useMigrations({ entityRef }, refreshIntervalMs);
  const [canRun, setCanRun] = useState(false);
  const [confirm, setConfirm] = useState<null | { dryRun: boolean }>(null);
  const [submitted, setSubmitted] = useState<Submitted | undefined>();
  const [submitError, setSubmitError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    api.canRun().then(
      ok => live && setCanRun(ok),
      () => live && setCanRun(false),
    );
    return () => {
      live = false;
    };
  }, [api]);

  const run = async (dryRun: boolean) => {
    setConfirm(null);
    setBusy(true);
    setSubmitError(undefined);
    try {
      setSubmitted(await api.submit(entityRef, dryRun));
      await reload();
    } catch (e) {
      setSubmitted(undefined);
      setSubmitError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const why = canRun ? undefined : 'You may not run migrations (drover.task.create)';
  return (
    <InfoCard title="Migrations" subheader={dataset ? `dataset ${dataset}` : undefined}>
      <Box display="flex" mb={2} style={{ gap: 8 }} title={why}>
        <Button variant="outlined" disabled={!canRun || busy} onClick={() => setConfirm({ dryRun: true })}>
          Dry run
        </Button>
        <Button variant="contained" color="primary" disabled={!canRun || busy}
          onClick={() => setConfirm({ dryRun: false })}>
          Run migration
        </Button>
      </Box>
      {submitted && (
        <Typography role="status" variant="body2">
          {submitted.dryRun ? 'Dry run' : 'Migration'} submitted: task {submitted.taskId}
        </Typography>
      )}
      {submitError && (
        <Typography role="alert" color="error" variant="body2">
          Could not submit: {submitError}
        </Typography>
      )}
      {error && (
        <Typography role="alert" color="error" variant="body2">
          Could not load migrations: {error.message}
        </Typography>
      )}
      {rows === undefined && !error ? <Progress /> : <MigrationsTable rows={rows ?? []} />}
      <Dialog open={confirm !== null} onClose={() => setConfirm(null)}>
        <DialogTitle>{confirm?.dryRun ? 'Dry run' : 'Run migration'}</DialogTitle>
        <DialogContent>
          <DialogContentText>
            {confirm?.dryRun ? 'Dry-run' : 'Run'} {entityRef}
            {dataset ? ` on dataset ${dataset}` : ''}?
          </DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirm(null)}>Cancel</Button>
          <Button color="primary" onClick={() => confirm && run(confirm.dryRun)}>
            Confirm
          </Button>
        </DialogActions>
      </Dialog>
    </InfoCard>
  );
}
