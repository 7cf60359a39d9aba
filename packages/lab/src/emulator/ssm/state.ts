/**
 * SSM Parameter Store of one region: String/StringList/SecureString parameters
 * with versions. The lab publishes its NAT images at /hanat/ami/<arch>, where
 * scripts/build-ami publishes them on AWS, so `hanat deploy` finds them.
 */
import type { Env } from '../env.js';
import { AwsError } from '../errors.js';
import type { Tags } from '../tags.js';
import { LAB_IMAGES } from '../ec2/state.js';

export interface ParameterVersion {
  version: number;
  value: string;
  modified: Date;
  description?: string | undefined;
}

export interface Parameter {
  name: string;
  type: 'String' | 'StringList' | 'SecureString';
  dataType: string;
  versions: ParameterVersion[];
  tags: Tags;
}

export class Ssm {
  readonly parameters = new Map<string, Parameter>();

  constructor(readonly env: Env) {
    for (const img of LAB_IMAGES) this.put({ name: `/hanat/ami/${img.architecture}`, value: img.id, type: 'String', dataType: 'aws:ec2:image', overwrite: true });
  }

  arn(name: string): string {
    return `arn:aws:ssm:${this.env.region}:${this.env.accountId}:parameter/${name.replace(/^\//, '')}`;
  }

  put(p: { name: string; value: string; type?: string | undefined; dataType?: string | undefined; overwrite?: boolean | undefined; description?: string | undefined; tags?: Tags | undefined }): number {
    if (!p.name) throw new AwsError('ValidationException', '1 validation error detected: Value null at \'name\' failed to satisfy constraint: Member must not be null');
    if (p.name.startsWith('/aws/') || p.name.toLowerCase().startsWith('aws') || p.name.toLowerCase().startsWith('ssm')) {
      throw new AwsError('AccessDeniedException', `No access to reserved parameter name: ${p.name}.`);
    }
    const existing = this.parameters.get(p.name);
    if (existing && !p.overwrite) throw new AwsError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
    const type = (p.type ?? existing?.type ?? 'String') as Parameter['type'];
    if (!['String', 'StringList', 'SecureString'].includes(type)) throw new AwsError('ValidationException', `1 validation error detected: Value '${type}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]`);
    const param: Parameter = existing ?? { name: p.name, type, dataType: p.dataType ?? 'text', versions: [], tags: new Map() };
    param.type = type;
    const version = (param.versions.at(-1)?.version ?? 0) + 1;
    param.versions.push({ version, value: p.value, modified: new Date(this.env.clock.now()), description: p.description });
    if (p.tags) for (const [k, v] of p.tags) param.tags.set(k, v);
    this.parameters.set(p.name, param);
    return version;
  }

  /** `name`, `name:version`; throws ParameterNotFound / ParameterVersionNotFound. */
  get(selector: string): { param: Parameter; version: ParameterVersion; selector?: string } {
    const m = /^(.*?)(?::(\d+))?$/.exec(selector)!;
    const name = m[1]!;
    const param = this.parameters.get(name);
    if (!param) throw new AwsError('ParameterNotFound', `Parameter ${name} not found.`);
    if (m[2] === undefined) return { param, version: param.versions.at(-1)! };
    const version = param.versions.find((v) => v.version === Number(m[2]));
    if (!version) throw new AwsError('ParameterVersionNotFound', `Systems Manager could not find version ${m[2]} of ${name}. Verify the version and try again.`);
    return { param, version, selector: `:${m[2]}` };
  }

  delete(name: string): void {
    if (!this.parameters.delete(name)) throw new AwsError('ParameterNotFound', `Parameter ${name} not found.`);
  }
}
