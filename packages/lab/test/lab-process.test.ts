/**
 * The `hanat-lab` bundle as a process: a foreground `up` tears its lab down on every signal
 * that ends a terminal session (Ctrl-C, kill, a closed terminal), and `cleanup --lab` removes
 * one crashed run without touching other labs' namespaces.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
    requireBundles('lab', 'lab-worker', 'agent');
    dir = mkdtempSync(join(tmpdir(), 'hanat-lab-process-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the bundle with its own state directory; `onStdout` may act while it runs. */
  const labProcess = (stateDir: string, args: string[], onStdout?: (stdout: string, child: ReturnType<typeof spawn>) => void, env: Record<string, string> = {}) =>
    new Promise<Exit>((resolve, reject) => {
      const child = spawn(process.execPath, [LAB_BIN, ...args], { env: { PATH: process.env.PATH, HOME: dir, HANAT_LAB_STATE_DIR: stateDir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

  it.each([[[]], [['--detach']]])('`up %j --probe-azs nowhere` exits 2 naming the value and starts nothing', async (extra) => {
    const stateDir = join(dir, `state-probe-azs-${extra.length}`);
    const exit = await labProcess(stateDir, ['up', ...extra, '--latency', 'zero', '--probe-azs', 'nowhere', '--run-dir', join(dir, 'runs-probe-azs')]);
    expect({ code: exit.code, stdout: exit.stdout }, exit.stderr).toEqual({ code: 2, stdout: '' });
    expect(exit.stderr).toContain('--probe-azs must be a comma-separated list of AZ names such as us-east-1a, got "nowhere"');
    expect(readRunStates(stateDir)).toEqual([]);
  });

  it.each(['SIGHUP', 'SIGINT', 'SIGTERM'] as const)('a foreground `up` stopped by %s tears down its namespaces and processes and exits 0', async (sig) => {
    const stateDir = join(dir, `state-${sig}`);
    let prefix: string | undefined;
    let ownerPid: number | undefined;
    let pids: number[] = [];
    let workers: ({ bundle: string; rssMB: number } | undefined)[] = [];
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
          workers = p.map(workerOf);
          child.kill(sig);
        });
      });
      expect(signalled, `the lab never became ready:\n${exit.stderr}`).toBe(true);
      expect(prefix).toMatch(/^hl[0-9a-f]{4}$/);
      expect(pids.length, 'the router, gateway and internet namespaces run the proxy and the echo service').toBeGreaterThanOrEqual(2);
      // Each from the workers' own bundle, not the whole lab's: every private host of a lab runs
      // one more of these (its prober), ~110 MB each from the lab bundle.
      for (const w of workers.filter((x) => x !== undefined)) {
        expect(w.bundle).toBe('hanat-lab-worker.mjs');
        expect(w.rssMB).toBeLessThan(70);
      }
      expect(workers.filter((x) => x !== undefined).length).toBeGreaterThanOrEqual(2);
      // Not killed by the signal: it stopped the lab and exited on its own.
      expect({ code: exit.code, signal: exit.signal }, exit.stderr).toEqual({ code: 0, signal: null });
      // Its stdout was a pipe, as in `eval "$(hanat-lab up)"`, which would wait until the lab stops.
      expect(exit.stderr).toContain('stdout is not a terminal');
      expect(exit.stderr).toContain('eval "$(hanat-lab up --detach)"');
      expect(await leftovers(prefix!, [...pids, ownerPid!])).toEqual(NOTHING_LEFT);
      expect(readRunStates(stateDir)).toEqual([]);
    } finally {
      if (ownerPid !== undefined && pidAlive(ownerPid)) process.kill(ownerPid, 'SIGKILL');
      if (prefix) await cleanupRun(execCommand, stateDir, prefix);
    }
  }, 60_000);

  /** The bundle a lab worker process runs and its RSS, from /proc (undefined: not a node process, or gone). */
  function workerOf(pid: number): { bundle: string; rssMB: number } | undefined {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const script = argv.find((a) => a.endsWith('.mjs'));
      if (!script) return undefined;
      const rssKb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      return { bundle: script.slice(script.lastIndexOf('/') + 1), rssMB: rssKb / 1024 };
    } catch {
      return undefined;
    }
  }

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

  it('`up` on a terminal starts without the note about `eval "$(hanat-lab up)"`', async () => {
    // script(1) (util-linux) gives the lab a pseudo-terminal as stdout, as an interactive shell does.
    const stateDir = join(dir, 'state-tty');
    const cmd = [process.execPath, LAB_BIN, 'up', '--latency', 'zero', '--run-dir', join(dir, 'runs-tty')].map((a) => `'${a}'`).join(' ');
    let ownerPid: number | undefined;
    let prefix: string | undefined;
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { PATH: process.env.PATH, HOME: dir, HANAT_LAB_STATE_DIR: stateDir, TERM: 'dumb' }, stdio: ['pipe', 'pipe', 'pipe'] });
        let text = '';
        child.stdout.on('data', (d: Buffer) => {
          text += d.toString();
          if (ownerPid !== undefined || !text.includes(' is up (')) return;
          const state = readRunStates(stateDir)[0];
          ownerPid = state?.pid;
          prefix = state?.prefix;
          if (ownerPid !== undefined) process.kill(ownerPid, 'SIGTERM');
        });
        child.on('error', reject);
        child.on('close', () => resolve(text));
      });
      expect(ownerPid, `the lab never became ready:\n${out}`).toBeDefined();
      expect(out).toContain('export AWS_ENDPOINT_URL=');
      expect(out).not.toContain('stdout is not a terminal');
    } finally {
      if (ownerPid !== undefined && pidAlive(ownerPid)) process.kill(ownerPid, 'SIGKILL');
      if (prefix) await cleanupRun(execCommand, stateDir, prefix);
    }
  }, 60_000);

  describe('labs started with `up --detach`', () => {
    const stateDir = () => join(dir, 'state-detached');
    const runDir = () => join(dir, 'runs-detached');
    interface Detached {
      prefix: string;
      pid: number;
      endpoint: string;
      log: string;
    }
    const labs: Detached[] = [];
    const detach = async (extra: string[]): Promise<Detached & { exit: Exit }> => {
      const before = new Set(readRunStates(stateDir()).map((r) => r.prefix));
      const exit = await labProcess(stateDir(), ['up', '--detach', '--run-dir', runDir(), ...extra]);
      expect({ code: exit.code, exports: exit.stdout.includes('export AWS_ENDPOINT_URL=') }, exit.stderr).toEqual({ code: 0, exports: true });
      const run = readRunStates(stateDir()).find((r) => !before.has(r.prefix))!;
      const lab = { prefix: run.prefix, pid: run.pid, endpoint: /export AWS_ENDPOINT_URL=(\S+)/.exec(exit.stdout)![1]!, log: join(runDir(), run.prefix, 'lab.log') };
      labs.push(lab);
      return { ...lab, exit };
    };
    const gone = async (pid: number) => {
      for (const deadline = Date.now() + 30_000; pidAlive(pid) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      return !pidAlive(pid);
    };

    afterAll(async () => {
      for (const lab of labs) {
        if (pidAlive(lab.pid)) process.kill(lab.pid, 'SIGKILL');
        await gone(lab.pid);
        await cleanupRun(execCommand, stateDir(), lab.prefix);
      }
    });

    it('says which latency profile is in effect, and its lab.log holds only JSON lines', async () => {
      const a = await detach(['--latency', 'zero', '--op-latency', 'CreateRoute=5']);
      expect(a.exit.stderr).toContain(`lab ${a.prefix} is up (latency zero, ec2:CreateRoute 5 ms; log ${a.log})`);
      const lines = readFileSync(a.log, 'utf8').split('\n').filter(Boolean);
      const notJson = lines.filter((l) => {
        try {
          return typeof (JSON.parse(l) as { event?: unknown }).event !== 'string';
        } catch {
          return true;
        }
      });
      expect(notJson).toEqual([]);
      expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toContain('lab.ready');
    }, 60_000);

    it('a second `up --detach` says a lab already runs; later commands pick the lab AWS_ENDPOINT_URL points at', async () => {
      const [a] = labs;
      expect(a, 'the first lab of this describe').toBeDefined();
      const b = await detach(['--latency', 'zero']);
      expect(b.exit.stderr).toContain(`lab ${a!.prefix} (API ${a!.endpoint}) was already running; ${b.prefix} is another lab`);
      expect(b.exit.stderr).toContain(`hanat-lab down --lab ${b.prefix}`);

      const ambiguous = await labProcess(stateDir(), ['status']);
      expect(ambiguous.code, ambiguous.stderr).toBe(2);
      expect(ambiguous.stderr).toContain('2 labs are running');
      for (const lab of [a!, b]) {
        const status = await labProcess(stateDir(), ['status'], undefined, { AWS_ENDPOINT_URL: lab.endpoint });
        expect({ code: status.code, first: status.stdout.split('\n')[0] }, status.stderr).toEqual({ code: 0, first: `lab ${lab.prefix}  region us-east-1  API ${lab.endpoint}` });
      }
      const down = await labProcess(stateDir(), ['down'], undefined, { AWS_ENDPOINT_URL: b.endpoint });
      expect({ code: down.code, stderr: down.stderr }).toEqual({ code: 0, stderr: `hanat-lab: lab ${b.prefix} stopped\n` });
      expect(await gone(b.pid)).toBe(true);
      expect(pidAlive(a!.pid)).toBe(true);
    }, 90_000);

    it('after its process is killed, `status` points at `hanat-lab cleanup`; `down` with nothing running exits 0 with a note', async () => {
      const [a] = labs;
      expect(a && pidAlive(a.pid), 'the first lab of this describe runs').toBe(true);
      process.kill(a!.pid, 'SIGKILL');
      expect(await gone(a!.pid)).toBe(true);
      expect(await runNamespaces(execCommand, a!.prefix), 'a killed lab leaves its namespaces').not.toEqual([]);

      const status = await labProcess(stateDir(), ['status']);
      expect({ code: status.code, stdout: status.stdout }).toEqual({ code: 2, stdout: '' });
      expect(status.stderr).toContain(`no lab is running; lab ${a!.prefix} (pid ${a!.pid}) stopped without cleaning up`);
      expect(status.stderr).toContain('`hanat-lab cleanup` removes them');

      const down = await labProcess(stateDir(), ['down']);
      expect({ code: down.code, stdout: down.stdout }, down.stderr).toEqual({ code: 0, stdout: '' });
      expect(down.stderr).toContain('no lab is running');
      expect(down.stderr).toContain('hanat-lab cleanup');

      // Naming the dead lab finishes its teardown, so `down --lab X || cleanup --lab X` scripts still clean up.
      const named = await labProcess(stateDir(), ['down', '--lab', a!.prefix]);
      expect({ code: named.code, stdout: named.stdout }, named.stderr).toEqual({ code: 0, stdout: '' });
      expect(named.stderr).toContain(`lab ${a!.prefix} was not running (its process was gone); removed what it left: ${a!.prefix}-`);
      expect(await runNamespaces(execCommand, a!.prefix)).toEqual([]);
      expect(readRunStates(stateDir())).toEqual([]);
      const again = await labProcess(stateDir(), ['down']);
      expect({ code: again.code, stdout: again.stdout, stderr: again.stderr }).toEqual({ code: 0, stdout: '', stderr: 'hanat-lab: no lab is running; nothing to stop\n' });
    }, 60_000);
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
