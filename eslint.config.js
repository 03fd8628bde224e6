// Lint: type-aware rules that catch floating promises, no import cycles, and the floors of the
// house (../shared/ARCHITECTURE.md): a folder imports only folders below it.
import tseslint from "typescript-eslint";
import importX, { createNodeResolver } from "eslint-plugin-import-x";

/** The floors, bottom up; a file may import its own floor and the floors below. */
const FLOORS = [
  ["src/errors.ts", "src/flow"],
  ["src/graph", "src/decorators", "src/config", "src/config.ts"],
  ["src/datastore", "src/metadata"],
  ["src/backends.ts"],
  ["src/task", "src/launchers"],
  ["src/runtime", "src/client", "src/cards", "src/s3"],
  ["src/deploy", "src/service", "src/ui"],
  ["src/cli", "src/index.ts", "src/api.ts", "src/runner.ts", "src/deployer.ts", "src/worker.ts"],
];

/** Sideways imports on one floor that are not allowed either. */
const APART = [
  // The client reads what any runtime wrote on any machine: never the runtime or the task side.
  { target: "src/client", from: ["src/runtime", "src/task", "src/launchers", "src/cards"], message: "The client never imports the runtime or the task side." },
  // The task side runs anywhere; it never reaches back into who launched it.
  { target: "src/task", from: ["src/launchers"], message: "The task side never imports a launcher." },
  { target: "src/datastore", from: ["src/metadata"], message: "The datastore knows no runs: keep metadata out of it." },
  { target: "src/metadata", from: ["src/datastore/cas.ts", "src/datastore/local.ts", "src/datastore/s3.ts"], message: "Metadata stores no artifact bytes." },
];

const zones = [];
FLOORS.forEach((floor, level) => {
  const above = FLOORS.slice(level + 1).flat();
  if (above.length === 0) return;
  for (const target of floor) {
    zones.push({ target: `./${target}`, from: above.map((p) => `./${p}`), message: `${target} is on floor ${level + 1} of ARCHITECTURE.md and may not import a higher floor.` });
  }
});
for (const z of APART) zones.push({ target: `./${z.target}`, from: z.from.map((p) => `./${p}`), message: z.message });
// Nothing imports the command line.
zones.push({ target: "./src", from: ["./src/cli"], except: [], message: "Nothing imports cli/." });

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", ".metaflow/**", "test/fixtures/bad/**", "bin/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts", "**/*.tsx"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { "import-x": importX },
    settings: {
      // Parse TypeScript and resolve `./x.js` to `./x.ts` or `./x.tsx`, so the import rules see the real graph.
      "import-x/extensions": [".ts", ".tsx", ".js", ".mjs"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts", ".tsx"] },
      "import-x/resolver-next": [createNodeResolver({ extensionAlias: { ".js": [".ts", ".tsx", ".js"] } })],
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "import-x/no-cycle": ["error", { maxDepth: Infinity }],
      "import-x/no-self-import": "error",
    },
  },
  {
    // Unit tests beside the code may reach any floor to set up what they test.
    files: ["src/**/*.{ts,tsx}"],
    ignores: ["src/**/*.test.{ts,tsx}"],
    rules: { "import-x/no-restricted-paths": ["error", { zones }] },
  },
  {
    // The command line is the top floor: only its own files import each other.
    files: ["src/cli/**/*.ts"],
    rules: { "import-x/no-restricted-paths": ["error", { zones: zones.filter((z) => !z.target.startsWith("./src/cli") && z.target !== "./src") }] },
  },
  {
    // Browser code (the web UI, the card chart runtime) is type-checked with the DOM library.
    files: ["src/ui/web/**/*.ts", "src/ui/web/**/*.tsx", "src/cards/web/**/*.ts"],
    languageOptions: { parserOptions: { projectService: false, project: "./tsconfig.web.json", tsconfigRootDir: import.meta.dirname } },
  },
);
