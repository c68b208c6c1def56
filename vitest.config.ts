import { defineConfig } from 'vitest/config';

// One config for the whole repo: every workspace's test/ folder plus the top-level test/.
export default defineConfig({
  test: {
    include: ['**/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', 'tmp/**'],
    // Suites start real nats-servers, pm2 daemons and child processes. These timeouts are
    // liveness bounds so a hang fails instead of stalling CI, not performance assertions.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The wire contract as Node loads it (one module per file of protocol/dist): the SDK imports its
    // subpaths and tests its root, and Vite's own copy of either would make DisclusterError two classes.
    server: { deps: { external: [/[\\/]protocol[\\/]dist[\\/]/] } },
    // Separate processes: suites spawn children and install exit hooks; a crash stays contained.
    pool: 'forks',
    // A 2-core machine: two test files at a time keep real servers from starving each other.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
  },
});
