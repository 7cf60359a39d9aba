/**
 * Remote checks of deploy input: the key pair exists, and the NAT image
 * (given, or published in SSM by scripts/build-ami as /hanat/ami/<arch>)
 * exists in the region and fits the instance type's architecture.
 */
import { DescribeImagesCommand, DescribeKeyPairsCommand, type Image } from '@aws-sdk/client-ec2';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { awsErrorName, type Ec2, type Ssm } from '@hanat/core';
import { awsFailure } from './aws.js';
import { UsageError } from './errors.js';
import { familiesFor, isAmiId, type AmiRef, type Arch, type InstanceType } from './validate.js';

/** The SSM parameter scripts/build-ami publishes an image id to. */
export function amiParameter(arch: Arch): string {
  return `/hanat/ami/${arch}`;
}

export function buildAmiHint(arch: Arch, region: string): string {
  return `Build and publish the NAT image with: scripts/build-ami --arch ${arch} --region ${region} (README "Build the NAT image"), or pass --ami <ami-id>.`;
}

export async function checkKeyPairExists(ec2: Ec2, key: string, region: string): Promise<void> {
  try {
    const out = await ec2.send(new DescribeKeyPairsCommand({ KeyNames: [key] }));
    if ((out.KeyPairs ?? []).some((k) => k.KeyName === key)) return;
  } catch (err) {
    if (awsErrorName(err) !== 'InvalidKeyPair.NotFound') awsFailure(err, 'DescribeKeyPairs');
  }
  throw new UsageError(
    `--key "${key}": there is no key pair named "${key}" in ${region}. Key pairs are regional: import it there (aws ec2 import-key-pair --key-name ${key} --region ${region} --public-key-material fileb://key.pub), or leave out --key.`,
  );
}

export interface ResolvedAmi {
  id: string;
  name: string | undefined;
  arch: Arch;
  /** Where the id came from: `--ami` or the SSM parameter name. */
  source: string;
}

async function readParameter(ssm: Ssm, name: string, flagValue: string | undefined, arch: Arch, region: string): Promise<string> {
  try {
    const out = await ssm.send(new GetParameterCommand({ Name: name }));
    const value = out.Parameter?.Value?.trim() ?? '';
    if (isAmiId(value)) return value;
    throw new UsageError(`SSM parameter ${name} in ${region} holds "${value.slice(0, 40)}", not an AMI id (ami-…). Write the image id to it, or pass --ami <ami-id>.`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = awsErrorName(err);
    if (code !== 'ParameterNotFound' && code !== 'ParameterVersionNotFound') awsFailure(err, 'GetParameter');
    if (flagValue === undefined) {
      throw new UsageError(`No hanat NAT image for ${arch} in ${region}: the SSM parameter ${name} does not exist. ${buildAmiHint(arch, region)}`, { cause: err });
    }
    throw new UsageError(`--ami "${flagValue}": there is no SSM parameter ${name} in ${region}. Check the name, or pass --ami <ami-id>.`, { cause: err });
  }
}

/**
 * The concrete AMI id to launch: `--ami` as given, or read from SSM; then
 * DescribeImages proves it exists here, is available, and runs the
 * instance type's architecture. All of this before the stack is touched.
 */
export async function resolveAmi(
  clients: { ec2: Ec2; ssm: Ssm },
  ref: AmiRef | undefined,
  flagValue: string | undefined,
  instanceType: InstanceType,
  region: string,
): Promise<ResolvedAmi> {
  const arch = instanceType.arch;
  const parameter = ref === undefined ? amiParameter(arch) : ref.kind === 'ssm' ? ref.parameter : undefined;
  const id = parameter === undefined ? (ref as { id: string }).id : await readParameter(clients.ssm, parameter, flagValue, arch, region);
  const source = parameter ?? '--ami';

  let images: Image[];
  try {
    images = (await clients.ec2.send(new DescribeImagesCommand({ ImageIds: [id] }))).Images ?? [];
  } catch (err) {
    const code = awsErrorName(err) ?? '';
    if (!code.startsWith('InvalidAMIID.')) awsFailure(err, 'DescribeImages');
    images = [];
  }
  const image = images.find((i) => i.ImageId === id);
  const from = parameter ? ` (from SSM parameter ${parameter})` : '';
  if (!image) {
    throw new UsageError(
      `AMI ${id}${from} does not exist in ${region} or is not shared with this account. AMIs are regional: copy it to ${region} (aws ec2 copy-image), ` +
        `or build one there with scripts/build-ami --arch ${arch} --region ${region} (README "Build the NAT image").`,
    );
  }
  if (image.State && image.State !== 'available') {
    throw new UsageError(`AMI ${id}${from} is ${image.State}, not available. Wait until it is available, or pass another --ami.`);
  }
  if (image.Architecture !== arch) {
    const imageArch = image.Architecture ?? 'unknown';
    const fits = imageArch === 'arm64' || imageArch === 'x86_64' ? familiesFor(imageArch) : undefined;
    throw new UsageError(
      `AMI ${id}${from} is built for ${imageArch}, but --instance-type ${instanceType.type} runs ${arch}. ` +
        (fits ? `Use an instance type that runs ${imageArch} (${fits}), or an ${arch} AMI.` : `Use an ${arch} AMI.`) +
        (ref === undefined ? '' : ` Leaving out --ami picks ${amiParameter(arch)}.`),
    );
  }
  return { id, name: image.Name, arch, source };
}
