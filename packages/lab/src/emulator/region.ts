/** One AWS region of the emulated account: its EC2, Auto Scaling, CloudFormation and SSM. */
import { AutoScaling } from './autoscaling/state.js';
import { CloudFormation } from './cloudformation/engine.js';
import { Ec2 } from './ec2/state.js';
import type { Env } from './env.js';
import { AwsError } from './errors.js';
import { Ssm } from './ssm/state.js';

export class Region {
  readonly ec2: Ec2;
  readonly ssm: Ssm;
  readonly autoscaling: AutoScaling;
  readonly cloudformation: CloudFormation;

  constructor(readonly env: Env) {
    this.ec2 = new Ec2(env);
    this.ssm = new Ssm(env);
    this.autoscaling = new AutoScaling(env, this.ec2, (id) => this.resolveImageId(id));
    this.cloudformation = new CloudFormation(env, this);
  }

  get name(): string {
    return this.env.region;
  }

  /**
   * A launch template's ImageId may be `resolve:ssm:<parameter>[:<version>]`;
   * EC2 resolves it at launch time.
   */
  resolveImageId(imageId: string): Promise<string> {
    const m = /^resolve:ssm:(.+)$/.exec(imageId);
    if (!m) return Promise.resolve(imageId);
    try {
      return Promise.resolve(this.ssm.get(m[1]!).version.value);
    } catch (err) {
      return Promise.reject(
        new AwsError('InvalidParameterValue', `Unable to resolve the parameter ${m[1]!} for ImageId. Verify that the parameter exists and that you have permission to access it.`, 400, { cause: err }),
      );
    }
  }

  /** RunInstances: the instance boots after the boot delay, in the background. */
  bootLater(instanceId: string): void {
    void (async () => {
      await this.env.clock.sleep(this.env.bootDelayMs);
      try {
        await this.ec2.boot(instanceId);
      } catch (err) {
        this.env.log(`instance ${instanceId} failed to boot: ${err instanceof Error ? err.message : String(err)}`);
      }
    })();
  }
}
