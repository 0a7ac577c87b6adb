import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    fileParallelism: false,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    projects: [
      {
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts"],
          // these run side by side on CI's two cores, many against dynalite and fauxqs: a test that takes 3 s alone
          // (120 webhook deliveries, say) may take more than vitest's default 5 s there; a hang still fails
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/**/*.test.ts"],
          exclude: ["test/faults/**"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // `npm run test:faults [-- --full]`: the real system with faults injected on purpose (scripts/faults.mjs)
        test: {
          name: "faults",
          include: ["test/faults/**/*.test.ts"],
          testTimeout: 1_800_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
