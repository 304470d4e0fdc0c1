// @ts-check
// The simulator's own tests run in plain Node (they open real sockets), not in workerd.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "sim",
    environment: "node",
    include: ["test/sim/**/*.test.js"],
  },
});
