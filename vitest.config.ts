import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    // Integration tests start dynalite, sandbox vendors and the local runtime on loopback;
    // two workers match the two cores CI has.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    setupFiles: ['test/setup.ts'],
    // Sums the contract checker's per-file counts into one line at the end of the run.
    globalSetup: ['test/global-setup.ts'],
  },
});
