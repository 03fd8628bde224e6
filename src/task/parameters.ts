/** Turns command-line strings, `METAFLOW_RUN_<NAME>` variables and defaults into parameter values. */
import * as fs from "node:fs";
import * as path from "node:path";
import { ParameterError } from "../errors.js";
import type { ParameterSpec } from "../flow/parameter.js";

/** The environment variable that supplies a default for parameter `name`. */
export function parameterEnvVar(name: string): string {
  return `METAFLOW_RUN_${name.toUpperCase().replace(/-/g, "_")}`;
}

/** Converts one raw value to the parameter's type, or throws ParameterError naming it. */
export function convertParameter(spec: ParameterSpec, raw: unknown, source: string): unknown {
  if (typeof raw !== "string") {
    // Values given from code (Runner) or as defaults keep their type but must match it.
    const ok =
      spec.type === "json" ||
      (spec.type === "number" && typeof raw === "number" && Number.isFinite(raw)) ||
      (spec.type === "string" && typeof raw === "string") ||
      (spec.type === "boolean" && typeof raw === "boolean");
    if (!ok) {
      throw new ParameterError(
        spec.name,
        `Parameter '${spec.name}' expects a ${spec.type}, got ${JSON.stringify(raw)} (${typeof raw}) from ${source}`,
      );
    }
    return raw;
  }
  switch (spec.type) {
    case "string":
      return raw;
    case "number": {
      const n = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(n)) {
        throw new ParameterError(spec.name, `Parameter '${spec.name}' expects a number, got ${JSON.stringify(raw)} from ${source} (e.g. --${spec.name} 0.5)`);
      }
      return n;
    }
    case "boolean": {
      const v = raw.trim().toLowerCase();
      if (["true", "1", "yes", "y", "on"].includes(v)) return true;
      if (["false", "0", "no", "n", "off"].includes(v)) return false;
      throw new ParameterError(spec.name, `Parameter '${spec.name}' expects true or false, got ${JSON.stringify(raw)} from ${source}`);
    }
    case "json":
      try {
        return JSON.parse(raw);
      } catch (err) {
        throw new ParameterError(
          spec.name,
          `Parameter '${spec.name}' expects JSON, got ${JSON.stringify(raw)} from ${source}: ${(err as Error).message} (e.g. --${spec.name} '{"depth":[2,4]}')`,
        );
      }
  }
}

/**
 * Resolves every parameter: explicit value, else `METAFLOW_RUN_<NAME>`, else the default. A
 * required parameter with none of these fails, as does an unknown name in `given`.
 * IncludeFile values are read from disk here, so a missing file fails before any task starts.
 */
export function resolveParameters(
  specs: readonly ParameterSpec[],
  given: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, unknown> {
  for (const name of Object.keys(given)) {
    if (!specs.some((s) => s.name === name)) {
      throw new ParameterError(
        name,
        `The flow has no parameter '${name}'; its parameters are: ${specs.map((s) => s.name).join(", ") || "(none)"}`,
      );
    }
  }
  const out: Record<string, unknown> = {};
  for (const spec of specs) {
    let raw: unknown;
    let source: string;
    if (given[spec.name] !== undefined) {
      raw = given[spec.name];
      source = `--${spec.name}`;
    } else if (env[parameterEnvVar(spec.name)] !== undefined) {
      raw = env[parameterEnvVar(spec.name)];
      source = parameterEnvVar(spec.name);
    } else if (spec.default !== undefined) {
      raw = spec.default;
      source = "the default";
    } else if (spec.required) {
      throw new ParameterError(
        spec.name,
        `Parameter '${spec.name}' is required: pass --${spec.name} <value> or set ${parameterEnvVar(spec.name)}`,
      );
    } else {
      out[spec.name] = null;
      continue;
    }
    if (spec.kind === "include-file") {
      out[spec.name] = readIncluded(spec, raw, source);
    } else {
      out[spec.name] = convertParameter(spec, raw, source);
    }
  }
  return out;
}

function readIncluded(spec: ParameterSpec, raw: unknown, source: string): string | Buffer {
  if (typeof raw !== "string" || raw === "") {
    throw new ParameterError(spec.name, `IncludeFile '${spec.name}' expects a file path, got ${JSON.stringify(raw)} from ${source}`);
  }
  const file = path.resolve(raw);
  try {
    const bytes = fs.readFileSync(file);
    return spec.isText === false ? bytes : bytes.toString("utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ParameterError(
      spec.name,
      `IncludeFile '${spec.name}': cannot read ${raw} (from ${source}): ${code === "ENOENT" ? "no such file" : (err as Error).message}`,
    );
  }
}
