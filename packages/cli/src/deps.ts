/**
 * What actions need from the outside world, injected so tests can replace
 * every piece: AWS clients, time, the progress reporter, the prompt and the
 * Ctrl-C signal. Nothing here prints or exits.
 */
import type { ResourceChange, StackEvent } from '@aws-sdk/client-cloudformation';
import type { AutoScaling, CloudFormation, Ec2, Ssm } from '@hanat/core';
import type { SharedConfig } from './profiles.js';

/** Where the AWS calls go: flags first, then the SDK's environment and config files. */
export interface AwsTarget {
  region?: string | undefined;
  profile?: string | undefined;
  debug?: boolean | undefined;
}

export interface AwsClients {
  cloudFormation: CloudFormation;
  ec2: Ec2;
  ssm: Ssm;
  autoScaling: AutoScaling;
  /** The region the SDK resolved (flag, AWS_REGION, profile config), or undefined if none. */
  region(): Promise<string | undefined>;
  /** The profiles of the shared config and credentials files the SDK reads, and where they are. */
  sharedConfig(): Promise<SharedConfig>;
  destroy(): void;
}

export type AwsFactory = (target: AwsTarget) => AwsClients;

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms`; rejects with an AbortError as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Progress and diagnostics of a running action; the CLI writes them to stderr. */
export interface Reporter {
  step(message: string): void;
  warn(message: string): void;
  changes(changes: readonly ResourceChange[]): void;
  event(event: StackEvent): void;
}

export interface ActionDeps {
  aws: AwsFactory;
  reporter: Reporter;
  clock: Clock;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
  /** True when a person can answer a prompt (stdin and stderr are terminals). */
  interactive: boolean;
  confirm: (question: string, signal: AbortSignal) => Promise<boolean>;
  /** Environment variables the actions read (AWS_DEFAULT_REGION). */
  env: Readonly<Record<string, string | undefined>>;
  /** How often to poll CloudFormation while waiting, ms. */
  pollIntervalMs: number;
}
