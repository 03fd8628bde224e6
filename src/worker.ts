/** Entry point of a worker host process (`dist/worker.js`): the library flows import, and the host loop. */
import * as library from "./index.js";
import { startHost } from "./task/host.js";

startHost(library as unknown as Record<string, unknown>);
