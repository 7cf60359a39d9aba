/** SSM operations (awsJson1_1, `X-Amz-Target: AmazonSSM.<Action>`): the parameter store calls hanat uses. */
import * as ssmsdk from '@aws-sdk/client-ssm';
import type * as T from '@aws-sdk/client-ssm';
import { AwsError } from '../errors.js';
import { op, opTable, type OpContext, type Out } from '../protocol/ops.js';
import { tagsFromList } from '../tags.js';
import type { Parameter, ParameterVersion } from './state.js';

function render(ctx: OpContext, param: Parameter, version: ParameterVersion, selector?: string): T.Parameter {
  return {
    Name: param.name,
    Type: param.type,
    Value: param.type === 'SecureString' ? version.value : version.value,
    Version: version.version,
    LastModifiedDate: version.modified,
    ARN: ctx.region.ssm.arn(param.name),
    DataType: param.dataType,
    ...(selector ? { Selector: selector } : {}),
  };
}

export const ssmOperations = opTable([
  op<T.GetParameterCommandInput, Out<T.GetParameterCommandOutput>>(ssmsdk.GetParameter$, (input, ctx) => {
    if (!input.Name) throw new AwsError('ValidationException', "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
    const { param, version, selector } = ctx.region.ssm.get(input.Name);
    return { Parameter: render(ctx, param, version, selector) };
  }),

  op<T.GetParametersCommandInput, Out<T.GetParametersCommandOutput>>(ssmsdk.GetParameters$, (input, ctx) => {
    if (!input.Names) throw new AwsError('ValidationException', "1 validation error detected: Value null at 'names' failed to satisfy constraint: Member must not be null");
    const names = input.Names;
    if (names.length < 1 || names.length > 10) {
      const bound = names.length < 1 ? 'greater than or equal to 1' : 'less than or equal to 10';
      throw new AwsError('ValidationException', `1 validation error detected: Value '[${names.join(', ')}]' at 'names' failed to satisfy constraint: Member must have length ${bound}`);
    }
    const found: T.Parameter[] = [];
    const invalid: string[] = [];
    for (const name of names) {
      try {
        const { param, version, selector } = ctx.region.ssm.get(name);
        found.push(render(ctx, param, version, selector));
      } catch {
        invalid.push(name);
      }
    }
    return { Parameters: found, InvalidParameters: invalid };
  }),

  op<T.PutParameterCommandInput, Out<T.PutParameterCommandOutput>>(ssmsdk.PutParameter$, (input, ctx) => {
    const version = ctx.region.ssm.put({
      name: input.Name ?? '',
      value: input.Value ?? '',
      type: input.Type,
      dataType: input.DataType,
      overwrite: input.Overwrite,
      description: input.Description,
      tags: input.Tags ? tagsFromList(input.Tags) : undefined,
    });
    return { Version: version, Tier: 'Standard' };
  }),

  op<T.DeleteParameterCommandInput, object>(ssmsdk.DeleteParameter$, (input, ctx) => {
    ctx.region.ssm.delete(input.Name ?? '');
    return {};
  }),
]);
