/**
 * Test harness: an emulator on 127.0.0.1:0 and the REAL AWS SDK clients
 * pointed at it (fake credentials, no retries unless asked), so every test
 * goes through the wire protocols and the SDK's own deserialisers.
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { createEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';

export const credentials = { accessKeyId: 'AKIAHANATLABTEST0000', secretAccessKey: 'hanat-lab-test-secret' };

export interface Harness {
  emu: Emulator;
  url: string;
  region: string;
  ec2: EC2Client;
  asg: AutoScalingClient;
  cfn: CloudFormationClient;
  ssm: SSMClient;
  clients(opts?: { region?: string; maxAttempts?: number }): { ec2: EC2Client; asg: AutoScalingClient; cfn: CloudFormationClient; ssm: SSMClient };
  close(): Promise<void>;
}

export async function startLab(opts: EmulatorOptions & { maxAttempts?: number } = {}): Promise<Harness> {
  const emu = createEmulator({ log: (m) => console.error(`emulator: ${m}`), ...opts });
  const { url } = await emu.listen({ host: '127.0.0.1', port: 0 });
  const region = opts.region ?? 'us-east-1';
  const made: { destroy(): void }[] = [];
  const clients = (o: { region?: string; maxAttempts?: number } = {}) => {
    const cfg = { endpoint: url!, region: o.region ?? region, credentials, maxAttempts: o.maxAttempts ?? opts.maxAttempts ?? 1 };
    const c = { ec2: new EC2Client(cfg), asg: new AutoScalingClient(cfg), cfn: new CloudFormationClient(cfg), ssm: new SSMClient(cfg) };
    made.push(c.ec2, c.asg, c.cfn, c.ssm);
    return c;
  };
  const main = clients();
  return {
    emu,
    url: url!,
    region,
    ...main,
    clients,
    async close() {
      for (const c of made) c.destroy();
      await emu.close();
    },
  };
}

/** The error an SDK call rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { name: string; $metadata?: { httpStatusCode?: number }; $fault?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { name: string };
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
