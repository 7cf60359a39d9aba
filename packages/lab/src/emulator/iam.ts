/**
 * IAM, recorded and never enforced: roles, instance profiles and policies exist
 * so that templates can reference them and instances can name their role in
 * IMDS. IAM is global to the account (not per region).
 */
import { AwsError } from './errors.js';
import type { IdGenerator } from './random.js';

export interface Role {
  name: string;
  id: string;
  arn: string;
  path: string;
  assumeRolePolicy: unknown;
  managedPolicyArns: string[];
  inlinePolicies: Map<string, unknown>;
  created: Date;
}

export interface InstanceProfile {
  name: string;
  id: string;
  arn: string;
  path: string;
  roles: string[];
  created: Date;
}

export interface ManagedPolicy {
  name: string;
  arn: string;
  id: string;
  document: unknown;
  roles: string[];
}

export class Iam {
  readonly roles = new Map<string, Role>();
  readonly instanceProfiles = new Map<string, InstanceProfile>();
  readonly managedPolicies = new Map<string, ManagedPolicy>();
  /** Inline policies created as separate resources (AWS::IAM::Policy), by physical id. */
  readonly policies = new Map<string, { name: string; roles: string[]; document: unknown }>();

  constructor(
    private readonly accountId: string,
    private readonly ids: IdGenerator,
    private readonly now: () => number,
  ) {}

  private uniqueId(prefix: string): string {
    return prefix + this.ids.hex(17).toUpperCase();
  }

  createRole(name: string, path: string, assumeRolePolicy: unknown, managedPolicyArns: string[]): Role {
    if (this.roles.has(name)) throw new AwsError('EntityAlreadyExists', `Role with name ${name} already exists.`, 409);
    const role: Role = {
      name,
      id: this.uniqueId('AROA'),
      arn: `arn:aws:iam::${this.accountId}:role${path}${name}`,
      path,
      assumeRolePolicy,
      managedPolicyArns,
      inlinePolicies: new Map(),
      created: new Date(this.now()),
    };
    this.roles.set(name, role);
    return role;
  }

  deleteRole(name: string): void {
    const inUse = [...this.instanceProfiles.values()].find((p) => p.roles.includes(name));
    if (inUse) throw new AwsError('DeleteConflict', 'Cannot delete entity, must remove roles from instance profile first.', 409);
    this.roles.delete(name);
  }

  createInstanceProfile(name: string, path: string, roles: string[]): InstanceProfile {
    if (this.instanceProfiles.has(name)) throw new AwsError('EntityAlreadyExists', `Instance Profile ${name} already exists.`, 409);
    for (const r of roles) if (!this.roles.has(r)) throw new AwsError('NoSuchEntity', `The role with name ${r} cannot be found.`, 404);
    const profile: InstanceProfile = {
      name,
      id: this.uniqueId('AIPA'),
      arn: `arn:aws:iam::${this.accountId}:instance-profile${path}${name}`,
      path,
      roles: [...roles],
      created: new Date(this.now()),
    };
    this.instanceProfiles.set(name, profile);
    return profile;
  }

  /** By name or ARN. */
  findInstanceProfile(nameOrArn: string): InstanceProfile | undefined {
    if (nameOrArn.startsWith('arn:')) return [...this.instanceProfiles.values()].find((p) => p.arn === nameOrArn);
    return this.instanceProfiles.get(nameOrArn);
  }

  createManagedPolicy(name: string, path: string, document: unknown, roles: string[]): ManagedPolicy {
    const arn = `arn:aws:iam::${this.accountId}:policy${path}${name}`;
    if (this.managedPolicies.has(arn)) throw new AwsError('EntityAlreadyExists', `A policy called ${name} already exists. Duplicate names are not allowed.`, 409);
    const policy: ManagedPolicy = { name, arn, id: this.uniqueId('ANPA'), document, roles: [...roles] };
    this.managedPolicies.set(arn, policy);
    return policy;
  }
}
