import { Typography } from '@material-ui/core';
import { InfoCard, Progress } from '@backstage/core-components';
import { useEntity } from '@backstage/plugin-catalog-react';
import { MigrationsTable } from './MigrationsTable';
import { useMigrations } from './useMigrations';

/** The dataset's drover name: annotation drover.io/dataset, else the
 * entity's name. */
export function datasetName(entity: { metadata: { name: string; annotations?: Record<string, string> } }) {
  return entity.metadata.annotations?.['drover.io/dataset'] ?? entity.metadata.name;
}

/** A card for a dataset entity: its migrations, live. */
export function DatasetCard({ refreshIntervalMs = 2000 }: { refreshIntervalMs?: number }) {
  const { entity } = useEntity();
  const dataset = datasetName(entity);
  const { rows, error } = useMigrations({ dataset }, refreshIntervalMs);
  return (
    <InfoCard title="Migrations" subheader={`dataset ${dataset}`}>
      {error && (
        <Typography role="alert" color="error" variant="body2">
          Could not load migrations: {error.message}
        </Typography>
      )}
      {rows === undefined && !error ? <Progress /> : <MigrationsTable rows={rows ?? []} />}
    </InfoCard>
  );
}
