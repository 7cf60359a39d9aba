/** `hanat template`: the CloudFormation template as JSON text. */
import type { Reporter } from './deps.js';
import { DEFAULT_TEMPLATE_OPTIONS, templateBody, type TemplateOptions } from './template/render.js';
import { checkCidrPrefix, parseAzs } from './validate.js';

export interface TemplateCommandOptions {
  azs?: number | string | undefined;
  cidrPrefix?: string | undefined;
  eip?: boolean | undefined;
}

export function template(opts: TemplateCommandOptions, deps: { reporter: Reporter }): string {
  const options: TemplateOptions = {
    azs: opts.azs === undefined ? DEFAULT_TEMPLATE_OPTIONS.azs : parseAzs(String(opts.azs)),
    eip: opts.eip ?? DEFAULT_TEMPLATE_OPTIONS.eip,
  };
  if (opts.cidrPrefix !== undefined) {
    const cidr = checkCidrPrefix(opts.cidrPrefix);
    if (cidr.warning) deps.reporter.warn(cidr.warning);
    options.cidrPrefix = cidr.prefix;
  }
  return templateBody(options);
}
