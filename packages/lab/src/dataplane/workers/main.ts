/**
 * Stand-alone entry of the lab workers, for running them from a separately bundled file
 * (tests bundle this with esbuild). The lab bundle reaches the same code through its
 * hidden `_worker` command.
 */
import { runWorker } from './index.js';

runWorker(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`hanat-lab worker: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
