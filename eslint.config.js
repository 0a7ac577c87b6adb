import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "coverage/**", "**/.sst/**", "packages/cli/dist/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
    },
  },
  {
    // the house rules (issue 18): a file a newcomer reads in one sitting, a function on a screen or two
    files: ["packages/*/src/**/*.ts", "scripts/**/*.mjs", "infra/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "max-lines": ["error", { max: 400 }],
      "max-lines-per-function": ["error", { max: 120 }],
      "max-len": ["error", { code: 200, ignoreUrls: true }],
    },
  },
  {
    // SST's documented way to reach its globals ($config, sst, aws): the file that `sst install` writes
    files: ["sst.config.ts"],
    rules: { "@typescript-eslint/triple-slash-reference": "off" },
  },
);
