/**
 * The bundle's entry point and the agent's one exit path (STYLE.md 1).
 * pino writes synchronously, so exiting right away loses no log line.
 */
import { main } from './cli.js';

main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`hanat-agent: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
