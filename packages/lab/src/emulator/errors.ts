/**
 * An error the emulator returns to the caller in the service's own wire format.
 * `code` and `message` follow AWS's documented errors; `status` is the HTTP status
 * AWS uses for it (400 for client errors unless AWS says otherwise).
 */
export class AwsError extends Error {
  override readonly name = 'AwsError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isAwsError(err: unknown): err is AwsError {
  return err instanceof AwsError;
}

/** EC2's NotFound family: `InvalidVpcID.NotFound` "The vpc ID 'vpc-1' does not exist". */
export function notFound(code: string, noun: string, id: string): AwsError {
  return new AwsError(code, `The ${noun} ID '${id}' does not exist`);
}

export function missingParameter(name: string): AwsError {
  return new AwsError('MissingParameter', `The request must contain the parameter ${name}`);
}

export function invalidParameterValue(message: string): AwsError {
  return new AwsError('InvalidParameterValue', message);
}

/** Auto Scaling's and CloudFormation's catch-all client error. */
export function validationError(message: string): AwsError {
  return new AwsError('ValidationError', message);
}
