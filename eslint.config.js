// Lint: type-aware rules that catch floating promises, and a ban on import cycles.
import tseslint from "typescript-eslint";
import importX from "eslint-plugin-import-x";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", ".metaflow/**", "test/fixtures/bad/**", "bin/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { "import-x": importX },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "import-x/no-cycle": ["error", { maxDepth: 10 }],
    },
  },
  {
    // Browser code (the web UI, the card chart runtime) is type-checked with the DOM library.
    files: ["src/ui/web/**/*.ts", "src/ui/web/**/*.tsx", "src/cards/web/**/*.ts"],
    languageOptions: { parserOptions: { projectService: false, project: "./tsconfig.web.json", tsconfigRootDir: import.meta.dirname } },
  },
);
