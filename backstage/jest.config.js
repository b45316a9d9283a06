// Jest for both plugins: TypeScript through swc, the backend in node, the
// frontend in jsdom, the browser check (e2e/) in node.  Run by scripts/backstage-plugins.sh test.
const transform = {
  '^.+\\.(t|j)sx?$': [
    '@swc/jest',
    {
      jsc: {
        parser: { syntax: 'typescript', tsx: true },
        transform: { react: { runtime: 'automatic' } },
        target: 'es2022',
      },
      module: { type: 'commonjs' },
    },
  ],
};

module.exports = {
  projects: [
    {
      displayName: 'drover-backend',
      testEnvironment: 'node',
      roots: ['<rootDir>/plugins/drover-backend/src'],
      transform,
      // next to node_modules: a fresh install starts a fresh cache
      cacheDirectory: '<rootDir>/.jest-cache',
    },
    {
      displayName: 'drover',
      testEnvironment: 'jsdom',
      roots: ['<rootDir>/plugins/drover/src'],
      setupFilesAfterEnv: ['<rootDir>/plugins/drover/src/setupTests.ts'],
      transform,
      // next to node_modules: a fresh install starts a fresh cache
      cacheDirectory: '<rootDir>/.jest-cache',
      // Backstage's packages ship ES modules and import their assets
      transformIgnorePatterns: [],
      moduleNameMapper: {
        '\\.(css|svg|png|jpe?g|gif|woff2?|ttf|eot)$': '<rootDir>/jest/fileStub.js',
      },
    },
    {
      // the browser check: only when asked (--selectProjects e2e)
      displayName: 'e2e',
      testEnvironment: 'node',
      roots: ['<rootDir>/e2e'],
      testMatch: ['**/*.e2e.ts'],
      transform,
      cacheDirectory: '<rootDir>/.jest-cache',
    },
  ],
};
