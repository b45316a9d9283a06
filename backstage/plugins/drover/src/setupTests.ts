import '@testing-library/jest-dom';

// The first render imports and transforms Backstage's components: on a
// busy 2-core box that alone can pass jest's default 5 s.  A bound for a
// hang, not a timing assertion.
jest.setTimeout(60_000);
