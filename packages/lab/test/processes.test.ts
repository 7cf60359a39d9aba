/**
 * Tearing a namespace down: every process in it dies, then the namespace goes, without
 * waiting on the machine's init to reap orphans. A `fault kill` and every instance
 * termination go through here, and the NAT keeps forwarding until it returns.
 */
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { execCommand } from '../src/dataplane/exec.js';
import { destroyNamespaces, listNamespaces, namespacePids } from '../src/dataplane/processes.js';

const NS = `hanat-proc-test-${process.pid}`;

describe.runIf(requireRoot('namespace teardown', ['ip']))('destroyNamespaces', () => {
  afterAll(async () => {
    await destroyNamespaces(execCommand, [NS]);
  });

  it("does not wait for an orphan's zombie to be reaped: a namespace whose processes fork goes within a second", async () => {
    await execCommand(['ip', 'netns', 'add', NS]);
    // bash with a child of its own, as the image's agent runs (systemd, or the bench's restart
    // wrapper, then node): killing both leaves the child an orphan for init to reap.
    spawn('ip', ['netns', 'exec', NS, 'bash', '-c', 'sleep 60 & sleep 60 & wait'], { stdio: 'ignore' });
    const deadline = Date.now() + 5_000;
    while ((await namespacePids(execCommand, NS)).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await namespacePids(execCommand, NS)).toHaveLength(3);

    const t0 = Date.now();
    await destroyNamespaces(execCommand, [NS]);
    const ms = Date.now() - t0;
    expect(await listNamespaces(execCommand)).not.toContain(NS);
    // Counting zombies as alive held this up until init reaped them: ~1.9 s on a host whose
    // init polls, and 5 s (the deadline) where it does not reap at all.
    expect(ms, `teardown took ${ms} ms`).toBeLessThan(1_000);
  });
});
