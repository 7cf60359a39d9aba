import { describe, expect, it } from 'vitest';
import { TAG, stackFilters, tagValue } from '../src/index.js';

describe('tag contract helpers', () => {
  it('scopes Describe filters to the stack and extra tags', () => {
    expect(stackFilters('prod', { [TAG.az]: 'eu-west-1a' })).toEqual([
      { Name: 'tag:hanat:stack', Values: ['prod'] },
      { Name: 'tag:hanat:az', Values: ['eu-west-1a'] },
    ]);
  });

  it('reads a tag value and tells a missing tag apart', () => {
    const tags = [{ Key: 'hanat:az', Value: 'us-east-1b' }];
    expect(tagValue(tags, TAG.az)).toBe('us-east-1b');
    expect(tagValue(tags, TAG.override)).toBeUndefined();
    expect(tagValue(undefined, TAG.az)).toBeUndefined();
  });
});
