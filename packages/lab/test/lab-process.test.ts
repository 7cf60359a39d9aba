/**
 * The `hanat-lab` bundle as a process: a foreground `up` tears its lab down on every signal
 * that ends a terminal session (Ctrl-C, kill, a closed terminal), and `cleanup --lab` removes
 * one crashed run without touching other labs' namespaces.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { execCommand } from '../src/dataplane/exec.js';
import { newPrefix } from '../src/dataplane/names.js';
import { cleanupRun, pidAlive, readRunStates, runNamespaces, writeRunState } from '../src/dataplane/state.js';
import { LAB_BIN, NOTHING_LEFT, leftovers, requireBundles, runPids } from './bundle-helpers.js';

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

describe.runIf(requireRoot('hanat-lab process', ['ip', 'nft', 'iptables', 'ps']))('the hanat-lab bundle as a process', () => {
  let dir: string;
  beforeAll(() => {
    requireBundles('lab', 'agent');
    dir = mkdtempSync(join(tmpdir(), 'hanat-lab-process-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the bundle with its own state directory; `onStdout` may act while it runs. */
  const labProcess = (stateDir: string, args: string[], onStdout?: (stdout: string, child: ReturnType<typeof spawn>) => void) =>
    new Promise<Exit>((resolve, reject) => {
      const child = spawn(process.execPath, [LAB_BIN, ...args], { env: { PATH: process.env.PATH, HOME: dir, HANAT_LAB_STATE_DIR: stateDir }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        onStdout?.(stdout, child);
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });

  it.each([[[]], [['--detach']]])('`up %j --agent-route-interval 3` (under the agent\'s minimum) exits 2 naming the value and starts nothing', async (extra) => {
    const stateDir = join(dir, `state-interval-${extra.length}`);
    const exit = await labProcess(stateDir, ['up', ...extra, '--latency', 'zero', '--agent-route-interval', '3', '--run-dir', join(dir, 'runs-interval')]);
    expect({ code: exit.code, stdout: exit.stdout }, exit.stderr).toEqual({ code: 2, stdout: '' });
    expect(exit.stderr).toContain('--agent-route-interval must be an integer >= 5, got "3"');
    expect(readRunStates(stateDir)).toEqual([]);
  });

  it.each(['SIGHUP', 'SIGINT', 'SIGTERM'] as const)('a foreground `up` stopped by %s tears down its namespaces and processes and exits 0', async (sig) => {
    const stateDir = join(dir, `state-${sig}`);
    let prefix: string | undefined;
    let ownerPid: number | undefined;
    let pids: number[] = [];
    let signalled = false;
    try {
      const exit = await labProcess(stateDir, ['up', '--latency', 'zero', '--run-dir', join(dir, 'runs')], (stdout, child) => {
        // Ready once it prints the exports; then note what the lab runs, and send the signal.
        if (signalled || !stdout.includes('export AWS_ENDPOINT_URL=')) return;
        signalled = true;
        const state = readRunStates(stateDir)[0];
        prefix = state?.prefix;
        ownerPid = state?.pid;
        void (prefix ? runPids(prefix) : Promise.resolve([])).then((p) => {
          pids = p;
          child.kill(sig);
        });
      });
      expect(signalled, `the lab never became ready:\n${exit.stderr}`).toBe(true);
      expect(prefix).toMatch(/^hl[0-9a-f]{4}$/);
      expect(pids.length, 'the router, gateway and internet namespaces run the proxy and the echo service').toBeGreaterThanOrEqual(2);
      // Not killed by the signal: it stopped the lab and exited on its own.
      expect({ code: exit.code, signal: exit.signal }, exit.stderr).toEqual({ code: 0, signal: null });
      expect(await leftovers(prefix!, [...pids, ownerPid!])).toEqual(NOTHING_LEFT);
      expect(readRunStates(stateDir)).toEqual([]);
    } finally {
      if (ownerPid !== undefined && pidAlive(ownerPid)) process.kill(ownerPid, 'SIGKILL');
      if (prefix) await cleanupRun(execCommand, stateDir, prefix);
    }
  }, 60_000);

  it("`cleanup --lab` removes that crashed run only, and refuses while the run's owner is pidAlive", async () => {
    const stateDir = join(dir, 'state-cleanup');
    // Two prefixes no lab uses (labs of other tests may run meanwhile); only what this test creates is removed.
    const inUse = new Set((await runNamespaces(execCommand)).map((ns) => ns.slice(0, 6)));
    const free = () => {
      let p = newPrefix();
      while (inUse.has(p)) p = newPrefix();
      inUse.add(p);
      return p;
    };
    const [mine, other] = [free(), free()];
    const created: string[] = [];
    try {
      for (const p of [mine, other]) {
        await execCommand(['ip', 'netns', 'add', `${p}-router`]);
        created.push(p);
      }
      // While its owner (here: this test's process) is pidAlive, the run is not cleaned up.
      writeRunState(stateDir, { prefix: mine, pid: process.pid, startedAt: new Date().toISOString(), runDir: dir });
      const refused = await labProcess(stateDir, ['cleanup', '--lab', mine]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`lab ${mine} is still running (pid ${process.pid})`);
      expect(await runNamespaces(execCommand, mine)).toEqual([`${mine}-router`]);
      // Once the owner is gone (a crashed lab), only that run goes; the other lab is untouched.
      writeRunState(stateDir, { prefix: mine, pid: 0x3fffffff, startedAt: new Date().toISOString(), runDir: dir });
      const removed = await labProcess(stateDir, ['cleanup', '--lab', mine]);
      expect({ code: removed.code, stdout: removed.stdout }, removed.stderr).toEqual({ code: 0, stdout: `removed ${mine}-router\n` });
      expect(await runNamespaces(execCommand, mine)).toEqual([]);
      expect(readRunStates(stateDir)).toEqual([]);
      expect(await runNamespaces(execCommand, other)).toEqual([`${other}-router`]);
    } finally {
      for (const p of created) await cleanupRun(execCommand, stateDir, p);
    }
  });
});

describe('the hanat-lab bundle on bad usage', () => {
  beforeAll(() => requireBundles('lab'));

  // Exit 2 is "bad usage": a wrapper or a unit may retry 1 but must not retry 2. Commander's own
  // errors (unknown option, missing value, a value outside its choices) come from subcommands.
  it.each([
    [['serve', '--latency', 'slow']],
    [['serve', '--bogus']],
    [['serve', '--port']],
    [['fault', 'nonsense']],
    [['no-such-command']],
  ])('hanat-lab %j exits 2 and says what is wrong', async (args) => {
    const exit = await new Promise<Exit>((resolve, reject) => {
      const child = spawn(process.execPath, [LAB_BIN, ...args], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    expect({ code: exit.code, stdout: exit.stdout }, exit.stderr).toEqual({ code: 2, stdout: '' });
    expect(exit.stderr).toMatch(/error|invalid|unknown/i);
  });
});
