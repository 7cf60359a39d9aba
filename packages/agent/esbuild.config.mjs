// esbuild settings for the agent bundle, merged by scripts/build.mjs into its
// defaults. They take the bundle from ~1.5 MB / 120 MB RSS to ~0.4 MB / ~55 MB:
//
// 1. `mainFields: ['module', 'main']`: resolve the AWS SDK's ES module builds
//    (dist-es, one file per command and schema) instead of its single CommonJS
//    file per client, so esbuild can drop the ~600 commands the agent never sends.
//
// 2. `inlineSchemaKeys`: the SDK's generated schema files build their shapes
//    from object literals with computed keys, `{ [_xN]: _m }`, where `_xN` is a
//    module-level string constant. esbuild cannot prove a computed key free of
//    side effects, so it keeps every shape of the service (~540 KB for EC2).
//    This rewrites each `[_id]:` whose `_id` is a plain string constant of the
//    same file into that string literal: the same object, now tree-shakable.
//    If a future SDK changes its output the rewrite simply matches nothing, and
//    the bundle is larger but still correct.
import { readFile } from 'node:fs/promises';

/** @type {import('esbuild').Plugin} */
export const inlineSchemaKeys = {
  name: 'hanat-inline-schema-keys',
  setup(build) {
    build.onLoad({ filter: /[\\/]@aws-sdk[\\/][^\\/]+[\\/]dist-es[\\/](submodules[\\/][^\\/]+[\\/])?schemas[\\/]schemas_\d+\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const strings = new Map();
      for (const m of source.matchAll(/^const (_[A-Za-z0-9_$]+) = ("[^"\\\n]*");$/gm)) strings.set(m[1], m[2]);
      const contents = source.replace(/\[(_[A-Za-z0-9_$]+)\]:/g, (whole, id) => (strings.has(id) ? `${strings.get(id)}:` : whole));
      return { contents, loader: 'js' };
    });
  },
};

/** @type {Partial<import('esbuild').BuildOptions>} */
export default {
  mainFields: ['module', 'main'],
  // Error class names appear in logs (pino's `err.type`); keep them readable.
  keepNames: true,
  plugins: [inlineSchemaKeys],
};
