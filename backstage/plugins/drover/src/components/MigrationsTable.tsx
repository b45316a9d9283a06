import {
  LinearProgress,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@material-ui/core';
import { MigrationRow } from '../api';

const time = (t: string | null) =>
  t ? new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';

function lastError(e: MigrationRow['last_error']) {
  if (!e) return '';
  if (typeof e === 'string') return e;
  return [e.class, e.message].filter(Boolean).join(': ');
}

/** The seed's table: dataset, status, started, completed, plus steps,
 * rows and the last error. */
export function MigrationsTable({ rows }: { rows: MigrationRow[] }) {
  if (rows.length === 0)
    return <Typography variant="body2">No migrations yet.</Typography>;
  return (
    <Table size="small" aria-label="migrations">
      <TableHead>
        <TableRow>
          <TableCell>Dataset</TableCell>
          <TableCell>Status</TableCell>
          <TableCell>Started</TableCell>
          <TableCell>Completed</TableCell>
          <TableCell>Steps</TableCell>
          <TableCell>Rows</TableCell>
          <TableCell>Last error</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {rows.map(r => (
          <TableRow key={r.task_id} data-task-id={r.task_id}>
            <TableCell>{r.dataset}</TableCell>
            <TableCell>
              {r.status}
              {r.status === 'running' && r.progress !== null && (
                <LinearProgress variant="determinate" value={r.progress * 100} />
              )}
            </TableCell>
            <TableCell>{time(r.started_at)}</TableCell>
            <TableCell>{time(r.completed_at)}</TableCell>
            <TableCell>
              {r.steps_total ? `${r.steps_done ?? 0}/${r.steps_total}` : ''}
            </TableCell>
            <TableCell>{r.rows_done ?? ''}</TableCell>
            <TableCell>{lastError(r.last_error)}</TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}
