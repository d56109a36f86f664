import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["shared/**/*.test.ts", "coordinator/**/*.test.ts", "site-agent/**/*.test.ts", "cli/**/*.test.ts", "evaluation/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Cross-process tests start real coordinators and agents; two cores do not take many at once.
    maxWorkers: 2,
  },
});
