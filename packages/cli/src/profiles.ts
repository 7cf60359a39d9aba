/**
 * The profiles in the shared AWS config and credentials files, found the way
 * the SDK finds them (@smithy/core's shared-ini-file-loader: the same paths,
 * section names and comment rules), so that `--profile nosuch` is refused
 * before any AWS call, with a message naming the files that were searched.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface SharedConfig {
  /** The config file as the user knows it: `~/.aws/config`, or AWS_CONFIG_FILE's value. */
  configFile: string;
  /** The credentials file: `~/.aws/credentials`, or AWS_SHARED_CREDENTIALS_FILE's value. */
  credentialsFile: string;
  /** The profiles defined in either file, sorted. */
  profiles: string[];
}

type Env = Readonly<Record<string, string | undefined>>;

/** `[profile name]`, `[sso-session name]`: a typed section (the SDK's prefixKeyRegex). */
const TYPED_SECTION = /^([\w-]+)\s(["'])?([\w-@+.%:/]+)\2$/;

/**
 * The profile names an INI file defines. In the config file a profile is
 * `[default]` or `[profile name]`; in the credentials file it is `[name]`.
 * As in the SDK, a section without a single `key = value` defines nothing.
 */
export function profileNames(text: string, kind: 'config' | 'credentials'): string[] {
  const names = new Set<string>();
  let section: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = (raw.split(/(^|\s)[;#]/)[0] ?? '').trim();
    if (line.startsWith('[') && line.endsWith(']')) {
      const header = line.slice(1, -1);
      const typed = TYPED_SECTION.exec(header);
      if (typed) section = kind === 'config' && typed[1] === 'profile' ? typed[3] : undefined;
      else section = kind === 'credentials' || header === 'default' ? header : undefined;
    } else if (section !== undefined && line.indexOf('=') > 0) {
      names.add(section);
    }
  }
  return [...names];
}

function resolve(path: string, home: string): string {
  return path.startsWith('~/') ? join(home, path.slice(2)) : path;
}

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return ''; // a missing or unreadable file defines no profiles, as for the SDK
  }
}

/** Reads both files from where `env` (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, HOME) points. */
export async function readSharedConfig(env: Env): Promise<SharedConfig> {
  const home = env.HOME || env.USERPROFILE || homedir();
  const configFile = env.AWS_CONFIG_FILE || '~/.aws/config';
  const credentialsFile = env.AWS_SHARED_CREDENTIALS_FILE || '~/.aws/credentials';
  const [config, credentials] = await Promise.all([readOrEmpty(resolve(configFile, home)), readOrEmpty(resolve(credentialsFile, home))]);
  const profiles = new Set([...profileNames(config, 'config'), ...profileNames(credentials, 'credentials')]);
  return { configFile, credentialsFile, profiles: [...profiles].sort() };
}
