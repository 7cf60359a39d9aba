import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import {
  archOfFamily,
  checkAmi,
  checkCidrPrefix,
  checkInstanceType,
  checkKeyName,
  checkRegion,
  checkStackName,
  checkTags,
  parseAzs,
} from '../src/validate.js';

describe('instance type → architecture', () => {
  it.each([
    ['t4g.nano', 'arm64'],
    ['m7g.large', 'arm64'],
    ['c6gn.16xlarge', 'arm64'],
    ['r8g.medium', 'arm64'],
    ['x2gd.xlarge', 'arm64'],
    ['im4gn.large', 'arm64'],
    ['is4gen.medium', 'arm64'],
    ['a1.large', 'arm64'],
    ['g5g.xlarge', 'arm64'],
    ['hpc7g.4xlarge', 'arm64'],
    ['i8ge.large', 'arm64'],
    ['t3.micro', 'x86_64'],
    ['t3a.nano', 'x86_64'],
    ['m7i-flex.large', 'x86_64'],
    ['g4dn.xlarge', 'x86_64'],
    ['g6e.xlarge', 'x86_64'],
    ['c5n.large', 'x86_64'],
    ['x2iedn.xlarge', 'x86_64'],
    ['u-6tb1.112xlarge', 'x86_64'],
    ['p5.48xlarge', 'x86_64'],
    ['c7i.metal-24xl', 'x86_64'],
  ])('%s runs %s', (type, arch) => {
    expect(checkInstanceType(type).arch).toBe(arch);
  });

  it('reads the g only right after the generation digits', () => {
    // g4dn has a g before the digit (GPU family), not after: Intel.
    expect(archOfFamily('g4dn')).toBe('x86_64');
    expect(archOfFamily('c7gd')).toBe('arm64');
  });

  it.each(['t4gnano', 'T4G.NANO', 't.micro', 'nano', '.large', 't4g.', 't4g.nano.x'])('refuses the shape %s', (type) => {
    expect(() => checkInstanceType(type)).toThrow(/an instance type is <family>\.<size> in lowercase/);
  });

  it('refuses Mac instances', () => {
    expect(() => checkInstanceType('mac2-m2pro.metal')).toThrow(/Mac instances cannot run the hanat NAT image/);
  });
});

describe('stack names', () => {
  it.each(['a', 'prod-vpc', 'Vpc2', 'x'.repeat(128)])('accepts %s', (name) => {
    expect(checkStackName(name)).toBe(name);
  });

  it.each([
    ['', /--name is empty/],
    ['9lives', /must start with a letter/],
    ['-vpc', /must start with a letter/],
    ['my_vpc', /only letters, digits and hyphens, not "_". Try --name my-vpc\./],
    ['prod vpc', /not " "/],
    ['x'.repeat(129), /129 characters long; a stack name has at most 128/],
  ])('refuses %j', (name, message) => {
    expect(() => checkStackName(name)).toThrow(UsageError);
    expect(() => checkStackName(name)).toThrow(message);
  });
});

describe('CIDR prefixes', () => {
  it.each(['10.0', '172.16', '172.31', '192.168', '100.64', '100.127', '10.255'])('accepts the private %s silently', (p) => {
    expect(checkCidrPrefix(p)).toEqual({ prefix: p });
  });

  it.each(['8.8', '172.32', '100.128', '198.18', '11.0'])('accepts the public %s with a warning', (p) => {
    expect(checkCidrPrefix(p).warning).toMatch(/is a public range/);
  });

  it.each([
    ['10', /give the first two octets/],
    ['10.0.0.0/16', /give the first two octets/],
    ['10.0.0', /give the first two octets/],
    ['10.01', /no leading zeros/],
    ['a.b', /give the first two octets/],
    ['10.256', /each octet must be from 0 to 255/],
    ['0.5', /"this network"/],
    ['127.0', /loopback/],
    ['169.254', /link-local/],
    ['224.1', /multicast/],
  ])('refuses %s', (p, message) => {
    expect(() => checkCidrPrefix(p)).toThrow(message);
  });
});

