/** Parameter values (moved to task/, where a deployed start task resolves them too). */
export { convertParameter, parameterEnvVar, resolveParameters } from "../task/parameters.js";
