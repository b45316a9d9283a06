// Jest for both plugins: TypeScript through swc, the backend in node, the
// frontend in jsdom.  Run by scripts/backstage-plugins.sh test.
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
    },
    {
      displayName: 'drover',
      testEnvironment: 'jsdom',
      roots: ['<rootDir>/plugins/drover/src'],
      setupFilesAfterEnv: ['<rootDir>/plugins/drover/src/setupTests.ts'],
      transform,
      // Backstage's packages ship ES modules and import their assets
      transformIgnorePatterns: [],
      moduleNameMapper: {
        '\\.(css|svg|png|jpe?g|gif|woff2?|ttf|eot)$': '<rootDir>/jest/fileStub.js',
      },
    },
  ],
};
