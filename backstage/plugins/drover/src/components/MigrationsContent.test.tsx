import { fireEvent, screen, waitFor } from '@testing-library/react';
import { renderInTestApp, TestApiProvider } from '@backstage/test-utils';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import type { Entity } from '@backstage/catalog-model';
import { DroverApi, droverApiRef, MigrationRow } from '../api';
import { MigrationsContent } from './MigrationsContent';
import { DatasetCard } from './DatasetCard';

const plan: Entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name: 'customer-dataset-v2-migration', namespace: 'default' },
  spec: { type: 'migration-plan', dataset: 'customer', owner: 'team-infra', lifecycle: 'production' },
};
const datasetEntity: Entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name: 'customer' },
  spec: { type: 'dataset', owner: 'team-infra', lifecycle: 'production' },
};

const row = (over: Partial<MigrationRow>): MigrationRow => ({
  task_id: '11111111-1111-4111-8111-111111111111',
  entity_ref: 'component:default/customer-dataset-v2-migration',
  dataset: 'customer',
  status: 'done',
  started_at: '2026-12-03T10:00:00.123Z',
  completed_at: '2026-12-03T10:00:05.456Z',
  steps_total: 3,
  steps_done: 3,
  rows_done: 5000,
  last_error: null,
  progress: 1,
  ...over,
});

function fakeApi(over: Partial<DroverApi> = {}) {
  return {
    migrations: jest.fn(async () => [
      row({}),
      row({
        task_id: '22222222-2222-4222-8222-222222222222',
        status: 'dead',
        steps_done: 1,
        rows_done: 0,
        completed_at: null,
        last_error: { class: 'sql_error', message: 'column "email" does not exist' },
      }),
    ]),
    submit: jest.fn(async (entityRef: string, dryRun: boolean) => ({
      taskId: '33333333-3333-4333-8333-333333333333',
      dataset: 'customer',
      entityRef,
      dryRun,
    })),
    canRun: jest.fn(async () => true),
    ...over,
  };
}

async function render(api: DroverApi, entity = plan, el = <MigrationsContent refreshIntervalMs={0} />) {
  await renderInTestApp(
    <TestApiProvider apis={[[droverApiRef, api]]}>
      <EntityProvider entity={entity}>{el}</EntityProvider>
    </TestApiProvider>,
  );
}

describe('MigrationsContent', () => {
  it("shows the plan's migrations in the seed's table", async () => {
    const api = fakeApi();
    await render(api);
    expect(await screen.findByText('sql_error: column "email" does not exist')).toBeInTheDocument();
    for (const h of ['Dataset', 'Status', 'Started', 'Completed', 'Steps', 'Rows', 'Last error'])
      expect(screen.getByRole('columnheader', { name: h })).toBeInTheDocument();
    expect(screen.getByText('done')).toBeInTheDocument();
    expect(screen.getByText('dead')).toBeInTheDocument();
    expect(screen.getAllByText('2026-12-03 10:00:00Z')).toHaveLength(2);
    expect(screen.getByText('2026-12-03 10:00:05Z')).toBeInTheDocument();
    expect(screen.getByText('3/3')).toBeInTheDocument();
    expect(screen.getByText('5000')).toBeInTheDocument();
    expect(api.migrations).toHaveBeenCalledWith({
      entityRef: 'component:default/customer-dataset-v2-migration',
      dataset: undefined,
    });
  });

  it('runs a dry run after confirmation and shows the task id', async () => {
    const api = fakeApi();
    await render(api);
    const button = await screen.findByRole('button', { name: 'Dry run' });
    await waitFor(() => expect(button).toBeEnabled());
    fireEvent.click(button);
    expect(await screen.findByText(/Dry-run component:default\/customer-dataset-v2-migration on dataset customer\?/)).toBeInTheDocument();
    expect(api.submit).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole('button', { name: 'Confirm' }));
    expect(await screen.findByText('Dry run submitted: task 33333333-3333-4333-8333-333333333333')).toBeInTheDocument();
    expect(api.submit).toHaveBeenCalledWith('component:default/customer-dataset-v2-migration', true);
  });

  it('runs the migration after confirmation; cancel submits nothing', async () => {
    const api = fakeApi();
    await render(api);
    const button = await screen.findByRole('button', { name: 'Run migration' });
    await waitFor(() => expect(button).toBeEnabled());
    fireEvent.click(button);
    fireEvent.click(await screen.findByRole('button', { name: 'Cancel' }));
    expect(api.submit).not.toHaveBeenCalled();
    fireEvent.click(button);
    fireEvent.click(await screen.findByRole('button', { name: 'Confirm' }));
    expect(await screen.findByText('Migration submitted: task 33333333-3333-4333-8333-333333333333')).toBeInTheDocument();
    expect(api.submit).toHaveBeenCalledWith('component:default/customer-dataset-v2-migration', false);
  });

  it('disables both actions without the permission', async () => {
    const api = fakeApi({ canRun: jest.fn(async () => false) });
    await render(api);
    await screen.findByText('done');
    await waitFor(() => expect(api.canRun).toHaveBeenCalled());
    expect(screen.getByRole('button', { name: 'Dry run' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Run migration' })).toBeDisabled();
  });

  it("shows the backend's refusal of a submission", async () => {
    const api = fakeApi({
      submit: jest.fn(async () => {
        throw new Error('not allowed to run migrations (permission "drover.task.create")');
      }),
    });
    await render(api);
    const button = await screen.findByRole('button', { name: 'Run migration' });
    await waitFor(() => expect(button).toBeEnabled());
    fireEvent.click(button);
    fireEvent.click(await screen.findByRole('button', { name: 'Confirm' }));
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'Could not submit: not allowed to run migrations (permission "drover.task.create")',
    );
  });

  it('shows an error when the migrations cannot be loaded', async () => {
    const api = fakeApi({
      migrations: jest.fn(async () => {
        throw new Error('drover is unreachable: connect ECONNREFUSED');
      }),
    });
    await render(api);
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'Could not load migrations: drover is unreachable: connect ECONNREFUSED',
    );
  });

  it('refreshes the table live', async () => {
    let status = 'running';
    const api = fakeApi({
      migrations: jest.fn(async () => [row({ status, completed_at: null, steps_done: 1, progress: 1 / 3 })]),
    });
    await render(api, plan, <MigrationsContent refreshIntervalMs={50} />);
    expect(await screen.findByText('running')).toBeInTheDocument();
    status = 'done';
    expect(await screen.findByText('done')).toBeInTheDocument();
  });
});

describe('DatasetCard', () => {
  it("lists the dataset's migrations", async () => {
    const api = fakeApi();
    await render(api, datasetEntity, <DatasetCard refreshIntervalMs={0} />);
    expect(await screen.findByText('dead')).toBeInTheDocument();
    expect(screen.getByText('dataset customer')).toBeInTheDocument();
    expect(api.migrations).toHaveBeenCalledWith({ entityRef: undefined, dataset: 'customer' });
  });
});