describe('AMI references', () => {
  it('takes 8- and 17-digit AMI ids', () => {
    expect(checkAmi('ami-12345678')).toEqual({ kind: 'id', id: 'ami-12345678' });
    expect(checkAmi('ami-0123456789abcdef0')).toEqual({ kind: 'id', id: 'ami-0123456789abcdef0' });
  });

  it('takes SSM parameter paths with or without resolve:ssm:', () => {
    expect(checkAmi('/hanat/ami/arm64')).toEqual({ kind: 'ssm', parameter: '/hanat/ami/arm64' });
    expect(checkAmi('resolve:ssm:/hanat/ami/arm64')).toEqual({ kind: 'ssm', parameter: '/hanat/ami/arm64' });
    expect(checkAmi('resolve:ssm:my-ami')).toEqual({ kind: 'ssm', parameter: 'my-ami' });
  });

  it('takes a parameter pinned to a version or a label, as the template and GetParameter do', () => {
    expect(checkAmi('/hanat/ami/arm64:3')).toEqual({ kind: 'ssm', parameter: '/hanat/ami/arm64:3' });
    expect(checkAmi('resolve:ssm:/hanat/ami/arm64:stable')).toEqual({ kind: 'ssm', parameter: '/hanat/ami/arm64:stable' });
  });

  it.each(['/hanat/ami/arm64:', '/hanat/ami/arm64:0', '/hanat/ami/arm64:3:4', '/hanat/ami/arm64:-x'])('refuses the selector in %j', (v) => {
    expect(() => checkAmi(v)).toThrow(/neither a version nor a label/);
  });

  it.each(['ami-123', 'ami-0123456789ABCDEF0', 'ami-0123456789abcdef', 'AMI-12345678'])('refuses the id %s', (v) => {
    expect(() => checkAmi(v)).toThrow(/"ami-" followed by 8 or 17 lowercase hex digits/);
  });

  it.each(['ubuntu', 'my-ami'])('refuses %s, which is neither an id nor a parameter path', (v) => {
    expect(() => checkAmi(v)).toThrow(/give an AMI id .* or an SSM parameter holding one/);
  });

  it.each(['/hanat/ami arm64', '/hanat//ami', 'resolve:ssm:', '/hanat/ami/'])('refuses the parameter name %j', (v) => {
    expect(() => checkAmi(v)).toThrow(/is not an SSM parameter name/);
  });
});

describe('other flags', () => {
  it('parses AZ counts from 2 to 6 only', () => {
    expect(parseAzs('2')).toBe(2);
    expect(parseAzs('6')).toBe(6);
    for (const bad of ['1', '7', '2.5', 'three', '', '-3']) expect(() => parseAzs(bad)).toThrow(/pass a whole number from 2 to 6/);
  });

  it('checks key pair names', () => {
    expect(checkKeyName('ops key (2024)')).toBe('ops key (2024)');
    expect(() => checkKeyName('')).toThrow(/--key is empty/);
    expect(() => checkKeyName('k'.repeat(256))).toThrow(/256 characters long; a key pair name has at most 255/);
    expect(() => checkKeyName('clé')).toThrow(/only printable ASCII characters, not "é"/);
    expect(() => checkKeyName(' ops')).toThrow(/cannot start or end with a space/);
  });

  it('checks regions and spots an AZ given as a region', () => {
    expect(checkRegion('us-gov-west-1')).toBe('us-gov-west-1');
    expect(() => checkRegion('eu-west-1a')).toThrow('--region "eu-west-1a" is an Availability Zone; pass its region, --region eu-west-1.');
    expect(() => checkRegion('Ireland')).toThrow(/a region looks like eu-west-1/);
  });
});

describe('--tag key=value', () => {
  it('accepts keys instance metadata can show, values of any kind, and an empty value', () => {
    expect(checkTags(['team=network', 'CostCenter=42 / ops', 'a+b-c=d.e,f_g:h@i=x', 'empty='])).toEqual([
      { Key: 'team', Value: 'network' },
      { Key: 'CostCenter', Value: '42 / ops' },
      { Key: 'a+b-c', Value: 'd.e,f_g:h@i=x' },
      { Key: 'empty', Value: '' },
    ]);
  });

  it.each([
    ['Cost Center=ops', 'the key "Cost Center" has a space;', '--tag Cost-Center=ops'],
    ['team/net=x', 'the key "team/net" has a "/";', '--tag team-net=x'],
    ['owner*=x', 'the key "owner*" has "*";', '--tag owner=x'],
    ['_index=x', '"_index" is a name instance metadata reserves;', '--tag index=x'],
    ['..=x', '".." is a name instance metadata reserves;', '--tag team=x'],
  ])('refuses %s, naming the key and the rule', (raw, problem, fix) => {
    expect(() => checkTags([raw])).toThrow(UsageError);
    expect(() => checkTags([raw])).toThrow(`--tag "${raw}": ${problem} the NATs read their tags from instance metadata`);
    expect(() => checkTags([raw])).toThrow(`Use e.g. ${fix}.`);
  });

  it('refuses what CloudFormation would: no "=", an empty or reserved key, lengths, a key twice, more than 49', () => {
    expect(() => checkTags(['team'])).toThrow('--tag "team": give key=value, e.g. --tag team=network');
    expect(() => checkTags(['=x'])).toThrow('--tag "=x": the key is empty');
    expect(() => checkTags(['aws:x=y'])).toThrow('keys starting with "aws:" are reserved for AWS');
    expect(() => checkTags(['hanat:stack=y'])).toThrow('keys starting with "hanat:" are hanat\'s own');
    expect(() => checkTags([`${'k'.repeat(129)}=v`])).toThrow('the key is 129 characters long; a tag key has at most 128');
    expect(() => checkTags([`k=${'v'.repeat(257)}`])).toThrow('the value is 257 characters long; a tag value has at most 256');
    expect(() => checkTags(['a=1', 'a=2'])).toThrow('--tag "a" is given twice');
    expect(checkTags(Array.from({ length: 49 }, (_, i) => `k${i}=v`))).toHaveLength(49);
    expect(() => checkTags(Array.from({ length: 50 }, (_, i) => `k${i}=v`))).toThrow('pass at most 49');
  });
});
